// The pool of backend connections, one concern at ~430 lines: taking, giving back, resetting,
// recovering (a vanished client's connection drained) and evicting connections, and transaction
// mode's per-(node, database, user) limit with its line of waiters. They share the idle stacks
// and the counts, which is why they are one class.
import { BackendConnection, BackendHandler, type StartupSettings } from '../backend/connection';
import { encodeQueries, EncodedQueries, runEncoded } from '../backend/query';
import { BackendStartupError } from '../backend/connect';
import { cancelOnNode } from '../backend/cancel';
import { Backend, Frontend } from '../protocol/codes';
import { SqlState } from '../protocol/sqlstate';
import type { Logger } from '../log/logger';

export interface PoolOptions {
  /** Most backend connections per node, open or opening (num_init_children × max_pool). */
  maxPerNode: number;
  /** An idle connection older than this in the pool is closed (connection_life_time; 0 = never). */
  idleLifetimeMs: number;
  /** Run before a connection goes back to the pool (reset_query_list). */
  resetQueries: readonly string[];
  resetTimeoutMs: number;
  /** How long each checkout took (the client wait metric). */
  waited?: (seconds: number) => void;
  /**
   * Transaction mode (default_pool_size): the most connections per (node, database, user),
   * open or opening, for a checkout that asks for the limit; past it a checkout waits in line
   * for one given back.
   */
  groupLimit: number;
  /** How long a checkout may wait in that line (query_wait_timeout, ms); 0 = forever. */
  waitTimeoutMs: number;
  /** The error a checkout that waited too long fails with. */
  waitedTooLong?: () => Error;
}

/** A checkout waiting for a connection of its (node, database, user) group, in arrival order. */
interface Waiter {
  readonly nodeId: number;
  readonly key: string;
  readonly open: () => Promise<BackendConnection>;
  readonly resolve: (r: { conn: BackendConnection; reused: boolean }) => void;
  readonly reject: (err: Error) => void;
  timer: NodeJS.Timeout | undefined;
}

/** Transaction mode's accounting for one (node, database, user): connections open or opening, and who waits. */
interface Group {
  open: number;
  readonly waiters: Waiter[];
}

/** The (node, database, user) part of a pool key (see pool-key.ts). */
function groupOf(key: string): string {
  let cut = -1;
  for (let i = 0; i < 3; i++) {
    cut = key.indexOf('\u0000', cut + 1);
    if (cut < 0) return key;
  }
  return key.slice(0, cut);
}

/** One node's backend connections (the pool metrics). */
export interface NodePoolCounts {
  idle: number;
  inUse: number;
  opening: number;
  /** Backend connections opened to the node since Sluice started (what reuse saves). */
  opened: number;
  /** Checkouts waiting for a connection to the node (transaction mode's default_pool_size). */
  waiting: number;
}

/** Parse messages remembered per pool key, at most. */
const MAX_KNOWN_PARSES = 10_000;

/** Databases whose connections are never kept: CREATE DATABASE needs its template unused. */
const NEVER_POOLED = new Set(['template0', 'template1']);

const COPY_FAIL = Buffer.concat([Buffer.from([Frontend.CopyFail, 0, 0, 0, 24]), Buffer.from('client disconnected\0')]);
const SYNC = Buffer.from([Frontend.Sync, 0, 0, 0, 4]);

interface Idle {
  conn: BackendConnection;
  timer: NodeJS.Timeout | undefined;
}

/**
 * The one global pool (not one per worker, as pgpool's per-child pools are): idle connections per
 * key, newest first so warm connections are reused; a per-node cap enforced by closing the least
 * recently used idle connection of that node.
 */
export class PoolSet {
  private readonly idle = new Map<string, Idle[]>();
  /** Idle connections in release order, oldest first: the eviction order. */
  private readonly lru = new Set<Idle>();
  private readonly perNode = new Map<number, number>();
  private readonly opening = new Map<number, number>();
  private readonly opened = new Map<number, number>();
  private readonly groups = new Map<string, Group>();
  /** Each pool key's group, found once (a give-back looks it up every transaction). */
  private readonly groupByKey = new Map<string, Group>();
  /** Parse messages a server accepted, by pool key (transaction mode answers their repeats itself). */
  private readonly parsed = new Map<string, Set<string>>();
  private stopped = false;
  /** reset_query_list as messages, for the options they were made from. */
  private resets: { opts: PoolOptions; idle: EncodedQueries; inTransaction: EncodedQueries } | null = null;

  constructor(
    /** Replaced by a reload (connection_life_time, reset_query_list). */
    public opts: PoolOptions,
    private readonly log: Logger,
  ) {}

  get idleCount(): number {
    return this.lru.size;
  }

  /** A server of this pool key accepted this Parse message (name, text and parameter types). */
  parseAccepted(key: string, parse: Buffer): void {
    let known = this.parsed.get(key);
    if (!known) this.parsed.set(key, (known = new Set()));
    // A bound on what a client's statement texts can make Sluice keep.
    if (known.size >= MAX_KNOWN_PARSES) known.clear();
    known.add(parse.toString('latin1'));
  }

  parseKnown(key: string, parse: Buffer): boolean {
    return this.parsed.get(key)?.has(parse.toString('latin1')) ?? false;
  }

  /**
   * An idle pooled connection for the key, taken at once (no await: transaction mode's hot path).
   * Transaction mode names the borrowing session: the connection it gave back last is taken
   * first (its state is already there: no reset, nothing replayed, its sequence values still
   * current), then one no session left anything on (better one already carrying the same
   * startup settings), then the newest.
   */
  takeIdle(key: string, owner: object | null = null, startup: StartupSettings | null = null): BackendConnection | null {
    const stack = this.idle.get(key);
    if (!stack) return null;
    let best = stack.length - 1;
    if (owner !== null) {
      let score = -1;
      const wanted = startup?.key ?? '';
      for (let i = stack.length - 1; i >= 0 && score < 5; i--) {
        const c = stack[i]!.conn.carried;
        const s = c.owner === owner ? (c.sequences ? 5 : 4) : (c.foreign ? 0 : 2) + ((c.startup?.key ?? '') === wanted ? 1 : 0);
        if (s > score) {
          score = s;
          best = i;
        }
      }
    }
    while (stack.length > 0) {
      const it = best === stack.length - 1 ? stack.pop()! : stack.splice(best, 1)[0]!;
      best = stack.length - 1;
      this.unidle(it);
      if (!it.conn.isClosed) return it.conn;
    }
    return null;
  }

  /** An idle pooled connection for the key as a checkout (counted as one without a wait), or null. */
  acquireNow(key: string): BackendConnection | null {
    const idle = this.takeIdle(key);
    if (idle) this.opts.waited?.(0);
    return idle;
  }

  /**
   * A pooled connection for the key, or a new one from `open`. With a group limit (transaction
   * mode), a checkout past it waits in line for a connection given back or closed.
   */
  async acquire(nodeId: number, key: string, open: () => Promise<BackendConnection>, limited = false): Promise<{ conn: BackendConnection; reused: boolean }> {
    const idle = this.acquireNow(key);
    if (idle) return { conn: idle, reused: true };
    const started = performance.now();
    const r = limited ? await this.withinGroup(nodeId, key, open) : await this.openNew(nodeId, open, null);
    this.opts.waited?.((performance.now() - started) / 1000);
    return r;
  }

  private async openNew(nodeId: number, open: () => Promise<BackendConnection>, group: Group | null): Promise<{ conn: BackendConnection; reused: boolean }> {
    if ((this.perNode.get(nodeId) ?? 0) >= this.opts.maxPerNode) void this.evictOne(nodeId);
    this.count(this.perNode, nodeId, +1);
    this.count(this.opening, nodeId, +1);
    if (group) group.open++;
    try {
      const conn = await this.openMakingRoom(nodeId, open);
      this.count(this.opened, nodeId, +1);
      conn.socket.once('close', () => {
        this.count(this.perNode, nodeId, -1);
        if (group) this.groupLost(group);
      });
      return { conn, reused: false };
    } catch (err) {
      this.count(this.perNode, nodeId, -1);
      if (group) this.groupLost(group);
      throw err;
    } finally {
      this.count(this.opening, nodeId, -1);
    }
  }

  private group(key: string): Group {
    let g = this.groupByKey.get(key);
    if (g) return g;
    const name = groupOf(key);
    g = this.groups.get(name);
    if (!g) this.groups.set(name, (g = { open: 0, waiters: [] }));
    this.groupByKey.set(key, g);
    return g;
  }

  /** The first in line of the group, out of the line (its timer stopped); undefined when none waits. */
  private nextWaiter(g: Group): Waiter | undefined {
    const w = g.waiters.shift();
    if (w) clearTimeout(w.timer);
    return w;
  }

  /** Transaction mode: a new connection while the group has room; else a place in its line. */
  private withinGroup(nodeId: number, key: string, open: () => Promise<BackendConnection>): Promise<{ conn: BackendConnection; reused: boolean }> {
    const g = this.group(key);
    if (g.open < this.opts.groupLimit) return this.openNew(nodeId, open, g);
    return new Promise((resolve, reject) => {
      const w: Waiter = { nodeId, key, open, resolve, reject, timer: undefined };
      if (this.opts.waitTimeoutMs > 0) {
        w.timer = setTimeout(() => {
          const i = g.waiters.indexOf(w);
          if (i >= 0) g.waiters.splice(i, 1);
          reject(this.opts.waitedTooLong?.() ?? new Error('timed out waiting for a server connection'));
        }, this.opts.waitTimeoutMs);
        w.timer.unref();
      }
      g.waiters.push(w);
      // A connection idle in the group under other startup parameters makes room for this one.
      this.evictIdleOf(g);
    });
  }

  /** A connection of the group closed (or failed to open): the first in line may open one. */
  private groupLost(g: Group): void {
    g.open--;
    const w = this.nextWaiter(g);
    if (w) this.openNew(w.nodeId, w.open, g).then(w.resolve, w.reject);
  }

  /** Closes one idle connection of the group (its close lets the first in line open its own). */
  private evictIdleOf(g: Group): void {
    for (const it of this.lru) {
      if (this.groupByKey.get(it.conn.poolKey) === g) return this.drop(it);
    }
  }

  /**
   * Transaction mode: a connection back between transactions, as it is (no reset: the session
   * layer carries each client's state onto the connection it borrows), to the first in line of
   * its group or idle.
   */
  giveBack(conn: BackendConnection): void {
    if (this.stopped || !conn.atBoundary || conn.txStatus !== 'idle') return this.discard(conn);
    this.putIdle(conn);
  }

  /**
   * The server's max_connections can be below what the pool may hold (other clients, a smaller
   * server after a failover, connections idle under many keys: every application_name is a key).
   * A refusal for too many connections while this pool keeps idle connections to that node is
   * ours to mend: close the least recently used one, wait until the server has let it go, retry.
   */
  private async openMakingRoom(nodeId: number, open: () => Promise<BackendConnection>): Promise<BackendConnection> {
    for (;;) {
      try {
        return await open();
      } catch (err) {
        if (!(err instanceof BackendStartupError && err.code === SqlState.TooManyConnections)) throw err;
        const gone = this.evictOne(nodeId);
        if (!gone) throw err;
        this.log.info({ node: nodeId }, 'node refused a connection for too many clients; closed an idle pooled one to make room');
        await gone;
      }
    }
  }

  /** Each node's connections now: idle in the pool, opening, and the rest in use by sessions. */
  counts(nodeCount: number): NodePoolCounts[] {
    const idle = new Array<number>(nodeCount).fill(0);
    const waiting = new Array<number>(nodeCount).fill(0);
    for (const it of this.lru) if (it.conn.node.id < nodeCount) idle[it.conn.node.id]!++;
    for (const g of this.groups.values()) for (const w of g.waiters) if (w.nodeId < nodeCount) waiting[w.nodeId]!++;
    return idle.map((i, node) => {
      const opening = this.opening.get(node) ?? 0;
      return { idle: i, opening, inUse: Math.max(0, (this.perNode.get(node) ?? 0) - i - opening), opened: this.opened.get(node) ?? 0, waiting: waiting[node]! };
    });
  }

  /** Takes a connection back: reset, then idle; or closed when it is not clean. */
  async release(conn: BackendConnection, database: string): Promise<void> {
    if (this.stopped || !conn.atBoundary || NEVER_POOLED.has(database)) {
      this.discard(conn);
      return;
    }
    const resets = this.resetsFor(this.opts);
    try {
      const results = await runEncoded(conn, conn.txStatus === 'idle' ? resets.idle : resets.inTransaction, this.opts.resetTimeoutMs);
      const failed = results.find((r) => r.error);
      if (failed || conn.txStatus !== 'idle' || this.stopped) {
        if (failed) this.log.warn({ node: conn.node.id, error: failed.error }, 'reset query failed; connection closed');
        this.discard(conn);
        return;
      }
    } catch {
      this.discard(conn);
      return;
    }
    conn.carried.clear();
    this.putIdle(conn);
  }

  /** reset_query_list encoded once per configuration: without ABORT for a connection outside a transaction. */
  private resetsFor(opts: PoolOptions): { idle: EncodedQueries; inTransaction: EncodedQueries } {
    if (this.resets?.opts !== opts) {
      const all = opts.resetQueries;
      this.resets = { opts, idle: encodeQueries(all.filter((q) => !/^\s*abort\s*$/i.test(q))), inTransaction: encodeQueries(all) };
    }
    return this.resets;
  }

  /**
   * A connection whose client left in the middle of an exchange (a statement running, rows on
   * their way, a COPY from the client, a batch without its Sync): the statement is cancelled, a
   * COPY from the client failed (the server ignores CopyFail outside COPY), the batch synced, and
   * every reply still owed read and dropped; then it is reset and pooled like any other. It goes
   * back only once the cancel request was delivered (it can never reach the next borrower's
   * statement), and is closed when all that takes longer than the reset timeout.
   */
  recover(conn: BackendConnection, database: string): void {
    if (conn.isClosed) return;
    if (conn.atBoundary) return void this.release(conn, database).catch(() => undefined);
    if (this.stopped) return this.discard(conn);
    const timer = setTimeout(() => {
      this.log.warn({ node: conn.node.id, backendPid: conn.processId }, 'connection of a vanished client did not finish in time; closed');
      conn.destroy();
    }, this.opts.resetTimeoutMs);
    timer.unref();
    let delivered = false;
    const settle = () => {
      if (!delivered || conn.awaitingReady > 0 || conn.isClosed) return;
      clearTimeout(timer);
      this.release(conn, database).catch(() => undefined);
    };
    conn.setHandler({
      frame: (type) => {
        if (type === Backend.ReadyForQuery) settle();
      },
      closed: () => clearTimeout(timer),
    });
    conn.write(COPY_FAIL);
    if (conn.unsynced) {
      conn.write(SYNC);
      conn.noteSent(Frontend.Sync);
    }
    cancelOnNode(conn, this.log, () => {
      delivered = true;
      settle();
    });
  }

  discard(conn: BackendConnection): void {
    conn.terminate();
  }

  private putIdle(conn: BackendConnection): void {
    // Only a limited checkout makes a group (transaction mode's pools).
    const g = this.groupByKey.get(conn.poolKey);
    if (g && g.waiters.length > 0) {
      // Someone waits in this group: a connection with their parameters, or room to open one.
      if (g.waiters[0]!.key !== conn.poolKey) return this.discard(conn);
      return this.nextWaiter(g)!.resolve({ conn, reused: true });
    }
    const it: Idle = { conn, timer: undefined };
    const handler: BackendHandler = {
      // An idle connection may still hear a notice or a parameter change; anything else (a FATAL
      // before an admin shutdown, say) means it is not fit to hand out.
      frame: (type) => {
        if (type !== Backend.NoticeResponse && type !== Backend.ParameterStatus) this.drop(it);
      },
      closed: () => this.drop(it),
    };
    conn.setHandler(handler);
    if (this.opts.idleLifetimeMs > 0) {
      it.timer = setTimeout(() => this.drop(it), this.opts.idleLifetimeMs);
      it.timer.unref();
    }
    let stack = this.idle.get(conn.poolKey);
    if (!stack) this.idle.set(conn.poolKey, (stack = []));
    stack.push(it);
    this.lru.add(it);
  }

  private unidle(it: Idle): void {
    clearTimeout(it.timer);
    this.lru.delete(it);
  }

  private drop(it: Idle): void {
    this.unidle(it);
    const stack = this.idle.get(it.conn.poolKey);
    const i = stack ? stack.indexOf(it) : -1;
    if (i >= 0) stack!.splice(i, 1);
    if (stack && stack.length === 0) this.idle.delete(it.conn.poolKey);
    this.discard(it.conn);
  }

  /** Closes the node's least recently used idle connection; settles once its socket is closed. */
  private evictOne(nodeId: number): Promise<void> | undefined {
    for (const it of this.lru) {
      if (it.conn.node.id === nodeId) {
        const closed = new Promise<void>((resolve) => it.conn.socket.once('close', () => resolve()));
        this.drop(it);
        return closed;
      }
    }
    return undefined;
  }

  /** A node left service: its idle connections go (those in use go with their sessions). */
  discardNode(nodeId: number): void {
    for (const it of [...this.lru]) if (it.conn.node.id === nodeId) this.drop(it);
  }

  private count(m: Map<number, number>, nodeId: number, delta: number): void {
    m.set(nodeId, (m.get(nodeId) ?? 0) + delta);
  }

  /** Closes every idle connection and every one released from now on. */
  closeAll(): void {
    this.stopped = true;
    for (const it of [...this.lru]) this.drop(it);
    for (const g of this.groups.values()) {
      for (const w of g.waiters.splice(0)) {
        clearTimeout(w.timer);
        w.reject(new Error('Sluice is shutting down'));
      }
    }
  }
}
