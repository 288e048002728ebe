// libuv's stream handles as Node's stream_wrap binding exposes them, and writes straight to one:
// what the client transport (client-transport.ts) and a server connection (backend/connection.ts)
// use to skip net.Socket's Writable stream on the data path.
import type { Socket } from 'node:net';
import { getSystemErrorName } from 'node:util';

/** What writing needs of a libuv stream handle (Node's tcp_wrap and pipe_wrap). */
export interface StreamHandle {
  readonly writeQueueSize: number;
  writeBuffer(req: WriteRequest, b: Buffer): number;
}

/** Node's WriteWrap: what libuv's write request reports back to. */
export interface WriteRequest {
  handle: StreamHandle;
  oncomplete: (this: WriteRequest, status: number) => void;
  writes: HandleWrites | null;
  buffer: Buffer | null;
}

interface StreamInternals {
  WriteWrap: new () => WriteRequest;
  streamBaseState: Int32Array;
  kReadBytesOrError: number;
  kLastWriteWasAsync: number;
}

/**
 * The Node majors whose stream handles were tested here (writeBuffer with a WriteWrap, onread
 * with a user buffer, streamBaseState): a handle method that changes its arguments aborts the
 * process, so any other version uses net.Socket.
 */
const TESTED_MAJORS = new Set([20, 24, 26]);

/** Node's stream_wrap binding, found once; null where handles are not used directly. */
const internals: StreamInternals | null = findInternals();
// Its fields, read once: the binding is a dictionary-mode object, slow to read on every read and write.
const WriteWrap = internals?.WriteWrap;
const streamState = internals?.streamBaseState ?? new Int32Array(0);
const READ_BYTES = internals?.kReadBytesOrError ?? 0;
const LAST_WRITE_ASYNC = internals?.kLastWriteWasAsync ?? 0;

/** This Node's handles are the tested ones. */
export const handlesKnown = internals !== null;

/** The byte count (or negative error) of the read being reported to a handle's onread. */
export function readResult(): number {
  return streamState[READ_BYTES]!;
}

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

export function errnoError(code: number, syscall: string): Error {
  const name = getSystemErrorName(code);
  return Object.assign(new Error(`${syscall} ${name}`), { code: name, errno: code, syscall });
}

/** As net.Socket's default: a writer is asked to wait beyond this many queued bytes. */
const HIGH_WATER = 16 * 1024;

function onWriteComplete(this: WriteRequest, status: number): void {
  const w = this.writes!;
  this.writes = null;
  this.buffer = null;
  w.completed(status);
}

/**
 * Writes straight to a handle: a buffer the kernel takes whole at once (nearly every write of
 * a protocol exchange) costs one call and no object; one it cannot is queued by libuv, which
 * keeps writes of a handle in order and holds the buffer until it reports back.
 */
export class HandleWrites {
  /** Writes libuv has not finished (their buffers are held by their requests). */
  pending = 0;
  /** The queue passed the high-water mark: the writer waits for `done` with nothing pending. */
  full = false;
  /** A request object for the next write: one that completed at once can be used again. */
  private spare: WriteRequest | null = null;

  /**
   * `done(status, drained)`: a queued write finished (status < 0: it failed); drained: nothing
   * is pending any more after the queue was full (time for the writer's 'drain').
   */
  constructor(
    private readonly handle: StreamHandle,
    private readonly done: (status: number, drained: boolean) => void,
  ) {}

  /** 0, or the error code of a write that failed at once. */
  write(b: Buffer): number {
    const req = this.spare ?? this.request();
    this.spare = null;
    const err = this.handle.writeBuffer(req, b);
    if (err !== 0) return err;
    if (!streamState[LAST_WRITE_ASYNC]) {
      // Written whole into the kernel: libuv made no request of it, so it serves the next write.
      this.spare = req;
      return 0;
    }
    // libuv holds the request (and the buffer) and reports back to it later, from the event loop.
    req.writes = this;
    req.buffer = b;
    this.pending++;
    if (this.handle.writeQueueSize >= HIGH_WATER) this.full = true;
    return 0;
  }

  private request(): WriteRequest {
    const req = new WriteWrap!();
    req.handle = this.handle;
    req.oncomplete = onWriteComplete;
    req.writes = null;
    req.buffer = null;
    return req;
  }

  /** Called by the write request libuv reports back to. */
  completed(status: number): void {
    this.pending--;
    const drained = this.pending === 0 && this.full;
    if (drained) this.full = false;
    this.done(status, drained);
  }
}

/**
 * The handle under a plain (not TLS) connected net.Socket, to write to directly, where this
 * Node's handles are the tested ones; else null.
 */
export function socketHandle(socket: Socket): StreamHandle | null {
  if (!internals || (socket as { encrypted?: boolean }).encrypted) return null;
  const h = (socket as unknown as { _handle?: Partial<StreamHandle> | null })._handle;
  return h && typeof h.writeBuffer === 'function' ? (h as StreamHandle) : null;
}
