import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { createServer, Server, Socket } from 'node:net';
import type { Logger } from '../../log/logger';
import { boundPort, listenAll, tcpServer, listenOn } from '../../util/listen';
import { AdminCommands } from '../commands';
import type { AdminHost } from '../host';
import { PcpWorker } from './worker';

/**
 * pgpool's PCP listener: TCP on pcp_listen_addresses:pcp_port, and the Unix socket
 * <pcp_socket_dir>/.s.PGSQL.<pcp_port> that pgpool's clients use when no -h is given.
 */
export class PcpServer {
  private servers: Server[] = [];
  private socketPath = '';
  private readonly sockets = new Set<Socket>();

  constructor(
    private readonly host: AdminHost,
    private readonly commands: AdminCommands,
    private readonly log: Logger,
  ) {}

  get port(): number {
    return boundPort(this.servers);
  }

  async start(): Promise<void> {
    const c = this.host.config;
    const onConnection = (socket: Socket) => {
      socket.on('error', () => undefined);
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
      new PcpWorker(socket, this.host, this.commands, this.log);
    };
    this.servers = await listenAll(c.pcp_listen_addresses, c.pcp_port, tcpServer(onConnection));
    if (c.pcp_socket_dir) {
      // A socket file left by a process that died is in the way (pgpool removes it too).
      this.socketPath = join(c.pcp_socket_dir, `.s.PGSQL.${this.port}`);
      rmSync(this.socketPath, { force: true });
      const unix = createServer(onConnection);
      await listenOn(unix, { path: this.socketPath });
      this.servers.push(unix);
    }
    this.log.info({ addresses: c.pcp_listen_addresses, port: this.port, socket: this.socketPath || undefined }, 'PCP listening');
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await Promise.all(this.servers.map((s) => new Promise((r) => s.close(r))));
    if (this.socketPath) rmSync(this.socketPath, { force: true });
  }
}
