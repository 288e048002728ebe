import { connect, Socket } from 'node:net';
import { pcpPasswordHash, pcpResponse } from './auth';
import { PcpReply, PcpRequest } from './codes';
import { decodePcpError, PcpPacket, pcpFields, PcpReader } from './packet';
import { Writer } from '../../protocol/writer';
import { nodeEndpoint } from '../../backend/endpoint';

/** A reply packet: its type and payload. */
export type Reply = PcpPacket;

/** The server answered with an error (ERROR or FATAL). */
export class PcpFailure extends Error {
  constructor(
    readonly severity: string,
    message: string,
    readonly detail?: string,
  ) {
    super(message);
  }
}

export interface Target {
  /** '' or a path: a Unix socket in that folder; else a host name. */
  host: string;
  port: number;
  user: string;
  password: string;
  /** Instead of the password: its md5 hex, as [[pcp_user]] keeps it (an instance passing a command on to the leader). */
  passwordMd5?: string;
  /** -d: print each packet sent and received. */
  debug?: (line: string) => void;
  /** The server's notices (progress of a long request). */
  notice?: (message: string) => void;
  /** Silence this long (connecting, or waiting for a reply) ends the connection with an error. */
  timeoutMs?: number;
}

/** A PCP connection, as pgpool's libpcp makes it: connect, salted md5, requests (sluicectl's, and an instance's to its leader). */
export class PcpClient {
  /** Replies are not capped: pgpool's client trusts the length it is sent. */
  private readonly reader = new PcpReader(Infinity);
  private readonly received: Reply[] = [];
  private waiting: (() => void) | null = null;
  private ended: Error | null = null;

  private constructor(
    private readonly socket: Socket,
    private readonly debug?: (line: string) => void,
    private readonly notice?: (message: string) => void,
  ) {
    socket.on('data', (d: Buffer) => {
      try {
        for (const r of this.reader.push(d)) {
          this.debug?.(`DEBUG: recv: tos="${String.fromCharCode(r.type)}", len=${r.payload.length + 4}`);
          this.received.push(r);
        }
      } catch (err) {
        this.ended = err as Error;
        socket.destroy();
      }
      this.wake();
    });
    socket.on('error', (err) => {
      this.ended = err;
      this.wake();
    });
    socket.on('close', () => {
      this.ended ??= new Error('server closed the connection unexpectedly');
      this.wake();
    });
  }

  private wake(): void {
    const w = this.waiting;
    this.waiting = null;
    w?.();
  }

  static async open(t: Target): Promise<PcpClient> {
    // pgpool's PCP socket follows libpq's naming, as a node's does.
    const socket = connect(nodeEndpoint(t.host, t.port));
    socket.setNoDelay(true);
    if (t.timeoutMs !== undefined) {
      socket.setTimeout(t.timeoutMs, () => socket.destroy(new Error(`no answer in ${t.timeoutMs! / 1000} s`)));
    }
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const c = new PcpClient(socket, t.debug, t.notice);
    const [salt] = await c.request(PcpRequest.Salt, Buffer.alloc(0), 1);
    const hash = pcpResponse(t.user, t.passwordMd5 ?? pcpPasswordHash(t.password), salt!.payload);
    await c.request(PcpRequest.Authenticate, Buffer.from(`${t.user}\0${hash}\0`, 'utf8'), 1);
    return c;
  }

  private async next(): Promise<Reply> {
    for (;;) {
      const r = this.received.shift();
      if (r) return r;
      if (this.ended) throw this.ended;
      await new Promise<void>((r) => (this.waiting = r));
    }
  }

  /**
   * Sends one request and reads its reply packets: `count` of them, or (count undefined) up to
   * the one whose first field is CommandComplete. Notices go to `notice`; an error throws.
   */
  async request(type: number, payload: Buffer, count?: number): Promise<Reply[]> {
    this.debug?.(`DEBUG: send: tos="${String.fromCharCode(type)}", len=${payload.length + 4}`);
    this.socket.write(new Writer(payload.length + 5).begin(type).bytes(payload).end().finish());
    const out: Reply[] = [];
    for (;;) {
      const r = await this.next();
      if (r.type === PcpReply.Notice) {
        this.notice?.(decodePcpError(r.payload).message);
        continue;
      }
      if (r.type === PcpReply.Error) {
        const e = decodePcpError(r.payload);
        throw new PcpFailure(e.severity, e.message, e.detail);
      }
      out.push(r);
      if (count !== undefined ? out.length >= count : pcpFields(r.payload)[0] === 'CommandComplete') return out;
    }
  }

  close(): void {
    this.socket.end(new Writer(5).begin(PcpRequest.Terminate).end().finish());
  }
}
