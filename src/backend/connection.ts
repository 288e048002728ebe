import { Socket } from 'node:net';
import { Backend, Frontend, TxStatus } from '../protocol/codes';
import { decodeParameterStatus, decodeReadyForQuery, encodeParameterStatus } from '../protocol/backend';
import { Writer } from '../protocol/writer';
import { Framer } from '../protocol/framer';
import { onChunks } from '../net/slab-reads';
import { errnoError, HandleWrites, socketHandle } from '../net/stream-handle';

export interface NodeAddress {
  readonly id: number;
  readonly host: string;
  readonly port: number;
}

/** Whoever currently owns the connection: the startup exchange, a session, a reset, the pool. */
export interface BackendHandler {
  frame(type: number, buf: Buffer, start: number, end: number): void;
  /** The frames of one received chunk were all delivered (time to write them on in one go). */
  chunkEnd?(): void;
  /** The socket is gone (err when it failed rather than ended). */
  closed(err?: Error): void;
}

/** A client's startup settings as a connection carries them (session/carried-startup.ts). */
export interface StartupSettings {
  /** Equal for equal settings. */
  readonly key: string;
  readonly values: ReadonlyMap<string, string>;
}

/**
 * What the sessions that used a connection left on it, recorded by the session layer so that the
 * next session to use it knows what to undo and what it can keep: whose settings it carries, how
 * far into that session's replay log it is, and the protocol-level prepared statements on it.
 */
export class CarriedState {
  /** The session whose state the connection carries (null: only its startup's). */
  owner: object | null = null;
  /** The last entry of the owner's replay log applied here. */
  appliedSeq = 0;
  /** Session statements (SET, PREPARE, ...) ran here: another session must reset it first. */
  dirty = false;
  /**
   * The owner may have called nextval or setval here: the values currval and lastval return are
   * the connection's, so another session must not find them (DISCARD SEQUENCES first).
   */
  sequences = false;
  /** Protocol-level prepared statements here, by name ('' = unnamed), as their Parse message. */
  readonly prepared = new Map<string, { readonly parse: Buffer }>();
  /**
   * Transaction mode: the startup settings of a client given here with set_config() (null: the
   * connection has its own, from its start); they do not make it dirty, a borrower changes them.
   */
  startup: StartupSettings | null = null;

  /** The connection was reset (DISCARD ALL): nothing of any session is left. */
  clear(): void {
    this.owner = null;
    this.appliedSeq = 0;
    this.dirty = false;
    this.sequences = false;
    this.prepared.clear();
    this.startup = null;
  }

  /** Another session must not find what is here: it resets the connection first. */
  get foreign(): boolean {
    return this.dirty || this.sequences;
  }
}

/** A server message's cap: PostgreSQL never sends more than 1 GB in one message (MaxAllocSize). */
const MAX_BACKEND_MESSAGE = 0x40000000 + 1024;

/**
 * One socket to a node. It keeps what the protocol says about the server side (transaction
 * status from ReadyForQuery, the reported parameters) and what is still owed to us, so that the
 * pool can tell whether the connection is at a clean boundary (house rule 4).
 */
export class BackendConnection {
  processId = 0;
  secretKey = 0;
  txStatus: TxStatus = 'idle';
  /** ParameterStatus values as last reported by the server. */
  readonly params = new Map<string, string>();
  /** `params` as ParameterStatus messages, made when a welcome first needs them (null: changed since). */
  private paramsMessages: Buffer | null = null;
  /** ReadyForQuery messages still owed for Query, Sync and FunctionCall already sent. */
  awaitingReady = 0;
  /** Extended-query messages were sent since the last Sync. */
  unsynced = false;
  readonly createdAt = Date.now();
  readonly carried = new CarriedState();
  isClosed = false;
  private handler: BackendHandler;
  /** Writes straight to the socket's handle (null: TLS, or a Node whose handles are not known). */
  private readonly direct: HandleWrites | null;
  private readonly framer = new Framer(MAX_BACKEND_MESSAGE, true);

  constructor(
    readonly socket: Socket,
    readonly node: NodeAddress,
    readonly poolKey: string,
    handler: BackendHandler,
  ) {
    this.handler = handler;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
    onChunks(socket, (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.onClose(err));
    socket.on('close', () => this.onClose());
    const h = socketHandle(socket);
    this.direct = h && new HandleWrites(h, (status, drained) => this.written(status, drained));
  }

  /**
   * The reported parameters as ParameterStatus messages, for a client's welcome: a pooled
   * connection welcomes client after client with the same ones, so they are encoded once.
   */
  parameterMessages(): Buffer {
    if (this.paramsMessages === null) {
      const w = new Writer(1024);
      for (const [name, value] of this.params) encodeParameterStatus(w, name, value);
      this.paramsMessages = w.finish();
    }
    return this.paramsMessages;
  }

  /** Hands the connection to a new owner, which starts reading at once. */
  setHandler(h: BackendHandler): void {
    this.handler = h;
    this.socket.resume();
  }

  /** At a boundary where another session may use it: nothing owed, nothing half-sent. */
  get atBoundary(): boolean {
    return !this.isClosed && this.awaitingReady === 0 && !this.unsynced;
  }

  /**
   * Sends bytes to the server. On a plain socket with nothing queued in its stream they go
   * straight to the handle (stream-handle.ts): net.Socket's Writable made a request object and
   * ran a round of stream bookkeeping for every message, about a microsecond each. libuv keeps
   * the handle's writes in order, so a later socket.write (Terminate) still follows them.
   */
  write(buf: Buffer): boolean {
    const d = this.direct;
    if (d === null || this.isClosed || this.socket.writableLength > 0) return this.socket.write(buf);
    const err = d.write(buf);
    if (err !== 0) {
      // As net.Socket reports it: on the next tick, never inside the write (its caller goes on
      // with the connection it wrote to, and learns of the loss the way it always does).
      process.nextTick(() => this.destroy(errnoError(err, 'write')));
      return false;
    }
    return !d.full;
  }

  /** A write libuv had queued finished: a failure closes; a drained queue is the socket's 'drain', as its own writes would say. */
  private written(status: number, drained: boolean): void {
    if (this.isClosed) return;
    if (status < 0) this.destroy(errnoError(status, 'write'));
    else if (drained) this.socket.emit('drain');
  }

  /** Tracks one frontend message sent to the server (called for every frame forwarded). */
  noteSent(type: number): void {
    switch (type) {
      case Frontend.Query:
      case Frontend.FunctionCall:
        this.awaitingReady++;
        break;
      case Frontend.Sync:
        this.awaitingReady++;
        this.unsynced = false;
        break;
      case Frontend.Parse:
      case Frontend.Bind:
      case Frontend.Describe:
      case Frontend.Execute:
      case Frontend.Close:
      case Frontend.Flush:
        this.unsynced = true;
        break;
    }
  }

  /** Made once per connection, not per received chunk: this is the hot path. */
  private readonly onFrame = (type: number, buf: Buffer, start: number, end: number): void => {
    if (type === Backend.ReadyForQuery) {
      this.txStatus = decodeReadyForQuery(buf, start);
      if (this.awaitingReady > 0) this.awaitingReady--;
    } else if (type === Backend.ParameterStatus) {
      const [name, value] = decodeParameterStatus(buf, start, end);
      this.params.set(name, value);
      this.paramsMessages = null;
    }
    this.handler.frame(type, buf, start, end);
  };

  private onData(chunk: Buffer): void {
    try {
      this.framer.push(chunk, this.onFrame);
      this.handler.chunkEnd?.();
    } catch (err) {
      this.destroy(err as Error);
    }
  }

  private onClose(err?: Error): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.socket.destroy();
    this.handler.closed(err);
  }

  /** Closes politely (Terminate) when the socket is still writable. */
  terminate(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    if (!this.socket.writable) {
      this.socket.destroy();
      return;
    }
    this.socket.end(TERMINATE);
    // The server closes on Terminate; do not wait for it forever.
    setTimeout(() => this.socket.destroy(), 5000).unref();
  }

  destroy(err?: Error): void {
    this.onClose(err);
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }
}

const TERMINATE = Buffer.from([Frontend.Terminate, 0, 0, 0, 4]);
