import type { BackendConnection } from '../backend/connection';
import type { DatabaseCatalog } from '../cluster/catalog-cache';
import type { Logger } from '../log/logger';
import { encodeNotice } from '../protocol/backend';
import { serialize } from 'pg-protocol';
import { Backend, Frontend } from '../protocol/codes';
import { decodeQuery } from '../protocol/frontend';
import { NodeView, readNode } from '../router/balancer';
import { classify } from '../router/classify';
import type { CompiledRouting } from '../router/options';
import { Decision, route } from '../router/route';
import { Statement, statement } from '../router/statement';
import { lsnToNumber } from '../cluster/replication';
import { ExtendedState, PreparedStatement } from './extended';
import { NodeLink, Unit } from './link';
import { ReplayLog } from './replay-log';
import { RouteState } from './route-state';

/** What the dispatcher needs from its session and the rest of Sluice. */
export interface DispatchHost {
  readonly routing: CompiledRouting;
  readonly log: Logger;
  readonly noticePerNode: boolean;
  readonly logPerNode: boolean;
  catalog(): DatabaseCatalog | null;
  nodes(): readonly NodeView[];
  /** The node reads go to for this statement (statement-level) or this session, avoiding some. */
  loadBalanceNode(avoid: ReadonlyMap<number, number>): number | null;
  countSelect(node: number): void;
  /** The last replay LSN known for a node (sr_check or a read-your-writes check). */
  replayLsn(node: number): number;
  noteReplay(node: number, lsn: number): void;
  /** A new backend connection to a node for this session (from the pool). */
  connect(node: number): Promise<BackendConnection>;
  /** Attaches a connection to the session and returns its link. */
  attach(conn: BackendConnection): NodeLink;
  toClient(buf: Buffer, start: number, end: number): void;
  /** The client's frames may flow again (a held frame is delivered first). */
  resume(): void;
  /**
   * Session state is logged for other nodes to replay: with load balancing, and whenever a
   * failover may move the session to another primary.
   */
  readonly keepsState: boolean;
  /** The session cannot go on (its new primary could not be reached): end it with this error. */
  fail(err: unknown): void;
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

/** A node that failed this session is not tried again for this long (a health check decides meanwhile). */
const AVOID_MS = 10_000;
const RERUN = statement('read', 're-run of a read whose standby was lost');
const LOST = statement('read', 'read lost with its standby');
/** Answers a read that was lost with its node and cannot be re-run; in a transaction it fails it. */
const lostReadSql = (node: number) =>
  `DO $$BEGIN RAISE EXCEPTION USING ERRCODE = '08006', MESSAGE = 'connection to node ${node} was lost while it answered this statement', HINT = 'The statement was not re-run: part of its result had been sent, or it ran in a transaction.'; END$$`;

const POISON_SQL = "DO $$BEGIN RAISE EXCEPTION 'a read of this transaction failed on a standby'; END$$";
/** What a statement is when nothing routes it (load balancing off, no per-node tracing). */
const UNROUTED = statement('write', 'not routed');
const NO_CATALOG = { writesFunction: () => true, isUnlogged: () => false, addUnlogged: () => undefined };

/**
 * The routing data path of one session: decides a node for each simple Query and each extended
 * batch, keeps the order of replies across nodes (a unit for another node waits until the
 * current node has answered everything forwarded), replays session state on a node before it
 * serves the session, and keeps transactions consistent between the primary and a standby that
 * serves the transaction's reads. A frame it cannot send yet is held (returns false) and the
 * host resumes the client when the reason is gone.
 */
export class Dispatcher {
  readonly links = new Map<number, NodeLink>();
  readonly state = new RouteState();
  readonly replay = new ReplayLog();
  readonly ext = new ExtendedState();
  /** SQL-level PREPAREd statements: EXECUTE goes where the prepared statement may go. */
  private readonly sqlPrepared = new Map<string, Statement>();
  /** Nodes this session could not use lately (connection or replay failed, link lost), and when. */
  private readonly badNodes = new Map<number, number>();
  /** Set while the session has lost its primary: how to get a new primary link. */
  private reconnect: (() => Promise<NodeLink>) | null = null;
  private reconnecting = false;
  /** The last unit opened for a read on a standby that could be re-run elsewhere. */
  private rerunnable: Unit | null = null;
  private held = false;
  private connecting = false;
  private standbyBegin = 'BEGIN';
  /** read_your_writes: the primary's WAL position after the session's last write, in bytes. */
  private writeLsn = 0;
  /** A write went to the primary since writeLsn was last read. */
  private lsnOwed = false;
  /** read_your_writes: the standby whose replay position must be asked before this read. */
  private checkNode: number | null = null;
  /** The standby just asked (for the read being decided again): no second check. */
  private checked: number | null = null;
  /**
   * Statements are looked at only when something uses what is found: load balancing, or the
   * per-node notice/log. Otherwise everything goes to the primary unclassified (the hot path
   * of a single-node pool pays nothing for routing).
   */
  private readonly inspect: boolean;

  constructor(
    public primary: NodeLink,
    private readonly host: DispatchHost,
  ) {
    this.links.set(primary.nodeId, primary);
    this.inspect = host.keepsState || host.noticePerNode || host.logPerNode;
  }

  /** The link with forwarded units outstanding (at most one at a time), if any. */
  private active(): NodeLink | null {
    for (const l of this.links.values()) if (l.forwarded > 0) return l;
    return null;
  }

  /** One client message in the ready state. False: hold it; it comes again after resume(). */
  message(type: number, buf: Buffer, start: number, end: number): boolean {
    if (this.reconnect) return this.recoverPrimary();
    switch (type) {
      case Frontend.Query:
        return this.query(buf, start, end);
      case Frontend.Parse:
      case Frontend.Bind:
      case Frontend.Describe:
      case Frontend.Execute:
      case Frontend.Close:
        if (this.inspect) this.ext.add(type, buf, start, end);
        else this.ext.batch.held.push({ type, buf, start, end });
        if (this.ext.batchNode !== null) this.sendHeld(this.links.get(this.ext.batchNode) ?? this.primary);
        return true;
      case Frontend.Flush:
      case Frontend.Sync:
        return this.batch(type, buf, start, end);
      case Frontend.CopyData:
      case Frontend.CopyDone:
      case Frontend.CopyFail:
        (this.active() ?? this.primary).send(type, buf, start, end);
        return true;
      default:
        // FunctionCall and anything unknown: the primary answers (or rejects) it.
        return this.dispatch(this.primary.nodeId, statement('write', 'function call'), '', type, buf, start, end);
    }
  }

  private query(buf: Buffer, start: number, end: number): boolean {
    if (!this.inspect) return this.dispatch(this.primary.nodeId, UNROUTED, '', Frontend.Query, buf, start, end);
    const sql = decodeQuery(buf, start, end);
    const s = classify(sql);
    const d = this.decide(s, sql);
    return this.dispatch(d.node, d.stmt, sql, Frontend.Query, buf, start, end, d.wrote);
  }

  /** Extended protocol: Flush or Sync sends what the batch holds to one node. */
  private batch(type: number, buf: Buffer, start: number, end: number): boolean {
    const b = this.ext.batch;
    let node = this.ext.batchNode ?? this.ext.portalNode();
    let stmt = statement('read', 'extended batch');
    let wrote = false;
    if (!this.inspect) {
      node = this.primary.nodeId;
      stmt = UNROUTED;
    } else if (node === null) {
      node = this.primary.nodeId;
      const reads = b.statements.length > 0 && b.statements.every((p) => p.stmt.kind === 'read');
      if (b.statements.length === 0) {
        node = this.active()?.nodeId ?? this.primary.nodeId;
      } else if (reads) {
        const ds = b.statements.map((p) => this.decide(p.stmt, p.sql));
        if (ds.every((d) => d.node === ds[0]!.node)) node = ds[0]!.node;
        wrote = ds.some((d) => d.wrote);
      } else {
        const first = b.statements.find((p) => p.stmt.kind !== 'read')!;
        stmt = first.stmt;
        wrote = b.statements.some((p) => p.stmt.kind === 'write');
      }
    }
    const text = b.executed.length > 0 ? b.executed : b.statements.map((p) => p.sql);
    const sent = this.dispatch(node, stmt, text.join('; '), type, buf, start, end, wrote);
    if (sent && type === Frontend.Sync) this.ext.synced(this.state.txStatus === 'idle');
    else if (sent) this.ext.batchNode = node;
    return sent;
  }

  /** Where a statement goes: the primary, or the node a read may use. */
  private decide(s: Statement, sql: string): { node: number; stmt: Statement; wrote: boolean } {
    let eff = s;
    if (s.kind === 'execute') eff = this.sqlPrepared.get(s.name ?? '') ?? statement('write', 'execute of an unknown statement');
    const d: Decision = route(eff, sql, this.host.routing, this.state, this.host.catalog() ?? NO_CATALOG);
    const primaryId = this.primary.nodeId;
    if (d.to === 'primary') {
      const wrote = eff.kind === 'write' || (eff.kind === 'read' && d.reason.startsWith('function'));
      return { node: primaryId, stmt: s, wrote };
    }
    // A read right behind work still running on the primary stays there: it keeps the client's
    // pipeline flowing, and the transaction state is only certain once the primary has answered.
    if (this.primary.busy) return { node: primaryId, stmt: s, wrote: false };
    const lb = this.host.loadBalanceNode(this.avoided());
    const node = lb === null ? primaryId : readNode(this.host.nodes(), lb, this.host.routing.preferLowerDelay);
    if (node === null || this.avoided().has(node)) return { node: primaryId, stmt: s, wrote: false };
    if (this.host.routing.readYourWrites && node !== primaryId && this.writeLsn > this.host.replayLsn(node)) {
      // Not known to have replayed the session's last write: ask it once; if it is still behind,
      // this read goes to the primary.
      if (this.checked === node) {
        this.checked = null;
        return { node: primaryId, stmt: s, wrote: false };
      }
      this.checkNode = node;
    }
    return { node, stmt: s, wrote: false };
  }

  /** read_your_writes: asks a standby how far it has replayed, then lets the read be decided again. */
  private checkReplay(link: NodeLink): false {
    this.checkNode = null;
    link.runCaptured('SELECT pg_catalog.pg_last_wal_replay_lsn()', (v) => {
      if (v) this.host.noteReplay(link.nodeId, lsnToNumber(v));
      this.checked = link.nodeId;
      this.release();
    });
    return this.hold();
  }

  /**
   * Sends the frame (with any held batch messages) to the node as part of a forwarded unit, or
   * holds it: while another node still owes replies, while connecting, while replaying state.
   */
  private dispatch(node: number, s: Statement, sql: string, type: number, buf: Buffer, start: number, end: number, wrote = false): boolean {
    const link = this.links.get(node);
    if (!link) return this.connectTo(node);
    const active = this.active();
    if (active && active !== link) return this.hold();
    if (this.checkNode === node) return this.checkReplay(link);
    this.checkNode = null;
    if (link !== this.primary && !this.prepareStandby(link)) return false;
    const continuing = type !== Frontend.Query && this.ext.batchNode !== null;
    if (!continuing) {
      // Statements the batch uses but this node lacks are prepared first, in a unit of their own
      // that is queued (and answered) before the client's.
      const b = this.ext.batch;
      this.prepareStatements(link, b.statements, b.uses);
      const unit = this.openUnit(link, s, sql);
      this.rerunnable = null;
      if (link !== this.primary && !this.state.inTransaction) {
        unit.retry = { frames: [], statements: [...b.statements], uses: [...b.uses] };
        this.rerunnable = unit;
      }
    }
    if (link === this.primary) this.notePrimary(s, wrote);
    const retry = link === this.primary ? undefined : this.rerunnable?.retry;
    if (retry) retry.frames.push(...this.ext.batch.held, { type, buf, start, end });
    this.sendHeld(link);
    link.send(type, buf, start, end);
    if (type === Frontend.Query) link.prepared.delete('');
    return true;
  }

  private openUnit(link: NodeLink, s: Statement, sql: string): Unit {
    const unit: Unit = { forward: true, errored: false };
    if (this.host.noticePerNode && sql) {
      unit.notice = encodeNotice(Backend.NoticeResponse, 'NOTICE', '00000', `DB node id: ${link.nodeId} statement: ${sql}`);
    }
    if (this.host.logPerNode && sql) this.host.log.info({ node: link.nodeId, statement: sql }, 'statement sent');
    if (s.kind === 'read' || (s.kind === 'execute' && link !== this.primary)) this.host.countSelect(link.nodeId);
    const isPrimary = link === this.primary;
    const seqs = isPrimary ? this.logSessionState(s, sql) : [];
    unit.done = (u) => {
      for (const q of seqs) this.replay.settle(q, !u.errored, this.primary.conn.txStatus !== 'idle');
      if (isPrimary) this.primaryReady(s, u);
      else if (u.errored && this.state.inTransaction) this.standbyReadFailed(link);
    };
    link.open(unit);
    return unit;
  }

  /** Session state the primary is about to get, for the other nodes to replay later. */
  private logSessionState(s: Statement, sql: string): number[] {
    // No other node will ever serve the session: nothing to replay.
    if (!this.host.keepsState) return [];
    if (s.discards === 'all') {
      this.replay.restart(sql);
      this.sqlPrepared.clear();
      this.ext.forgetStatements();
      for (const l of this.links.values()) l.prepared.clear();
      return [];
    }
    if (s.kind === 'session' && s.name !== undefined) {
      if (s.inner) this.sqlPrepared.set(s.name, s.inner);
      else if (s.name === '') this.sqlPrepared.clear();
      else return this.deallocate(s.name, sql);
    }
    const texts = s.replay ?? (s.kind === 'session' ? [sql] : []);
    return texts.map((t) => this.replay.append(t, s.replayKey));
  }

  /**
   * DEALLOCATE name: its PREPARE leaves the log (so the log stays as small as the session's live
   * state), and the standbys that already ran that PREPARE get the DEALLOCATE now.
   */
  private deallocate(name: string, sql: string): number[] {
    const e = this.replay.removeKey(`prepare ${name}`);
    if (e) for (const l of this.links.values()) if (l !== this.primary && l.appliedSeq >= e.seq) l.runSwallowed(sql);
    return [];
  }

  private notePrimary(s: Statement, wrote: boolean): void {
    if (s.kind === 'txBegin' || s.pinTransaction) this.state.txStartSeq = this.replay.lastSeq;
    if (s.kind === 'txBegin' && s.standbyBegin) this.standbyBegin = s.standbyBegin;
    if (s.createsUnlogged) this.host.catalog()?.addUnlogged(s.createsUnlogged);
    this.state.sentToPrimary(s, wrote || s.kind === 'write');
    if (wrote || s.kind === 'write') this.lsnOwed = true;
  }

  /** The primary answered a unit: track the transaction; end standbys' read transactions with it. */
  private primaryReady(s: Statement, u: Unit): void {
    const before = this.state.txStatus;
    const ended = this.state.primaryReady(this.primary.conn.txStatus, !this.primary.busy);
    if (this.lsnOwed && this.host.routing.readYourWrites && this.state.txStatus === 'idle' && !this.primary.busy) {
      // The write is committed: its position is where a standby must have replayed to serve
      // this session's reads (one extra round trip per writing transaction; README).
      this.lsnOwed = false;
      this.primary.runCaptured('SELECT pg_catalog.pg_current_wal_insert_lsn()', (v) => {
        if (v) this.writeLsn = Math.max(this.writeLsn, lsnToNumber(v));
      });
    }
    if (!ended) return;
    const committed = !u.errored && s.commit !== false && before !== 'failedTx';
    if (!committed) this.replay.truncateAfter(this.state.txStartSeq);
    for (const l of this.links.values()) {
      if (l === this.primary || !l.inReadTransaction) continue;
      l.inReadTransaction = false;
      if (!committed && l.appliedSeq > this.state.txStartSeq) l.appliedSeq = this.state.txStartSeq;
      l.runSwallowed(committed ? 'COMMIT' : 'ROLLBACK');
    }
  }

  /**
   * A read of an open transaction failed on a standby: the client now believes its transaction
   * failed, so the primary's must fail too, or a COMMIT would keep its writes.
   */
  private standbyReadFailed(link: NodeLink): void {
    this.state.pinnedTransaction = true;
    this.primary.runSwallowed(POISON_SQL, () => (this.state.txStatus = this.primary.conn.txStatus));
    if (link.inReadTransaction) {
      link.inReadTransaction = false;
      link.runSwallowed('ROLLBACK');
    }
  }

  /** Before a standby serves the session: replay what it misses; open its read transaction. */
  private prepareStandby(link: NodeLink): boolean {
    const missing = this.replay.since(link.appliedSeq);
    if (missing.length > 0) {
      link.appliedSeq = this.replay.lastSeq;
      let failed = false;
      missing.forEach((e, i) => {
        link.runSwallowed(e.sql, (u) => {
          failed ||= u.errored;
          if (i < missing.length - 1) return;
          if (failed) this.drop(link, 'replaying session state failed');
          this.release();
        });
      });
      return this.hold();
    }
    if (this.state.inTransaction && !link.inReadTransaction) {
      link.inReadTransaction = true;
      link.runSwallowed(this.standbyBegin);
    }
    return true;
  }

  /** Parses on the node the statements a batch uses from earlier batches and it lacks. */
  private prepareStatements(link: NodeLink, statements: readonly PreparedStatement[], uses: { has(name: string): boolean }): void {
    const own: Buffer[] = [];
    for (const ps of statements) {
      const here = link.prepared.get(ps.name);
      if (here === ps) continue;
      // A name this node still holds from an older statement (closed elsewhere) goes first;
      // the unnamed statement is simply replaced by the next Parse.
      if (here !== undefined && ps.name !== '') own.push(closeStatement(ps.name));
      if (uses.has(ps.name)) own.push(ps.parse);
      link.prepared.set(ps.name, ps);
    }
    if (own.length > 0) link.runSwallowedMessages(own);
  }

  private sendHeld(link: NodeLink): void {
    const held = this.ext.batch.held;
    if (held.length === 0) return;
    for (const h of held) link.send(h.type, h.buf, h.start, h.end);
    for (const ps of this.ext.batch.statements) link.prepared.set(ps.name, ps);
    for (const name of this.ext.batch.closedStatements) link.prepared.delete(name);
    this.ext.placed(link.nodeId);
    this.ext.batch.uses.clear();
    this.ext.batch.clearHeld();
  }

  private connectTo(node: number): boolean {
    if (!this.connecting) {
      this.connecting = true;
      this.host
        .connect(node)
        .then((conn) => {
          const link = this.host.attach(conn);
          this.links.set(node, link);
        })
        .catch((err: Error) => {
          this.badNodes.set(node, Date.now());
          this.host.log.warn({ node, err: err.message }, 'cannot connect to node for reads; using the primary');
        })
        .finally(() => {
          this.connecting = false;
          this.release();
        });
    }
    return this.hold();
  }

  private hold(): false {
    this.held = true;
    return false;
  }

  /** Lets a held client frame go again. */
  release(): void {
    if (!this.held) return;
    this.held = false;
    this.host.resume();
  }

  /** LinkOwner: a node answered everything forwarded to it. */
  linkIdle(): void {
    this.release();
  }

  /** Stops using a node for this session (its connection is closed by the caller or here). */
  drop(link: NodeLink, reason: string): void {
    if (link === this.primary) return;
    this.badNodes.set(link.nodeId, Date.now());
    this.links.delete(link.nodeId);
    this.host.log.warn({ node: link.nodeId, reason }, 'node no longer used by this session');
    link.conn.destroy();
  }

  /** Nodes to avoid for reads now (entries older than AVOID_MS are forgotten). */
  private avoided(): ReadonlyMap<number, number> {
    if (this.badNodes.size === 0) return this.badNodes;
    const now = Date.now();
    for (const [n, at] of this.badNodes) if (now - at > AVOID_MS) this.badNodes.delete(n);
    return this.badNodes;
  }

  /**
   * A standby's connection is gone (the node died, or was detached). What it still owed the
   * client is answered from the primary, in order: a read outside a transaction whose replies
   * had not started is simply run there; anything else gets an error of its own (08006) and,
   * inside a transaction, fails the transaction as a failed read would.
   */
  standbyLost(link: NodeLink, reason: string): void {
    if (this.links.get(link.nodeId) !== link || link === this.primary) return;
    this.links.delete(link.nodeId);
    this.badNodes.set(link.nodeId, Date.now());
    const owed = link.takeOwed();
    this.host.log.warn({ node: link.nodeId, reason, owed: owed.length }, 'standby connection lost');
    if (owed.length > 0) {
      if (this.reconnect) {
        this.host.fail(new Error('primary and standby lost together'));
        return;
      }
      this.answerOwed(link.nodeId, owed);
    }
    link.conn.destroy();
    this.release();
  }

  private answerOwed(node: number, owed: readonly Unit[]): void {
    const p = this.primary;
    if (this.ext.batchNode === node) this.ext.batchNode = p.nodeId;
    this.ext.moved(node, p.nodeId);
    for (const u of owed) {
      if (u.retry && !u.started) {
        this.prepareStatements(p, u.retry.statements, new Set(u.retry.uses));
        this.openUnit(p, RERUN, '');
        for (const f of u.retry.frames) p.send(f.type, f.buf, f.start, f.end);
        for (const ps of u.retry.statements) p.prepared.set(ps.name, ps);
      } else {
        this.openUnit(p, LOST, '');
        p.sendOwn(Frontend.Query, serialize.query(lostReadSql(node)));
      }
    }
    p.flush();
  }

  /**
   * The primary's connection is gone while the session was idle outside a transaction: the
   * session waits (holding its next statement) for `reconnect` to give it the new primary.
   */
  primaryLost(reconnect: () => Promise<NodeLink>): void {
    this.links.delete(this.primary.nodeId);
    this.reconnect = reconnect;
  }

  private recoverPrimary(): false {
    if (!this.reconnecting) {
      this.reconnecting = true;
      this.reconnect!()
        .then((link) => this.adoptPrimary(link))
        .catch((err: unknown) => this.host.fail(err))
        .finally(() => {
          this.reconnecting = false;
          this.release();
        });
    }
    return this.hold();
  }

  /** A new primary link: the session's state is replayed on it before the held statement. */
  private adoptPrimary(link: NodeLink): void {
    const old = this.links.get(link.nodeId);
    if (old) {
      // This session's standby link to the promoted node: the new link replaces it.
      this.links.delete(old.nodeId);
      old.conn.destroy();
    }
    this.primary = link;
    this.links.set(link.nodeId, link);
    this.reconnect = null;
    for (const e of this.replay.since(0)) {
      link.runSwallowed(e.sql, (u) => {
        if (u.errored) this.host.log.warn({ node: link.nodeId, statement: e.sql }, 'session state could not be replayed on the new primary');
      });
    }
    link.appliedSeq = this.replay.lastSeq;
    this.host.log.info({ node: link.nodeId, replayed: this.replay.since(0).length }, 'session moved to the new primary');
  }
}
