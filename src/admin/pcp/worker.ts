import type { Socket } from 'node:net';
import type { Logger } from '../../log/logger';
import { AdminCommands } from '../commands';
import { AdminError } from '../errors';
import type { AdminHost } from '../host';
import { pcpAuthenticate, pcpSalt } from './auth';
import { PcpReply, PcpRequest } from './codes';
import { Writer } from '../../protocol/writer';
import { PcpLengthError, PcpPacket, pcpError, pcpFields, pcpPacket, PcpReader } from './packet';
import { pcpReply } from './replies';

/**
 * One PCP connection (pgpool's pcp_worker): salted-md5 authentication, then any number of
 * requests, answered one at a time in order, until 'X' or EOF. An ERROR leaves the connection
 * usable; a FATAL is sent and the connection closed.
 */
export class PcpWorker {
  private readonly reader = new PcpReader();
  private salt: Buffer | null = null;
  private authenticated = false;
  private queue: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly socket: Socket,
    private readonly host: AdminHost,
    private readonly commands: AdminCommands,
    private readonly log: Logger,
  ) {
    socket.setNoDelay(true);
    socket.on('error', () => this.close());
    socket.on('close', () => (this.closed = true));
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
  }

  private onData(chunk: Buffer): void {
    let packets: PcpPacket[];
    try {
      packets = this.reader.push(chunk);
    } catch (err) {
      if (!(err instanceof PcpLengthError)) throw err;
      this.socket.pause();
      this.queue = this.queue.then(() => this.fatal('invalid PCP packet', err.message));
      return;
    }
    for (const p of packets) this.queue = this.queue.then(() => this.handle(p));
  }

  private send(b: Buffer): void {
    if (!this.closed) this.socket.write(b);
  }

  private fatal(message: string, detail: string): void {
    this.send(pcpError('FATAL', message, detail));
    this.close();
  }

  private close(): void {
    this.closed = true;
    this.socket.end();
    this.socket.destroySoon();
  }

  private async handle(p: PcpPacket): Promise<void> {
    if (this.closed) return;
    switch (p.type) {
      case PcpRequest.Salt:
        this.salt = pcpSalt();
        this.send(new Writer(9).begin(PcpReply.Salt).bytes(this.salt).end().finish());
        return;
      case PcpRequest.Authenticate:
        return this.authenticate(p.payload);
      case PcpRequest.Terminate:
        return this.close();
    }
    if (!this.authenticated) return this.fatal('authentication failed for new PCP connection', 'connection not authorized');
    try {
      const reply = await pcpReply(p, this.host, this.commands, (m) => this.send(pcpError('NOTICE', m)));
      if (reply) this.send(reply);
    } catch (err) {
      if (err instanceof AdminError) {
        if (err.fatal) return this.fatal(err.message, err.detail ?? '');
        this.send(pcpError('ERROR', err.message, err.detail));
        return;
      }
      this.log.error({ err }, 'PCP request failed');
      this.send(pcpError('ERROR', 'PCP request failed', (err as Error).message));
    }
  }

  private authenticate(payload: Buffer): void {
    const [user = '', response = ''] = pcpFields(payload);
    const salt = this.salt;
    this.salt = null;
    if (salt && pcpAuthenticate(this.host.config.pcp_user, user, response, salt)) {
      this.authenticated = true;
      this.send(pcpPacket(PcpReply.Authenticated, ['AuthenticationOK']));
      this.log.debug({ user }, 'PCP user authenticated');
      return;
    }
    this.log.warn({ user }, 'PCP authentication failed');
    this.fatal(`authentication failed for user "${user}"`, 'username and/or password does not match');
  }
}
