// A client connection's transport: libuv's TCP handle itself where this Node's handle is known
// (TcpClient), or a net.Socket (SocketTransport: TLS, and any Node whose internals are not the
// ones tested). One concern, the bytes of a client connection both ways; long because the handle
// needs its own reads, writes, backpressure and close, each of which net.Socket otherwise does.
import { Server, Socket } from 'node:net';
import { acceptWithSlabReads, onChunks, SlabReads } from './slab-reads';
import { errnoError, HandleWrites, handlesKnown, readResult, StreamHandle } from './stream-handle';

/** What a transport reports; one sink per transport, set once (bind). */
export interface TransportEvents {
  data(chunk: Buffer): void;
  /** The peer sent FIN; the transport closes itself once what was written has gone. */
  end(): void;
  error(err: Error): void;
  close(): void;
  drain(): void;
}

/** What the session's client socket (session/client-socket.ts) does with its connection. */
export interface ClientTransport {
  /** Starts delivering to `ev` (reading starts here). */
  bind(ev: TransportEvents): void;
  /** False: the peer is slow, wait for drain (a write is queued all the same). */
  write(b: Buffer): boolean;
  pause(): void;
  resume(): void;
  /** Closes once what was written has gone. */
  destroySoon(): void;
  destroy(): void;
  readonly writable: boolean;
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** Runs `f` once libuv holds no write of this transport (at once when it holds none). */
  afterWrites(f: () => void): void;
  /** A net.Socket on the same connection, for TLS to wrap: this transport reads no more. */
  toSocket(): Socket;
}

/** A libuv TCP handle's methods and fields that TcpClient uses (Node's tcp_wrap). */
interface TcpHandle extends StreamHandle {
  onread: (this: TcpHandle, arrayBuffer: ArrayBuffer | undefined) => Buffer | undefined;
  /** Ours: the connection this handle reads for, until it is closed. */
  client?: TcpClient | null;
  readStart(): number;
  readStop(): number;
  useUserBuffer(b: Buffer): void;
  close(cb: () => void): void;
  getpeername(out: { address?: string; port?: number }): number;
  setNoDelay(on: boolean): number;
  setKeepAlive(on: boolean, seconds: number): number;
}

/**
 * libuv's end of file (its code is the same on every platform). Node's own stream code compares
 * with it the same way.
 */
const UV_EOF = -4095;

/** The handle's onread: `this` is the handle (one function for every connection, no closure). */
function onRead(this: TcpHandle): Buffer | undefined {
  return this.client?.read(readResult());
}

/** A closed handle's onread (its field takes only a function). */
function readNothing(): undefined {
  return undefined;
}

/**
 * A client connection on libuv's TCP handle, without a net.Socket. A net.Socket is a Duplex
 * stream with its states, an EventEmitter, a write request object per write and a round of
 * callbacks at close: on a server where every transaction opens a connection (`pgbench -C`)
 * building and tearing it down was the largest single part of Sluice's own CPU per connection.
 * Reads go into a slab this connection owns (slab-reads.ts), writes straight to the handle.
 */
export class TcpClient implements ClientTransport {
  private ev: TransportEvents | null = null;
  private readonly reads = new SlabReads();
  private window: Buffer | null = null;
  private readonly out: HandleWrites;
  private paused = false;
  /** Closing once the pending writes are done. */
  private closing = false;
  private closed = false;
  /** The handle is a net.Socket's now (TLS). */
  private given = false;
  private peer: { address?: string; port?: number } | null = null;
  /** What waits for the pending writes (afterWrites). */
  private whenWritten: (() => void) | null = null;

  constructor(private readonly handle: TcpHandle) {
    this.out = new HandleWrites(handle, (status, drained) => this.written(status, drained));
  }

  bind(ev: TransportEvents): void {
    this.ev = ev;
    this.window = this.reads.first();
    this.handle.client = this;
    this.handle.onread = onRead;
    this.handle.useUserBuffer(this.window);
    this.startReading();
  }

  private startReading(): void {
    const err = this.handle.readStart();
    if (err !== 0) this.fail(errnoError(err, 'read'));
  }

  /** `n` bytes were read into the window (0: nothing; negative: end of file or an error). */
  read(n: number): Buffer | undefined {
    if (n > 0) {
      const chunk = this.window!.subarray(0, n);
      this.window = this.reads.next(n);
      this.ev!.data(chunk);
      return this.window;
    }
    if (n === 0) return undefined;
    if (n === UV_EOF) {
      this.handle.readStop();
      this.ev!.end();
      this.destroySoon();
    } else {
      this.fail(errnoError(n, 'read'));
    }
    return undefined;
  }

  write(b: Buffer): boolean {
    if (!this.writable) return false;
    const err = this.out.write(b);
    if (err !== 0) {
      this.fail(errnoError(err, 'write'));
      return false;
    }
    return !this.out.full;
  }

  /** A queued write finished (status < 0: it failed). */
  private written(status: number, drained: boolean): void {
    if (this.closed || this.given) return;
    if (status < 0) return this.fail(errnoError(status, 'write'));
    if (this.out.pending > 0) return;
    if (this.closing) return this.closeHandle();
    const f = this.whenWritten;
    this.whenWritten = null;
    f?.();
    if (drained) this.ev?.drain();
  }

  pause(): void {
    if (this.paused || this.closed || this.given) return;
    this.paused = true;
    this.handle.readStop();
  }

  resume(): void {
    if (!this.paused || this.closing || this.closed || this.given) return;
    this.paused = false;
    this.startReading();
  }

  get writable(): boolean {
    return !this.closing && !this.closed && !this.given;
  }

  destroySoon(): void {
    if (!this.writable) return;
    this.closing = true;
    this.handle.readStop();
    // The kernel sends what it holds, then FIN: a close with nothing queued in libuv loses nothing.
    if (this.out.pending === 0) this.closeHandle();
  }

  destroy(): void {
    if (this.closed || this.given) return;
    this.closeHandle();
  }

  afterWrites(f: () => void): void {
    if (this.out.pending === 0) f();
    else this.whenWritten = f;
  }

  /** As net.Socket: the error is reported on the next tick (never inside the write that failed), then the close. */
  private fail(err: Error): void {
    if (this.closed || this.given) return;
    const ev = this.ev;
    process.nextTick(() => ev?.error(err));
    this.closeHandle();
  }

  private closeHandle(): void {
    if (this.closed || this.given) return;
    this.closed = true;
    this.closing = true;
    // The handle's fields let go of this connection: nothing more is read for it.
    const h = this.handle;
    h.client = null;
    h.onread = readNothing;
    h.close(() => {
      const ev = this.ev;
      this.ev = null;
      ev?.close();
    });
  }

  private get peerName(): { address?: string; port?: number } {
    if (!this.peer) {
      this.peer = {};
      if (!this.closed && !this.given) this.handle.getpeername(this.peer);
    }
    return this.peer;
  }

  get remoteAddress(): string {
    return this.peerName.address ?? '';
  }

  get remotePort(): number {
    return this.peerName.port ?? 0;
  }

  /** Only with no write pending (afterWrites): a write libuv finishes later would be the TLS layer's to account for. */
  toSocket(): Socket {
    if (!this.writable || this.out.pending > 0) throw new Error('the connection cannot start TLS now');
    // The peer's address is kept for later readers (hba, logs, SHOW).
    void this.peerName;
    // The socket sets its own onread (the handle's field takes only a function).
    this.handle.readStop();
    this.handle.client = null;
    this.given = true;
    this.ev = null;
    return new Socket({ handle: this.handle, readable: true, writable: true } as unknown as ConstructorParameters<typeof Socket>[0]);
  }
}

/** A net.Socket as a client transport: a TLS socket, or any client where TcpClient is not used. */
export class SocketTransport implements ClientTransport {
  /** destroySoon was called: a later write would destroy the socket with what it still holds. */
  private ending = false;

  constructor(
    private readonly socket: Socket,
    private readonly tls = false,
  ) {
    // Until bind(), and for a client refused before it (shutdown): an error must not go unheard.
    socket.on('error', () => undefined);
  }

  bind(ev: TransportEvents): void {
    const s = this.socket;
    onChunks(s, (c) => ev.data(c));
    s.on('end', () => ev.end());
    s.on('error', (err) => ev.error(err));
    s.on('close', () => ev.close());
    s.on('drain', () => ev.drain());
  }

  write(b: Buffer): boolean {
    return !this.ending && this.socket.write(b);
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  destroySoon(): void {
    const s = this.socket;
    this.ending = true;
    // Nothing waits in Node's queue: closing the descriptor is enough (the kernel still sends
    // what it holds, then FIN), without a shutdown and the stream's round of callbacks.
    if (!this.tls && s.writableLength === 0) s.destroy();
    else s.destroySoon();
  }

  destroy(): void {
    this.socket.destroy();
  }

  get writable(): boolean {
    return !this.ending && this.socket.writable;
  }

  get remoteAddress(): string {
    return this.socket.remoteAddress ?? '';
  }

  get remotePort(): number {
    return this.socket.remotePort ?? 0;
  }

  afterWrites(f: () => void): void {
    // net.Socket's own queue goes on under TLS (Node's STARTTLS): nothing to wait for here.
    f();
  }

  toSocket(): Socket {
    return this.socket;
  }
}

/**
 * Hands `onClient` every connection the listening server accepts, as a TcpClient where this
 * Node's handles are the tested ones (the listening handle's own callback is replaced, so no
 * net.Socket is made), else as a SocketTransport. `setOptions`: TCP_NODELAY and keepalive are
 * not inherited from the listening socket, so each accepted one is set.
 */
export function acceptClients(srv: Server, onClient: (t: ClientTransport) => void, onAcceptError: (err: Error) => void, keepAliveSeconds: number): (setOptions: boolean) => void {
  return (setOptions) => {
    const h = (srv as unknown as { _handle?: { onconnection?: unknown; getpeername?: unknown } })._handle;
    // A TCP listener (a Unix-domain one's handles have no peer name, no TCP options).
    if (handlesKnown && h && typeof h.onconnection === 'function' && typeof h.getpeername === 'function') {
      h.onconnection = (status: number, handle: TcpHandle | undefined) => {
        if (status !== 0 || !handle) return onAcceptError(errnoError(status, 'accept'));
        if (setOptions) {
          handle.setNoDelay(true);
          handle.setKeepAlive(true, keepAliveSeconds);
        }
        onClient(new TcpClient(handle));
      };
      return;
    }
    srv.on('connection', (accepted: Socket) => {
      if (setOptions) {
        accepted.setNoDelay(true);
        accepted.setKeepAlive(true, keepAliveSeconds * 1000);
      }
      onClient(new SocketTransport(acceptWithSlabReads(accepted)));
    });
  };
}

/** Whether accepted connections are TcpClients on this Node (tests, and the bench's notes). */
export const acceptsHandles = handlesKnown;
