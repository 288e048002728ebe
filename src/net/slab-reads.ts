import type { OnReadOpts, Socket } from 'node:net';

/**
 * A new socket's first slab: a session's startup and its first statements. Most of a client that
 * stays idle is this slab, so it is small (Node's shared pool packs four to a page).
 */
const FIRST_SLAB = 2 * 1024;
/** The next slabs: room for many small protocol exchanges, little memory when idle. */
const BASE_SLAB = 16 * 1024;
/** Bulk transfers (COPY, large results) grow the slab up to this, as Node's own 64 KB reads. */
const MAX_SLAB = 256 * 1024;
/** A window smaller than this (or than a quarter of a small slab) is not worth a read: the rest of the slab is left unused. */
const MIN_WINDOW = 2 * 1024;

type Sink = (chunk: Buffer) => void;

/**
 * Reads of a plain TCP socket through Node's `onread` option: libuv reads straight into a window
 * of a slab that this socket owns, and the chunk goes to one callback. This skips the Readable
 * stream machinery (push, 'data' emit, a nextTick per chunk) and the 64 KB allocation and shrink
 * Node makes for every read, which together were about a sixth of Sluice's CPU per pgbench
 * transaction. A window is never read into twice: the next read goes to the rest of the slab or
 * to a new slab. So a chunk stays valid for as long as anyone keeps it (a frame split across
 * reads, a held batch, a write libuv has not finished), exactly as a 'data' chunk would; a slab
 * is garbage once nothing refers to it.
 */
export class SlabReads {
  private slab: Buffer;
  private off = 0;
  private last = 0;
  private windowLength = 0;
  private sink: Sink | null = null;
  /** Chunks that arrived before anyone listened (a node is not expected to speak first). */
  private early: Buffer[] = [];

  constructor() {
    this.slab = Buffer.allocUnsafe(FIRST_SLAB);
  }

  /** The `onread` option for net.connect or a Socket. */
  options(): OnReadOpts {
    return { buffer: () => this.nextWindow(), callback: (n, buf) => this.received(n, buf) };
  }

  /** True: keep reading (pausing is the socket's pause(), as with 'data'). */
  private received(n: number, buf: Uint8Array): boolean {
    this.last = n;
    const chunk = buf as Buffer;
    const c = chunk.subarray(0, n);
    if (this.sink) this.sink(c);
    else this.early.push(c);
    return true;
  }

  /** Called by Node once at the start and after every read: where the next read goes. */
  private nextWindow(): Buffer {
    const filled = this.last > 0 && this.last === this.windowLength;
    this.off += this.last;
    this.last = 0;
    if (filled || this.slab.length - this.off < Math.min(MIN_WINDOW, this.slab.length >> 2)) {
      const size = filled ? Math.min(this.slab.length * 2, MAX_SLAB) : BASE_SLAB;
      this.slab = Buffer.allocUnsafe(size);
      this.off = 0;
    }
    this.windowLength = this.slab.length - this.off;
    return this.slab.subarray(this.off);
  }

  /** The first window, for a handle read without net.Socket (client-transport.ts). */
  first(): Buffer {
    return this.nextWindow();
  }

  /** `n` bytes were read into the last window: where the next read goes. */
  next(n: number): Buffer {
    this.last = n;
    return this.nextWindow();
  }

  /** Where chunks go from now on (the ones that came early first). */
  listen(sink: Sink): void {
    this.sink = sink;
    const early = this.early;
    this.early = [];
    for (const c of early) sink(c);
  }
}

/**
 * Which sockets read through slabs. One of the two module-level values outside server.ts (house
 * rule 11; the other is the symbols below, a constant found once), on purpose: a socket passes
 * through openTransport, TLS negotiation and BackendConnection before anyone reads it, and keying
 * by the socket keeps their signatures as they were. It holds no state shared between sessions,
 * and an entry goes with its socket (a WeakMap).
 */
const readers = new WeakMap<Socket, SlabReads>();

/** Remembers that a socket was made with slab reads, so onChunks can find them. */
export function withSlabReads(socket: Socket, reads: SlabReads): Socket {
  readers.set(socket, reads);
  return socket;
}

/**
 * Delivers a socket's chunks to `sink`: through its slab reads when it was made with them,
 * else through 'data' events (TLS sockets, and any socket made elsewhere).
 */
export function onChunks(socket: Socket, sink: Sink): void {
  const r = readers.get(socket);
  if (r) r.listen(sink);
  else socket.on('data', sink);
}

/**
 * Slab reads for a connection net.Server accepted. net.Server has no `onread` option for the
 * sockets it accepts, so the listener pauses them on connect (pauseOnConnect) and this gives the
 * paused socket what `onread` would have: the three fields Node keeps the option in (found by
 * their symbols' names) and the first window on its handle, before reading starts. Making a
 * second Socket on the same handle instead cost about 90 µs per connection (a Socket is not cheap
 * to build or to destroy). When this Node keeps those fields elsewhere, the socket simply reads
 * with 'data' events.
 */
export function acceptWithSlabReads(accepted: Socket): Socket {
  const fields = onreadFields(accepted);
  const handle = (accepted as unknown as { _handle?: { useUserBuffer?: (b: Buffer) => void } })._handle;
  if (fields && typeof handle?.useUserBuffer === 'function' && !accepted.destroyed) {
    const reads = new SlabReads();
    const o = reads.options();
    const gen = o.buffer as () => Buffer;
    const first = gen();
    const s = accepted as unknown as Record<symbol, unknown>;
    s[fields.buffer] = first;
    s[fields.callback] = o.callback;
    s[fields.generator] = gen;
    handle.useUserBuffer(first);
    withSlabReads(accepted, reads);
  }
  accepted.resume();
  return accepted;
}

/**
 * The symbols, found on the first accepted socket and the same for every later one (they are
 * Node's module constants): the look-up made an array and three closures per connection.
 */
let fieldsFound: { buffer: symbol; callback: symbol; generator: symbol } | null | undefined;

function onreadFields(s: Socket): { buffer: symbol; callback: symbol; generator: symbol } | null {
  if (fieldsFound === undefined) fieldsFound = findOnreadFields(s);
  return fieldsFound;
}

function findOnreadFields(s: Socket): { buffer: symbol; callback: symbol; generator: symbol } | null {
  const syms = Object.getOwnPropertySymbols(s);
  const find = (name: string) => syms.find((x) => x.description === name);
  const buffer = find('kBuffer');
  const callback = find('kBufferCb');
  const generator = find('kBufferGen');
  return buffer && callback && generator ? { buffer, callback, generator } : null;
}
