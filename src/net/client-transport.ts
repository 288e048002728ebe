// A client connection's transport: libuv's TCP handle itself where this Node's handle is known
// (TcpClient), or a net.Socket (SocketTransport: TLS, and any Node whose internals are not the
// ones tested). One concern, the bytes of a client connection both ways; long because the handle
// needs its own reads, writes, backpressure and close, each of which net.Socket otherwise does.
import { Server, Socket } from 'node:net';
import { getSystemErrorName } from 'node:util';
import { acceptWithSlabReads, onChunks, SlabReads } from './slab-reads';

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

/** A libuv stream handle's methods and fields that TcpClient uses (Node's tcp_wrap). */
interface TcpHandle {
  onread: (this: TcpHandle, arrayBuffer: ArrayBuffer | undefined) => Buffer | undefined;
  /** Ours: the connection this handle reads for, until it is closed. */
  client?: TcpClient | null;
  readonly writeQueueSize: number;
  readStart(): number;
  readStop(): number;
  useUserBuffer(b: Buffer): void;
  writeBuffer(req: WriteRequest, b: Buffer): number;
  close(cb: () => void): void;
  getpeername(out: { address?: string; port?: number }): number;
  setNoDelay(on: boolean): number;
  setKeepAlive(on: boolean, seconds: number): number;
}

/** Node's WriteWrap: what libuv's write request reports back to. */
interface WriteRequest {
  handle: TcpHandle;
  oncomplete: (this: WriteRequest, status: number) => void;
  client: TcpClient | null;
  buffer: Buffer | null;
}

interface StreamInternals {
  WriteWrap: new () => WriteRequest;
  streamBaseState: Int32Array;
  kReadBytesOrError: number;
  kLastWriteWasAsync: number;
}

/**
 * libuv's end of file (its code is the same on every platform). Node's own stream code compares
 * with it the same way.
 */
const UV_EOF = -4095;

/** As net.Socket's default: write() asks the caller to wait beyond this many queued bytes. */
const HIGH_WATER = 16 * 1024;

/**
 * The Node majors whose stream handles TcpClient was tested on (writeBuffer with a WriteWrap,
 * onread with a user buffer, streamBaseState): a handle method that changes its arguments
 * aborts the process, so any other version gets net.Socket.
 */
const TESTED_MAJORS = new Set([20, 24, 26]);

/** Node's stream_wrap binding, found once; null where TcpClient is not used. */
const internals: StreamInternals | null = findInternals();
// Its fields, read once: the binding is a dictionary-mode object, slow to read on every read and write.
const WriteWrap = internals?.WriteWrap;
const streamState = internals?.streamBaseState ?? new Int32Array(0);
const READ_BYTES = internals?.kReadBytesOrError ?? 0;
const LAST_WRITE_ASYNC = internals?.kLastWriteWasAsync ?? 0;

function findInternals(): StreamInternals | null {
  if (!TESTED_MAJORS.has(Number(process.versions.node.split('.')[0]))) return null;
  try {
    // process.binding is deprecated (DEP0111) but kept for these modules; it warns only with --pending-deprecation.
    const b = (process as unknown as { binding(name: string): Partial<StreamInternals> }).binding('stream_wrap');
    if (typeof b.WriteWrap !== 'function' || !(b.streamBaseState instanceof Int32Array) || typeof b.kReadBytesOrError !== 'number' || typeof b.kLastWriteWasAsync !== 'number') return null;
    return b as StreamInternals;
  } catch {
    return null;
  }
}

function errnoError(code: number, syscall: string): Error {
  const name = getSystemErrorName(code);
  return Object.assign(new Error(`${syscall} ${name}`), { code: name, errno: code, syscall });
}

function onWriteComplete(this: WriteRequest, status: number): void {
  const c = this.client!;
  this.client = null;
  this.buffer = null;
  c.written(status);
}

/** The handle's onread: `this` is the handle (one function for every connection, no closure). */
function onRead(this: TcpHandle): Buffer | undefined {
  return this.client?.read(streamState[READ_BYTES]!);
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
  /** Writes libuv has not finished (their buffers are held by their requests). */
  private pending = 0;
  /** A request object for the next write: one that completed at once can be used again. */
  private spare: WriteRequest | null = null;
  private needDrain = false;
  private paused = false;
  /** Closing once the pending writes are done. */
  private closing = false;
  private closed = false;
  /** The handle is a net.Socket's now (TLS). */
  private given = false;
  private peer: { address?: string; port?: number } | null = null;
  /** What waits for the pending writes (afterWrites). */
  private whenWritten: (() => void) | null = null;

  constructor(private readonly handle: TcpHandle) {}

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
    const req = this.spare ?? new WriteWrap!();
    this.spare = null;
    req.handle = this.handle;
    req.oncomplete = onWriteComplete;
    req.client = this;
    const err = this.handle.writeBuffer(req, b);
    if (err !== 0) {
      this.fail(errnoError(err, 'write'));
      return false;
    }
    if (!streamState[LAST_WRITE_ASYNC]) {
      // Written whole into the kernel: libuv made no request of it, so it serves the next write.
      this.spare = req;
      return !this.needDrain;
    }
    req.buffer = b;
    this.pending++;
    if (this.handle.writeQueueSize >= HIGH_WATER) this.needDrain = true;
    return !this.needDrain;
  }

  /** A queued write finished (status < 0: it failed). */
  written(status: number): void {
    this.pending--;
    if (this.closed || this.given) return;
    if (status < 0) return this.fail(errnoError(status, 'write'));
    if (this.pending > 0) return;
    if (this.closing) return this.closeHandle();
    const f = this.whenWritten;
    this.whenWritten = null;
    f?.();
    if (this.needDrain) {
      this.needDrain = false;
      this.ev?.drain();
    }
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
    if (this.pending === 0) this.closeHandle();
  }

  destroy(): void {
    if (this.closed || this.given) return;
    this.closeHandle();
  }

  afterWrites(f: () => void): void {
    if (this.pending === 0) f();
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
    if (!this.writable || this.pending > 0) throw new Error('the connection cannot start TLS now');
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
    if (internals && h && typeof h.onconnection === 'function' && typeof h.getpeername === 'function') {
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
export const acceptsHandles = internals !== null;
