// A session's link to one node: its backend connection, the units (exchanges up to a
// ReadyForQuery) it owes replies for, what it passes to the client and what it swallows, and the
// statements prepared on it.
import { serialize } from 'pg-protocol';
import type { BackendConnection, BackendHandler } from '../backend/connection';
import { decodeFields, decodeParameterStatus } from '../protocol/backend';
import { Backend, Frontend } from '../protocol/codes';
import type { ExtendedState, Frame, PreparedStatement } from './extended';
import type { BackendStats } from '../cluster/backend-stats';
import { WriteBatch } from '../net/write-batch';
import { emptySet } from '../util/lazy';
import type { Clock } from '../util/clock';

const SYNC = Buffer.from([Frontend.Sync, 0, 0, 0, 4]);

/** The first column of a DataRow, as text (null for SQL NULL). */
function firstValue(buf: Buffer, start: number): string | null {
  const len = buf.readInt32BE(start + 7);
  return len < 0 ? null : buf.toString('utf8', start + 11, start + 11 + len);
}

const NONE: ReadonlySet<string> = new Set();

/** A lent connection's handler until the pool or its next session takes it: it owes nobody anything. */
const LENT: BackendHandler = { frame: () => undefined, closed: () => undefined };

const isFatal = (buf: Buffer, start: number, end: number): boolean => decodeFields(buf, start, end).get('S') === 'FATAL';

/**
 * One exchange with a node that ends at its ReadyForQuery: a simple Query, or the extended
 * messages up to a Sync. A forwarded unit's replies go to the client; a swallowed one is Sluice's
 * own (replayed session state, a BEGIN for a standby's read) and the client never sees it.
 */
export interface Unit {
  readonly forward: boolean;
  errored: boolean;
  /** A NOTICE for the client, sent when the unit's replies are about to start. */
  notice?: Buffer;
  /** Called at the unit's ReadyForQuery. */
  done?: (u: Unit) => void;
  /** A swallowed unit of Sluice's own that wants its first value back. */
  value?: string | null;
  capture?: boolean;
  /** Something of this unit's replies reached the client. */
  started?: boolean;
  /**
   * A read outside a transaction on a standby: what to send again to another node if this one
   * is lost before the replies start (the client frames, and statements they use from earlier).
   */
  retry?: { frames: Frame[]; statements: PreparedStatement[]; uses: string[] };
  /** The clock's monotonic time when a forwarded unit was opened (the statement latency metric). */
  openedAt?: number;
  /**
   * A forwarded unit whose ParameterStatus messages and ReadyForQuery are the session's to send
   * (after Sluice's own unit that follows it): its ReadyForQuery is kept here meanwhile.
   */
  holdsReady?: boolean;
  heldReady?: Buffer;
  /** The reported parameters as the unit's replies began (what the client knew). */
  paramsBefore?: Map<string, string>;
}

/** What a link reports to its session (the relay). */
export interface LinkOwner {
  /** A frame for the client. */
  toClient(buf: Buffer, start: number, end: number): void;
  noticeToClient(notice: Buffer): void;
  /** The frames of one chunk from the node were all delivered (time to write them on). */
  chunkEnd(link: NodeLink): void;
  /** The connection is gone (err when it failed rather than ended). */
  linkClosed(link: NodeLink, err?: Error): void;
  /** This link finished its last forwarded unit, or its last unit of any kind: a held client message may go now. */
  linkSettled(link: NodeLink): void;
  /** The server sent a FATAL error that the client saw. */
  fatalSeen(): void;
  /**
   * The primary sent a FATAL error outside any exchange (a shutdown, a postmaster gone): true
   * when the session takes it (it may survive the node), false to pass it to the client.
   */
  keepFatal(link: NodeLink, frame: Buffer): boolean;
  /** Per-node statement and error counters (SHOW POOL_BACKEND_STATS). */
  readonly stats: BackendStats;
  readonly clock: Clock;
}

/**
 * A session's use of one node: its backend connection, with the units it still owes replies for,
 * in order. It also remembers what of the session's state this node already has: which
 * replay-log entries ran here, which prepared statements exist here (kept on the connection
 * itself), whether a read transaction is open here. In transaction mode the connection is lent
 * back to the pool between transactions (detach) and another borrowed (attach).
 */
export class NodeLink {
  private readonly units: Unit[] = [];
  /** Forwarded units outstanding. */
  forwarded = 0;
  /** The highest replay-log sequence number applied on this node. */
  appliedSeq = 0;
  /** The session's state is being replayed here: nothing of the client's may be sent yet. */
  replaying = false;
  /** Sluice opened a transaction here for reads of the client's transaction. */
  inReadTransaction = false;
  readonly batch: WriteBatch;
  readonly nodeId: number;
  private current: BackendConnection | null = null;
  /** Made once: transaction mode attaches a connection per transaction. */
  private readonly handler: BackendHandler = {
    frame: (type, buf, start, end) => this.frame(type, buf, start, end),
    chunkEnd: () => this.owner.chunkEnd(this),
    closed: (err) => this.owner.linkClosed(this, err),
  };

  constructor(
    conn: BackendConnection,
    /** The session's primary link (a standby's link becomes it when that node is promoted). */
    public isPrimary: boolean,
    private readonly owner: LinkOwner,
  ) {
    this.nodeId = conn.node.id;
    this.batch = new WriteBatch((b) => this.conn.write(b));
    this.attach(conn);
  }

  /** The backend connection (only while one is attached: a detached link sends nothing). */
  get conn(): BackendConnection {
    return this.current!;
  }

  get attached(): boolean {
    return this.current !== null;
  }

  /** Protocol-level prepared statements (by name, '' = unnamed) that exist on this connection. */
  get prepared(): Map<string, { readonly parse: Buffer }> {
    return this.conn.carried.prepared;
  }

  /** Takes a connection to this node into the session: its replies come here from now on. */
  attach(conn: BackendConnection): void {
    this.current = conn;
    conn.setHandler(this.handler);
  }

  /** Lets the connection go (between transactions, nothing owed): the caller gives it back. */
  detach(): BackendConnection {
    const conn = this.conn;
    this.batch.flush();
    conn.setHandler(LENT);
    this.current = null;
    return conn;
  }

  get busy(): boolean {
    return this.units.length > 0;
  }

  /** Starts a unit: its messages follow with send(). */
  open(unit: Unit): void {
    this.units.push(unit);
    if (unit.forward) {
      unit.openedAt = this.owner.clock.monotonic();
      this.forwarded++;
      if (unit.notice && this.firstForward() === unit) this.emitNotice(unit);
    }
  }

  /** Forwards one client frame (a range of a received chunk) to the node. */
  send(type: number, buf: Buffer, start: number, end: number): void {
    this.conn.noteSent(type);
    this.batch.add(buf, start, end);
  }

  /** Sends a message Sluice made itself (already framed). */
  sendOwn(type: number, frame: Buffer): void {
    this.batch.flush();
    this.conn.noteSent(type);
    this.conn.write(frame);
  }

  /** Runs SQL of Sluice's own here as a swallowed unit. */
  runSwallowed(sql: string, done?: (u: Unit) => void): void {
    this.open({ forward: false, errored: false, done });
    this.sendOwnQuery(sql);
  }

  /** Runs a one-value query of Sluice's own here; `done` gets the value (null on error). */
  runCaptured(sql: string, done: (value: string | null) => void): void {
    this.open({ forward: false, errored: false, capture: true, value: null, done: (u) => done(u.errored ? null : (u.value ?? null)) });
    this.sendOwnQuery(sql);
  }

  /**
   * A simple Query destroys the unnamed statement on the server: a client's later Describe or
   * Bind of it must find it parsed again here (psql's \gdesc parses and describes in two syncs).
   */
  private sendOwnQuery(sql: string): void {
    this.prepared.delete('');
    this.sendOwn(Frontend.Query, serialize.query(sql));
  }

  /** Sends extended-protocol messages of Sluice's own, then a Sync, as a swallowed unit. */
  runSwallowedMessages(frames: readonly Buffer[], done?: (u: Unit) => void): void {
    this.open({ forward: false, errored: false, done });
    this.batch.flush();
    for (const f of frames) this.conn.noteSent(f[0]!);
    this.conn.noteSent(Frontend.Sync);
    this.conn.write(Buffer.concat([...frames, SYNC]));
  }

  flush(): boolean {
    return this.batch.flush();
  }

  /**
   * Parses here the statements a batch uses from earlier batches and this node lacks, in a
   * swallowed unit queued (and answered) before the client's. A name the batch parses itself
   * that this connection still holds from elsewhere (a statement closed on another node, or
   * another session's in transaction mode) is closed first, unless the session itself still has
   * a statement of that name (`live`): then the server's "already exists" is the client's answer,
   * as on one server.
   */
  prepare(statements: readonly PreparedStatement[], uses: { has(name: string): boolean }, live: { has(name: string): boolean } = NONE, limit = 0): void {
    const own: Buffer[] = [];
    const prepared = this.prepared;
    for (const ps of statements) {
      const here = prepared.get(ps.name);
      const parsedByBatch = !uses.has(ps.name);
      if (here === ps || (here !== undefined && !parsedByBatch && here.parse.equals(ps.parse))) {
        if (limit > 0) {
          // Used now: the most recently used (the map's order is the eviction order).
          prepared.delete(ps.name);
          prepared.set(ps.name, here);
        }
        continue;
      }
      // A name this node still holds from an older statement goes first; the unnamed
      // statement is simply replaced by the next Parse.
      if (here !== undefined && ps.name !== '' && !(parsedByBatch && live.has(ps.name))) own.push(closeStatement(ps.name));
      if (uses.has(ps.name)) own.push(ps.parse);
      prepared.delete(ps.name);
      prepared.set(ps.name, ps);
    }
    if (limit > 0 && prepared.size > limit) this.evictPrepared(own, statements, limit);
    if (own.length > 0) this.runSwallowedMessages(own);
  }

  /**
   * max_prepared_statements: the least recently used named statements this connection holds,
   * past the limit, are closed (ahead of the batch, in Sluice's own unit); never one the batch
   * parses or uses. A session that uses one again has it parsed again where it runs.
   */
  private evictPrepared(own: Buffer[], statements: readonly PreparedStatement[], limit: number): void {
    const prepared = this.prepared;
    let excess = prepared.size - limit;
    for (const name of prepared.keys()) {
      if (excess <= 0) break;
      if (name === '' || statements.some((ps) => ps.name === name)) continue;
      own.unshift(closeStatement(name));
      prepared.delete(name);
      excess--;
    }
  }

  /**
   * Before a read of pg_prepared_statements: this node gets every named statement the session
   * has prepared, wherever it was (a read's Parse may have gone to a standby), so that the view
   * shows them all, as one server would.
   */
  prepareAllNamed(ext: ExtendedState): void {
    const named = [...ext.statements.values()].filter((ps) => ps.name !== '' && !this.prepared.get(ps.name)?.parse.equals(ps.parse));
    if (named.length > 0) this.prepare(named, new Set(named.map((ps) => ps.name)));
  }

  /** Sends the batch's held messages here; this node now has the statements and portals they make. */
  sendHeld(ext: ExtendedState): void {
    const b = ext.batch;
    if (b.held.length === 0) return;
    for (const h of b.held) this.send(h.type, h.buf, h.start, h.end);
    for (const ps of b.statements) this.prepared.set(ps.name, ps);
    for (const name of b.closedStatements) this.prepared.delete(name);
    ext.placed(this.nodeId);
    b.uses = emptySet();
    b.clearHeld();
  }


  private firstForward(): Unit | undefined {
    return this.units.find((u) => u.forward);
  }

  private emitNotice(u: Unit): void {
    const n = u.notice!;
    u.notice = undefined;
    this.owner.noticeToClient(n);
  }

  /** The connection's frame handler while the session owns it (the data path, server to client). */
  frame(type: number, buf: Buffer, start: number, end: number): void {
    const u = this.units[0];
    if (u === undefined || !u.forward) {
      // Outside any client exchange only the primary speaks for the session: notifications,
      // parameter changes and a shutdown's FATAL from it still reach the client; standbys'
      // are theirs alone (a standby that goes away is just not used again). A parameter change
      // in Sluice's own exchange is Sluice's (a replayed SET on a borrowed or new connection
      // reports what the client already knows; a direct connection would say nothing), and so
      // is a notice there (a replayed LOAD warns again of what the client was warned of once).
      let pass = this.isPrimary && (type === Backend.NotificationResponse || ((type === Backend.ParameterStatus || type === Backend.NoticeResponse) && u === undefined));
      if (type === Backend.ErrorResponse) {
        if (u) u.errored = true;
        const fatal = this.isPrimary && isFatal(buf, start, end);
        if (this.isPrimary && (u === undefined || fatal)) {
          pass = true;
          if (fatal) {
            if (this.owner.keepFatal(this, Buffer.from(buf.subarray(start, end)))) return;
            this.owner.fatalSeen();
          }
        }
      }
      if (pass) this.owner.toClient(buf, start, end);
      else if (type === Backend.ReadyForQuery && u) this.finish(u);
      else if (type === Backend.DataRow && u?.capture && u.value === null) u.value = firstValue(buf, start);
      return;
    }
    if (type === Backend.CommandComplete) this.owner.stats.commandComplete(this.nodeId, buf, start, end);
    if (type === Backend.ErrorResponse) {
      u.errored = true;
      this.owner.stats.errorResponse(this.nodeId, buf, start, end);
      if (isFatal(buf, start, end)) {
        // A standby going away is the session's to handle (the read is re-run or answered with
        // an error of Sluice's): the client must not think its own connection is ending.
        if (!this.isPrimary) return;
        this.owner.fatalSeen();
      }
    }
    if (u.holdsReady && this.holdReady(u, type, buf, start, end)) return;
    u.started = true;
    this.owner.toClient(buf, start, end);
    if (type === Backend.ReadyForQuery) this.finish(u);
  }

  /**
   * A unit whose ParameterStatus messages and ReadyForQuery wait for Sluice's unit after it
   * (true: the frame is kept). The parameters are taken as its replies begin, when every unit
   * before it is answered (a server before PostgreSQL 14 may report a change first: that one
   * counts as changed).
   */
  private holdReady(u: Unit, type: number, buf: Buffer, start: number, end: number): boolean {
    if (u.paramsBefore === undefined) {
      u.paramsBefore = new Map(this.conn.params);
      if (type === Backend.ParameterStatus) u.paramsBefore.delete(decodeParameterStatus(buf, start, end)[0]);
    }
    if (type === Backend.ReadyForQuery) {
      u.heldReady = Buffer.from(buf.subarray(start, end));
      this.finish(u);
      return true;
    }
    return type === Backend.ParameterStatus;
  }

  /** The link is gone: the forwarded units it still owed, in order (the session answers them). */
  takeOwed(): Unit[] {
    const owed = this.units.filter((u) => u.forward);
    this.units.length = 0;
    this.forwarded = 0;
    return owed;
  }

  private finish(u: Unit): void {
    this.units.shift();
    u.done?.(u);
    if (u.forward) {
      this.owner.stats.exchangeDone(this.nodeId, (this.owner.clock.monotonic() - u.openedAt!) / 1000);
      this.forwarded--;
      const next = this.firstForward();
      if (next?.notice) this.emitNotice(next);
    }
    // What a held client message waits for may be over now: this node's replies to the client
    // (its last forwarded unit), or this node being busy at all (its last unit, Sluice's own too:
    // a local command waits for a commit position being read).
    if ((u.forward && this.forwarded === 0) || this.units.length === 0) this.owner.linkSettled(this);
  }
}

/** Close (statement) of Sluice's own. */
function closeStatement(name: string): Buffer {
  const body = Buffer.from(`S${name}\0`);
  const f = Buffer.alloc(5 + body.length);
  f[0] = Frontend.Close;
  f.writeUInt32BE(4 + body.length, 1);
  body.copy(f, 5);
  return f;
}
