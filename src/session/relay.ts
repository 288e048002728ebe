// The relay: one session's data path, with no socket of its own. It takes the client's messages
// and its nodes' replies, decides where each statement goes, keeps the order of replies across
// nodes, brings a node up to the session's state before it serves it, and keeps transactions
// consistent between the primary and a standby that serves their reads. What it waits for before
// it takes the client's next message is one union (Waiting); a held message keeps its decision
// and continues from where it stopped. It acts through NodeLinks (what it sends to a node) and one
// port (what it sends to the client, holding and resuming the client, ending the session).
// It is one story, read together, hence the length; its helpers each have a file of their own.
import type { BackendConnection } from '../backend/connection';
import type { Logger } from '../log/logger';
import { encodeCommandComplete, encodeError, encodeNotice, encodeParameterStatus } from '../protocol/backend';
import { SqlState } from '../protocol/sqlstate';
import { Backend, Frontend, TxStatus } from '../protocol/codes';
import { Errors } from '../protocol/errors';
import { decodeQuery } from '../protocol/frontend';
import { Writer } from '../protocol/writer';
import { readNode } from '../router/balancer';
import { classify } from '../router/classify';
import { isListenQuery, isPlainQuery, mayUseSequences, queryMayUseSequences } from '../router/quick-look';
import { listenCommand, type Listener } from './shared-listen';
import type { CompiledRouting } from '../router/options';
import { bare, route } from '../router/route';
import { PinReason, resetsOf, sessionViewOf, SettingsReset, Statement, statement, WriteStatement } from '../router/statement';
import { assertNever } from '../util/assert-never';
import { cancelOnNode } from '../backend/cancel';
import { acquireOn, connectPrimary, errorFrame, isShutdown, KeptFatal, queryOnNode, releaseBackends } from './connections';
import type { SessionContext } from './context';
import { ExtendedState, Frame } from './extended';
import { describeHold, Hold, HoldReason } from './hold';
import { LinkOwner, NodeLink, Unit } from './links';
import { answerLocal, commandName, LocalSession, mayBeLocal } from './local-commands';
import { RouteState, SessionState } from './memory';
import { answerOwed, AvoidList, replayMissing } from './node-loss';
import { FunctionLookups, ReadYourWrites, SessionRouting } from './routing';
import type { SessionSettings } from './settings';
import { poolKeyOf, type StartupRequest } from './startup';
import { addTo, deleteFrom, emptySet } from '../util/lazy';

/** What a reset of startup settings is followed by: the SQL that puts the client's values back. */
type Restore = SettingsReset & { readonly sql: string };

/** Session-level advisory locks (the _xact_ ones end with their transaction and move nothing). */
const SESSION_ADVISORY_LOCKS = new Set(['pg_advisory_lock', 'pg_advisory_lock_shared', 'pg_try_advisory_lock', 'pg_try_advisory_lock_shared']);

/** Transaction mode: a client waiting this long for a server connection gets a NOTICE. */
const WAIT_NOTICE_MS = 5_000;

const PARSE_COMPLETE = Buffer.from([Backend.ParseComplete, 0, 0, 0, 4]);
const READY_IDLE = Buffer.from([Backend.ReadyForQuery, 0, 0, 0, 5, 0x49]);

const POISON_SQL = "DO $$BEGIN RAISE EXCEPTION 'a read of this transaction failed on a standby'; END$$";
/** What a statement is when nothing routes it (load balancing off, no per-node tracing). */
const UNROUTED = statement('write', 'not routed');
const FUNCTION_CALL = statement('write', 'function call');

/** A decision for a held message: where it goes and what it is, made once. */
interface Plan {
  /** The node drawn for it; only a failure on the way (or a standby found behind) moves it to the primary. */
  node: number;
  readonly stmt: Statement;
  readonly sql: string;
  readonly frame: Frame;
  readonly wrote: boolean;
  /** read_your_writes: the node's replay position is to be asked first. */
  lagCheck: boolean;
}

/**
 * What the relay waits for before it takes the client's next message. A message not decided yet
 * (paused, waiting for a new primary or for a function look-up, a local command waiting for a
 * node's replies) is taken again from the start when the wait ends; a decided one (a plan) goes
 * on from where it stopped, to the node it was decided for.
 */
type Waiting =
  | { readonly kind: 'free' }
  | { readonly kind: 'paused'; readonly frame: Frame }
  | { readonly kind: 'newPrimary'; readonly frame: Frame }
  | { readonly kind: 'functionLookup'; readonly frame: Frame; readonly names: readonly string[] }
  | { readonly kind: 'answering'; readonly command: string }
  | { readonly kind: 'nodeAnswering'; readonly node: number; readonly frame: Frame; readonly plan: Plan | null }
  | { readonly kind: 'connecting'; readonly plan: Plan }
  | { readonly kind: 'checkingLag'; readonly plan: Plan }
  | { readonly kind: 'replaying'; readonly plan: Plan };

const FREE: Waiting = { kind: 'free' };

/** What the relay does to the client and the session (the shell, session.ts, carries it out). */
export interface RelayPort {
  toClient(buf: Buffer, start: number, end: number): void;
  /** Writes what toClient collected (replies Sluice made itself, outside any node's chunk). */
  flushClient(): void;
  /** A node's chunk was all delivered: its frames go on to the client in one write. */
  chunkEnd(conn: BackendConnection): void;
  /** The held message is done: the client's next messages may be read. */
  resumeClient(): void;
  /** Ends the session, after this frame when there is one. */
  end(frame: Buffer | null, err?: Error): void;
  readonly closed: boolean;
}

/** What the relay knows of its session, beyond Sluice's context. */
export interface RelaySession {
  readonly req: StartupRequest;
  /** The session's logger (made when first read). */
  readonly log: Logger;
  /** Whether the session logs at this level, without making its logger. */
  logs(level: 'debug' | 'info'): boolean;
  readonly settings: SessionSettings;
  readonly routing: SessionRouting;
  readonly localSession: LocalSession;
  /** The routing options with the session's PGPOOL SET values. */
  options(): CompiledRouting;
}

export class Relay implements LinkOwner, Listener {
  readonly links = new Map<number, NodeLink>();
  primary: NodeLink;
  readonly state = new RouteState();
  private readonly memory: SessionState;
  readonly ext = new ExtendedState();
  /** Nodes this session could not use lately (connection or replay failed, link lost). */
  private readonly avoid: AvoidList;
  private waiting: Waiting = FREE;
  /** Since when the current message is held, and whether that was reported. */
  private held: Hold | null = null;
  /** The primary was lost while the session was idle: how to reach the new one (once). */
  private reconnect: (() => Promise<BackendConnection>) | null = null;
  private reconnecting = false;
  /** Nodes a connection is being opened to. */
  private connecting = emptySet<number>();
  /** Lag checks (read_your_writes) under way, by node. */
  private checking = emptySet<number>();
  /** The last unit opened for a read on a standby that could be re-run elsewhere. */
  private rerunnable: Unit | null = null;
  private standbyBegin = 'BEGIN';
  private readonly ryw: ReadYourWrites;
  private readonly lookups: FunctionLookups;
  /** The server already told the client why the session ends (a FATAL passed through). */
  private fatalSent = false;
  /** The primary's FATAL outside any exchange, kept while a failover may let the session live. */
  private keptFatal: Buffer | null = null;
  /**
   * Statements are looked at only when something uses what is found: load balancing, or the
   * per-node notice/log. Otherwise everything goes to the primary unclassified (the hot path
   * of a single-node pool pays nothing for routing).
   */
  private inspect: boolean;
  /**
   * Transaction mode: the session's connections go back to the pool between transactions and
   * are borrowed again (brought up to the session's state) when the next one starts.
   */
  private readonly lending: boolean;
  /**
   * What makes this session keep its connections in transaction mode, in the order it happened
   * (empty: nothing). A reason goes when its state is gone for certain (DISCARD ALL, ...).
   */
  private pins = emptySet<PinReason>();
  /** Cancel requests for this session still on their way: its connections are not lent meanwhile. */
  private cancelling = 0;
  /** Channels this session listens on through the shared listening connection (transaction mode). */
  private listening = emptySet<string>();
  /** Notifications for the client that wait until it is between exchanges. */
  private notifications: Buffer[] = [];
  /** Since the primary's connection was borrowed, a statement may have called nextval or setval. */
  private sequencesUsed = false;

  constructor(
    primaryConn: BackendConnection,
    private readonly ctx: SessionContext,
    private readonly s: RelaySession,
    private readonly port: RelayPort,
  ) {
    this.lending = ctx.lends(s.req.params);
    this.memory = new SessionState(this.keepsState);
    this.primary = this.link(primaryConn, true);
    this.avoid = new AvoidList(ctx.clock);
    this.ryw = new ReadYourWrites(ctx.replication);
    this.lookups = new FunctionLookups(ctx.clock, () => s.routing.catalog);
    this.inspect = this.wantsInspect();
  }

  /** Session state is logged for other nodes to replay: with load balancing, and whenever a failover may move the session. */
  private get keepsState(): boolean {
    return this.lending || this.ctx.routing.loadBalance || this.ctx.canFailOver;
  }

  /**
   * Statements are read only for what they change in the session, not to route them (transaction
   * mode with one node to use): a statement that changes nothing needs no reading at all.
   */
  private get readsOnly(): boolean {
    const v = this.s.settings.values;
    return this.lending && !this.ctx.routing.loadBalance && !this.ctx.canFailOver && !v.notice_per_node_statement && !v.log_per_node_statement;
  }

  private wantsInspect(): boolean {
    const v = this.s.settings.values;
    return this.keepsState || v.notice_per_node_statement || v.log_per_node_statement;
  }

  /** PGPOOL SET changed the per-node notice or log: statements are looked at only if needed. */
  settingsChanged(): void {
    this.inspect = this.wantsInspect();
  }

  /** Makes a backend connection part of this session. */
  private link(conn: BackendConnection, isPrimary: boolean): NodeLink {
    const link = new NodeLink(conn, isPrimary, this);
    this.takeUp(link, conn);
    this.links.set(link.nodeId, link);
    if (this.s.settings.values.log_per_node_statement) this.s.log.debug({ node: conn.node.id, backendPid: conn.processId }, 'backend attached');
    return link;
  }

  /** The client has its welcome: in transaction mode the session's connection goes back now. */
  started(): void {
    this.lendIdle();
  }

  // ---- Transaction mode: lending and borrowing connections ----------------------------------

  /**
   * A connection taken into the session (borrowed, or its first): what another session left on it
   * is reset (DISCARD ALL, only when that session had changed anything), and the link learns how
   * much of this session's replay log it already has (all of it when this session lent it last
   * and took nothing out of the log since).
   */
  private takeUp(link: NodeLink, conn: BackendConnection): void {
    if (!this.lending) return;
    const c = conn.carried;
    if (c.owner === this.memory && c.appliedSeq >= this.memory.replay.trimmedAt) {
      link.appliedSeq = c.appliedSeq;
      return;
    }
    if (c.dirty) {
      link.runSwallowed('DISCARD ALL');
      c.clear();
    } else if (c.sequences) {
      link.runSwallowed('DISCARD SEQUENCES');
      c.sequences = false;
    }
    c.owner = null;
    link.appliedSeq = 0;
    this.carryStartup(link);
  }

  /**
   * The client's startup settings on a connection that carries another's (or none): only what
   * differs, in Sluice's own unit (the server's ParameterStatus for it is Sluice's: the client
   * already has these values).
   */
  private carryStartup(link: NodeLink): void {
    const c = link.conn.carried;
    const carried = this.s.req.carried;
    const sql = carried.changeFrom(c.startup);
    if (sql === null) return;
    c.startup = carried.empty ? null : carried;
    link.runSwallowed(sql, (u) => {
      if (!u.errored) return;
      c.startup = null;
      if (link.isPrimary) this.s.log.warn({ node: link.nodeId }, 'the server refused startup settings it accepted before');
      else this.drop(link, 'carrying startup settings failed');
    });
  }

  /**
   * Between transactions, with nothing owed or held: every connection of the session goes back to
   * the pool (each remembers whose state it carries), unless something pinned the session.
   */
  private lendIdle(): void {
    if (!this.lending || this.pins.size > 0 || this.cancelling > 0 || this.port.closed) return;
    if (this.state.txStatus !== 'idle' || !this.ext.batch.empty || this.ext.batchNode !== null || this.waiting.kind !== 'free') return;
    let lent = false;
    for (const l of this.links.values()) {
      if (!l.attached || l.busy || l.replaying || l.inReadTransaction) continue;
      const conn = l.detach();
      const c = conn.carried;
      c.owner = this.memory;
      c.appliedSeq = l.isPrimary ? this.memory.replay.lastSeq : l.appliedSeq;
      c.dirty ||= c.appliedSeq > 0;
      if (l.isPrimary) {
        c.sequences ||= this.sequencesUsed;
        this.sequencesUsed = false;
      }
      this.ctx.pool.giveBack(conn);
      lent = true;
    }
    // The node's chunk ends under another owner now: what it had for the client goes out here.
    if (lent) this.port.flushClient();
  }

  /**
   * A link whose connection was lent: one is borrowed for it, at once when the pool has one idle
   * (true), else the message waits for it. The primary's is looked for where the primary is now
   * (a failover while the session held nothing moves it, as if nothing happened).
   */
  private borrow(link: NodeLink): boolean {
    const key = this.keyFor(link.nodeId);
    const idle = this.ctx.pool.takeIdle(key, this.memory, this.s.req.carried);
    if (idle) {
      this.attachBorrowed(link, idle);
      return true;
    }
    if (this.connecting.has(link.nodeId)) return false;
    this.connecting = addTo(this.connecting, link.nodeId);
    // A client kept waiting is told why (as PgBouncer 1.25 does), once, while it still waits.
    const told = this.ctx.clock.setTimeout(() => {
      if (!this.connecting.has(link.nodeId) || this.port.closed) return;
      const c = this.ctx.config;
      const n = encodeNotice(Backend.NoticeResponse, 'NOTICE', '00000', 'waiting for a server connection', `All ${c.default_pool_size} server connections of this pool (node ${link.nodeId}, database, user) are in use; the statement runs when one is free, or fails after query_wait_timeout (${c.query_wait_timeout} s).`);
      this.port.toClient(n, 0, n.length);
      this.port.flushClient();
    }, WAIT_NOTICE_MS);
    const address = this.ctx.node(link.nodeId);
    const got = link.isPrimary ? connectPrimary(this.ctx, this.s.req.backend) : address ? acquireOn(this.ctx, address, this.s.req.backend) : Promise.reject(new Error('node left'));
    got
      .then(({ conn }) => {
        if (this.port.closed) return void this.ctx.pool.giveBack(conn);
        if (conn.isClosed) throw Errors.nodeLost(conn.node.id, 'a pooled connection closed as it was borrowed');
        if (link.isPrimary && conn.node.id !== link.nodeId) return this.movePrimary(link, conn);
        this.attachBorrowed(link, conn);
      })
      .catch((err: Error) => {
        if (link.isPrimary) return this.port.end(errorFrame(err), err);
        this.links.delete(link.nodeId);
        this.avoid.add(link.nodeId);
        this.s.log.warn({ node: link.nodeId, err: err.message }, 'cannot connect to node for reads; using the primary');
      })
      .finally(() => {
        this.ctx.clock.clearTimeout(told);
        deleteFrom(this.connecting, link.nodeId);
        this.wake();
      });
    return false;
  }

  /**
   * A borrowed connection taken into its link, brought up to the session's state: the primary's
   * at once, in units queued before the client's; a standby's before it serves (prepareStandby).
   */
  private attachBorrowed(link: NodeLink, conn: BackendConnection): void {
    link.attach(conn);
    this.takeUp(link, conn);
    if (link.isPrimary) replayMissing(link, this.memory.replay, this.s);
  }

  /** The primary moved while the session held no connection: its link is to the new one now. */
  private movePrimary(old: NodeLink, conn: BackendConnection): void {
    this.links.delete(old.nodeId);
    const standby = this.links.get(conn.node.id);
    if (standby) {
      this.links.delete(standby.nodeId);
      if (standby.attached) standby.conn.destroy();
    }
    this.primary = this.link(conn, true);
    replayMissing(this.primary, this.memory.replay, this.s);
    if (this.waiting.kind === 'connecting' && this.waiting.plan.node === old.nodeId) this.waiting.plan.node = this.primary.nodeId;
    this.s.log.info({ from: old.nodeId, to: this.primary.nodeId }, 'session moved to the new primary');
  }

  private keyFor(node: number): string {
    return poolKeyOf(this.s.req, node);
  }

  /** Transaction mode: something the session did stays on its connection; it keeps it from now on. */
  private pinned(why: PinReason): void {
    if (!this.lending || this.pins.has(why)) return;
    this.pins = addTo(this.pins, why);
    this.ctx.sessionPinned(why);
    this.s.log.info({ reason: why }, 'session pinned to its server connection');
  }

  /** What made the session keep its connection is gone for certain after this statement succeeded. */
  private unpinAfter(s: Statement): void {
    if (this.pins.size === 0) return;
    const before = [...this.pins];
    if (s.kind === 'session' && s.discards === 'all') this.pins = emptySet();
    else if (s.kind === 'session' && s.discards === 'temp') deleteFrom(this.pins, 'temporary table');
    else if (s.releasesPin) deleteFrom(this.pins, s.releasesPin);
    else if (s.functions.some((f) => bare(f) === 'pg_advisory_unlock_all')) deleteFrom(this.pins, 'advisory lock');
    if (this.pins.size < before.length) this.s.log.info({ released: before.filter((p) => !this.pins.has(p)), still: [...this.pins] }, this.pins.size === 0 ? 'session no longer pinned to its server connection' : 'session pin released');
  }

  /** The first thing that pins the session to its connection (transaction mode), if any. */
  get pinnedBy(): PinReason | null {
    for (const p of this.pins) return p;
    return null;
  }

  /**
   * Transaction mode: a batch of named Parse messages and a Sync, from a session holding no
   * connection, each one a server of its pool already accepted, for a session whose state is
   * its startup's. libpq's PQprepare sends exactly that and blocks its thread for the answer
   * (pgbench -M prepared): waiting for a connection there would wait on clients of that very
   * thread. Sluice answers it; each statement is parsed where it is first used (prepare()).
   */
  private parsesKnown(): boolean {
    const b = this.ext.batch;
    if (!this.lending || this.primary.attached || this.state.txStatus !== 'idle' || this.ext.batchNode !== null) return false;
    if (this.memory.replay.lastSeq !== 0 || b.held.length === 0 || this.active() !== null) return false;
    const key = this.keyFor(this.primary.nodeId);
    return b.held.every((h) => h.type === Frontend.Parse) && b.statements.every((ps) => ps.name !== '' && this.ctx.pool.parseKnown(key, ps.parse));
  }

  private acceptParses(): boolean {
    const n = this.ext.batch.held.length;
    const reply = Buffer.alloc(5 * n + 6);
    for (let i = 0; i < n; i++) reply.set(PARSE_COMPLETE, 5 * i);
    reply.set(READY_IDLE, 5 * n);
    this.ext.synced(true);
    this.port.toClient(reply, 0, reply.length);
    this.port.flushClient();
    return true;
  }

  /** A batch of Parse messages only, to the primary: what the server accepts is remembered for its pool. */
  private noteParses(unit: Unit): void {
    const b = this.ext.batch;
    if (!b.held.every((h) => h.type === Frontend.Parse)) return;
    const key = this.keyFor(this.primary.nodeId);
    const parses = b.statements.filter((ps) => ps.name !== '').map((ps) => ps.parse);
    const done = unit.done;
    unit.done = (u) => {
      done?.(u);
      if (!u.errored) for (const p of parses) this.ctx.pool.parseAccepted(key, p);
    };
  }

  // ---- What the client sends ----------------------------------------------------------------

  /**
   * One client message in the ready state. True: taken, read on. False: taken, but held (the
   * client's next messages wait until the relay resumes it).
   */
  message(type: number, buf: Buffer, start: number, end: number): boolean {
    if (this.take(type, buf, start, end)) return true;
    this.held ??= new Hold(this.reason()!, this.ctx.clock.now());
    return false;
  }

  private take(type: number, buf: Buffer, start: number, end: number): boolean {
    if (this.ctx.gate.closed && this.atBoundary) {
      // Paused (sluicectl pause, a switchover): the next statement waits until resume.
      this.ctx.gate.holdSession(this, () => this.wake(), (err) => this.port.end(errorFrame(err)));
      return this.wait({ kind: 'paused', frame: { type, buf, start, end } });
    }
    if (this.reconnect) {
      this.startReconnect();
      return this.wait({ kind: 'newPrimary', frame: { type, buf, start, end } });
    }
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
        if (this.ext.batchNode !== null) (this.links.get(this.ext.batchNode) ?? this.primary).sendHeld(this.ext);
        return true;
      case Frontend.Flush:
      case Frontend.Sync:
        return this.batch({ type, buf, start, end });
      case Frontend.CopyData:
      case Frontend.CopyDone:
      case Frontend.CopyFail:
        (this.active() ?? this.primary).send(type, buf, start, end);
        return true;
      default:
        // FunctionCall and anything unknown: the primary answers (or rejects) it.
        return this.proceed(this.plan(this.primary.nodeId, FUNCTION_CALL, '', { type, buf, start, end }));
    }
  }

  private query(buf: Buffer, start: number, end: number): boolean {
    const local = this.ctx.local;
    if (local && mayBeLocal(buf, start, end)) {
      const sql = decodeQuery(buf, start, end);
      if (local.matches(sql)) return this.answerLocally(sql, { type: Frontend.Query, buf, start, end });
    }
    // A pinned session keeps its connection anyway: its LISTEN goes there, where
    // pg_listening_channels() shows it (PostgreSQL's own guc.sql looks).
    if (this.lending && this.pins.size === 0 && this.atBoundary && isListenQuery(buf, start, end)) {
      const cmd = listenCommand(decodeQuery(buf, start, end));
      if (cmd) return this.sharedListen(cmd.listen, cmd.channel);
    }
    if (!this.inspect || (this.readsOnly && isPlainQuery(buf, start, end))) {
      return this.proceed(this.plan(this.primary.nodeId, UNROUTED, '', { type: Frontend.Query, buf, start, end }));
    }
    const sql = decodeQuery(buf, start, end);
    const frame = { type: Frontend.Query, buf, start, end };
    const p = this.decide(classify(sql), sql, frame);
    return p !== null && this.proceed(p);
  }

  /** Extended protocol: Flush or Sync sends what the batch holds to one node. */
  private batch(frame: Frame): boolean {
    const b = this.ext.batch;
    if (frame.type === Frontend.Sync && this.parsesKnown()) return this.acceptParses();
    let node = this.ext.batchNode ?? this.ext.portalNode();
    let stmt: Statement = statement('read', 'extended batch');
    let wrote = false;
    if (!this.inspect) {
      node = this.primary.nodeId;
      stmt = UNROUTED;
    } else if (this.readsOnly) {
      // Nothing to route: the batch goes to the primary; what it changes in the session is
      // what its first statement that is not a plain read says (a Parse of a SET, say).
      node = this.primary.nodeId;
      stmt = b.statements.find((p) => p.stmt.kind !== 'read')?.stmt ?? UNROUTED;
    } else if (node === null) {
      node = this.primary.nodeId;
      const reads = b.statements.length > 0 && b.statements.every((p) => p.stmt.kind === 'read');
      if (b.statements.length === 0) {
        node = this.active()?.nodeId ?? this.primary.nodeId;
      } else if (reads) {
        const plans = b.statements.map((p) => this.decide(p.stmt, p.sql, frame));
        if (plans.includes(null)) return false;
        if (plans.every((p) => p!.node === plans[0]!.node)) node = plans[0]!.node;
        wrote = plans.some((p) => p!.wrote);
      } else {
        const first = b.statements.find((p) => p.stmt.kind !== 'read')!;
        stmt = first.stmt;
        wrote = b.statements.some((p) => p.stmt.kind === 'write');
      }
    }
    const text = b.executed.length > 0 ? b.executed : b.statements.map((p) => p.sql);
    return this.proceed({ node, stmt, sql: text.join('; '), frame, wrote, lagCheck: false });
  }

  private plan(node: number, stmt: Statement, sql: string, frame: Frame, wrote = false): Plan {
    return { node, stmt, sql, frame, wrote, lagCheck: false };
  }

  /**
   * Where a statement goes: the primary, or the node a read may use (drawn here, once). Null: the
   * message waits for a function look-up first (and is decided when it is over).
   */
  private decide(s: Statement, sql: string, frame: Frame): Plan | null {
    let eff = s;
    if (s.kind === 'execute') eff = this.memory.prepared(s.name ?? '') ?? statement('write', 'execute of an unknown statement');
    if (eff.kind === 'read' && eff.sessionView) return this.plan(this.sessionViewNode(eff.sessionView), s, sql, frame);
    const options = this.s.options();
    const d = route(eff, sql, options, this.state, this.lookups);
    const primaryId = this.primary.nodeId;
    if (d.to === 'lookup') {
      // Behind work still running on the primary the read stays there anyway: it is taken as
      // writing, as an unknown function always was.
      if (this.primary.busy) return this.plan(primaryId, s, sql, frame, true);
      this.lookups.start(d.names, (q) => this.queryNode(primaryId, q), () => this.wake());
      this.wait({ kind: 'functionLookup', frame, names: d.names });
      return null;
    }
    if (d.to === 'primary') {
      const wrote = eff.kind === 'write' || (eff.kind === 'read' && d.cause === 'writing function');
      return this.plan(primaryId, s, sql, frame, wrote);
    }
    // A read right behind work still running on the primary stays there: it keeps the client's
    // pipeline flowing, and the transaction state is only certain once the primary has answered.
    if (this.primary.busy) return this.plan(primaryId, s, sql, frame);
    const avoid = this.avoid.current();
    const lb = this.s.routing.loadBalanceNode(avoid);
    const node = lb === null ? primaryId : readNode(this.ctx.nodeViews(), lb, options.preferLowerDelay);
    if (node === null || avoid.has(node)) return this.plan(primaryId, s, sql, frame);
    const ryw = options.readYourWrites;
    const check = ryw && node !== primaryId ? this.ryw.verdict(node, this.ctx.replication.info[node]?.replayLsn ?? 0, ryw === 'cluster') : 'ahead';
    const p = this.plan(check === 'behind' ? primaryId : node, s, sql, frame);
    p.lagCheck = check === 'ask';
    return p;
  }

  /**
   * Where a read of the session's own objects runs: its cursors are where its open portals are
   * (they cannot move; SQL cursors are the primary's); its prepared statements are all brought
   * to the primary first (see send()).
   */
  private sessionViewNode(view: 'statements' | 'cursors'): number {
    const node = view === 'cursors' ? this.ext.openPortalsNode() : null;
    return node !== null && this.links.has(node) ? node : this.primary.nodeId;
  }

  /**
   * Takes a decided message as far as it can go: a connection to its node, the end of another
   * node's replies, the node's replay position, the session's state replayed there; then sends
   * it. False: it waits at one of these (and goes on from there when the wait ends).
   */
  private proceed(p: Plan): boolean {
    // A node that failed this session meanwhile (its connection, its replay, lost) is not used.
    if (p.node !== this.primary.nodeId && this.avoid.has(p.node)) p.node = this.primary.nodeId;
    const link = this.links.get(p.node);
    if (!link) {
      this.connectTo(p.node);
      return this.wait({ kind: 'connecting', plan: p });
    }
    if (!link.attached && !this.borrow(link)) return this.wait({ kind: 'connecting', plan: p });
    const active = this.active();
    if (active && active !== link) return this.wait({ kind: 'nodeAnswering', node: active.nodeId, frame: p.frame, plan: p });
    if (p.lagCheck) {
      p.lagCheck = false;
      this.checkLag(link, p);
      return this.wait({ kind: 'checkingLag', plan: p });
    }
    if (this.checking.has(p.node)) return this.wait({ kind: 'checkingLag', plan: p });
    if (link !== this.primary && !this.prepareStandby(link)) return this.wait({ kind: 'replaying', plan: p });
    this.send(p, link);
    return true;
  }

  /** Sends the decided message (with any held batch messages) to its node as a forwarded unit. */
  private send(p: Plan, link: NodeLink): void {
    const { stmt: s, sql, frame } = p;
    const continuing = frame.type !== Frontend.Query && this.ext.batchNode !== null;
    if (!continuing) {
      // Statements the batch uses but this node lacks are prepared first, in a unit of their own
      // that is queued (and answered) before the client's.
      const b = this.ext.batch;
      link.prepare(b.statements, b.uses, b.reparsed, this.lending ? this.ctx.config.max_prepared_statements : 0);
      if (sessionViewOf(s) === 'statements' || b.statements.some((x) => sessionViewOf(x.stmt) === 'statements')) link.prepareAllNamed(this.ext);
      const unit = this.openUnit(link, s, sql, this.restoreFor(link, s, frame));
      if (this.lending && link.isPrimary && frame.type === Frontend.Sync && b.held.length > 0) this.noteParses(unit);
      this.rerunnable = null;
      if (link !== this.primary && !this.state.inTransaction) {
        unit.retry = { frames: [], statements: [...b.statements], uses: [...b.uses] };
        this.rerunnable = unit;
      }
    }
    if (link === this.primary) {
      this.notePrimary(s, sql, p.wrote);
      if (this.lending && !this.sequencesUsed) this.sequencesUsed = this.mayUseSequences(frame);
    }
    const retry = link === this.primary ? undefined : this.rerunnable?.retry;
    if (retry) retry.frames.push(...this.ext.batch.held, frame);
    link.sendHeld(this.ext);
    link.send(frame.type, frame.buf, frame.start, frame.end);
    if (frame.type === Frontend.Query) link.prepared.delete('');
    if (frame.type === Frontend.Sync) this.ext.synced(this.state.txStatus === 'idle');
    else if (frame.type === Frontend.Flush) this.ext.batchNode = link.nodeId;
  }

  /** The message (to the primary) may leave sequence values on its connection (currval, lastval). */
  private mayUseSequences(frame: Frame): boolean {
    if (frame.type === Frontend.Query) return queryMayUseSequences(frame.buf, frame.start, frame.end);
    if (frame.type !== Frontend.Sync && frame.type !== Frontend.Flush) return true;
    const b = this.ext.batch;
    // An Execute of a portal whose statement is unknown here counts as one that may.
    return b.held.some((h) => h.type === Frontend.Execute) && (b.executed.length === 0 || b.executed.some(mayUseSequences));
  }

  /**
   * Transaction mode: LISTEN and UNLISTEN go to the shared listening connection of the database
   * (the session keeps no connection for them); the client gets the server's answer once the
   * shared connection listens, so a NOTIFY sent after it is heard.
   */
  private sharedListen(listen: boolean, channel: string): false {
    const l = this.ctx.listeners;
    const params = this.s.req.backend;
    let done: Promise<void>;
    if (listen) {
      done = l.listen(params, channel, this).then(() => {
        // The client left while the shared connection was getting ready: nobody to tell.
        if (this.port.closed) l.unlisten(this.s.req.database, channel, this);
        else this.listening = addTo(this.listening, channel);
      });
    } else {
      this.stopListening(channel);
      done = Promise.resolve();
    }
    const tag = listen ? 'LISTEN' : 'UNLISTEN';
    return this.answer(
      tag,
      done.then(
        () => Buffer.concat([encodeCommandComplete(tag), READY_IDLE]),
        // Not a connection failure of the client's own: its session goes on.
        (err: Error) => Buffer.concat([encodeError('ERROR', SqlState.CannotConnectNow, `could not ${tag}: ${err.message}`), READY_IDLE]),
      ),
    );
  }

  /** The shared listening connection stops for this session's channel ('*': all of its channels). */
  private stopListening(channel: string): void {
    const l = this.ctx.listeners;
    if (channel !== '*') {
      l.unlisten(this.s.req.database, channel, this);
      deleteFrom(this.listening, channel);
      return;
    }
    for (const c of this.listening) l.unlisten(this.s.req.database, c, this);
    this.listening = emptySet();
  }

  /** A notification from the shared listening connection: to the client now when it is idle, else when it is. */
  notification(frame: Buffer): void {
    if (this.port.closed) return;
    this.notifications.push(frame);
    if (this.atBoundary && this.waiting.kind === 'free') this.flushNotifications();
  }

  private flushNotifications(): void {
    if (this.notifications.length === 0) return;
    const out = this.notifications;
    this.notifications = [];
    for (const n of out) this.port.toClient(n, 0, n.length);
    this.port.flushClient();
  }

  /** SHOW POOL_* and PGPOOL ...: answered by Sluice in the session's order, after every earlier reply. */
  private answerLocally(sql: string, frame: Frame): boolean {
    const busy = this.active() ?? (this.primary.busy ? this.primary : null);
    if (busy) return this.wait({ kind: 'nodeAnswering', node: busy.nodeId, frame, plan: null });
    return this.answer(commandName(sql), answerLocal(this.ctx.local!, sql, this.s.localSession, () => this.state.txStatus));
  }

  /** Sluice's own answer to the client's message, once it is ready; the client's next messages wait for it. */
  private answer(command: string, reply: Promise<Buffer>): false {
    reply
      .then((reply) => {
        if (this.port.closed) return;
        this.port.toClient(reply, 0, reply.length);
        this.port.flushClient();
        this.waiting = FREE;
        this.done();
        if (this.atBoundary) this.flushNotifications();
      })
      .catch((err: unknown) => this.port.end(errorFrame(err)));
    return this.wait({ kind: 'answering', command });
  }

  // ---- Waiting, and going on ----------------------------------------------------------------

  private wait(w: Waiting): false {
    this.waiting = w;
    if (this.held) this.held.reason = this.reason()!;
    if (this.s.logs('debug')) this.s.log.debug({ waitingFor: describeHold(this.reason()!) }, 'client message held');
    return false;
  }

  /** Something a held message may wait for happened: it goes on, or waits on (for what is left). */
  private wake(): void {
    if (this.port.closed) return;
    const w = this.waiting;
    let sent: boolean;
    switch (w.kind) {
      case 'free':
      case 'answering':
        return;
      case 'paused':
        if (this.ctx.gate.closed) return;
        this.waiting = FREE;
        sent = this.take(w.frame.type, w.frame.buf, w.frame.start, w.frame.end);
        break;
      case 'newPrimary':
        if (this.reconnect) return;
        this.waiting = FREE;
        sent = this.take(w.frame.type, w.frame.buf, w.frame.start, w.frame.end);
        break;
      case 'functionLookup':
        // Not decided yet: decided now, with what the look-up found (or, past its time, without).
        this.waiting = FREE;
        sent = this.take(w.frame.type, w.frame.buf, w.frame.start, w.frame.end);
        break;
      case 'nodeAnswering':
        if (this.active()?.nodeId === w.node || (w.plan === null && this.links.get(w.node)?.busy)) return;
        this.waiting = FREE;
        sent = w.plan ? this.proceed(w.plan) : this.take(w.frame.type, w.frame.buf, w.frame.start, w.frame.end);
        break;
      case 'connecting':
        if (this.connecting.has(w.plan.node)) return;
        this.waiting = FREE;
        sent = this.proceed(w.plan);
        break;
      case 'checkingLag':
        if (this.checking.has(w.plan.node)) return;
        this.waiting = FREE;
        sent = this.proceed(w.plan);
        break;
      case 'replaying':
        if (this.links.get(w.plan.node)?.replaying) return;
        this.waiting = FREE;
        sent = this.proceed(w.plan);
        break;
      default:
        return assertNever(w);
    }
    if (sent) this.done();
  }

  /** The held message is done with: the client is read again. */
  private done(): void {
    this.held = null;
    this.lookups.taken();
    this.port.resumeClient();
  }

  /** What the held message waits for, as the admin views and the log name it. */
  private reason(): HoldReason | null {
    const w = this.waiting;
    switch (w.kind) {
      case 'free':
        return null;
      case 'paused':
      case 'newPrimary':
        return { kind: w.kind };
      case 'functionLookup':
        return { kind: 'functionLookup', names: w.names };
      case 'answering':
        return { kind: 'answering', command: w.command };
      case 'nodeAnswering':
        return { kind: 'nodeAnswering', node: w.node };
      case 'connecting':
      case 'checkingLag':
      case 'replaying':
        return { kind: w.kind, node: w.plan.node };
      default:
        return assertNever(w);
    }
  }

  /** The current message's hold (what it waits for, since when), if one is held. */
  get holding(): Hold | null {
    return this.waiting.kind === 'free' ? null : this.held;
  }

  /** Some node owes this session replies (one will come and wake a held message). */
  get nodeOwes(): boolean {
    for (const l of this.links.values()) if (l.busy) return true;
    return false;
  }

  /** The link with forwarded units outstanding (at most one at a time), if any. */
  private active(): NodeLink | null {
    for (const l of this.links.values()) if (l.forwarded > 0) return l;
    return null;
  }

  /** Between transactions, with nothing in flight: where a pause holds the session. */
  get atBoundary(): boolean {
    return this.state.txStatus === 'idle' && this.ext.batch.empty && this.ext.batchNode === null && !this.primary.busy && this.active() === null;
  }

  // ---- Getting a node ready -----------------------------------------------------------------

  private connectTo(node: number): void {
    if (this.connecting.has(node)) return;
    const address = this.ctx.node(node);
    if (!address) {
      this.avoid.add(node);
      return;
    }
    this.connecting = addTo(this.connecting, node);
    acquireOn(this.ctx, address, this.s.req.backend)
      .then(({ conn }) => {
        if (this.port.closed) return void this.ctx.pool.release(conn, this.s.req.database).catch(() => undefined);
        this.link(conn, false);
      })
      .catch((err: Error) => {
        this.avoid.add(node);
        this.s.log.warn({ node, err: err.message }, 'cannot connect to node for reads; using the primary');
      })
      .finally(() => {
        deleteFrom(this.connecting, node);
        this.wake();
      });
  }

  /** read_your_writes: asks the standby how far it replayed; behind means the primary. */
  private checkLag(link: NodeLink, p: Plan): void {
    this.checking = addTo(this.checking, link.nodeId);
    this.ryw.check(link, (lsn) => {
      deleteFrom(this.checking, link.nodeId);
      const ryw = this.s.options().readYourWrites;
      // The position known now: the answer, or what the replication check saw when it failed.
      const known = Math.max(lsn ?? 0, this.ctx.replication.info[link.nodeId]?.replayLsn ?? 0);
      if (ryw && this.ryw.verdict(link.nodeId, known, ryw === 'cluster', true) === 'behind') p.node = this.primary.nodeId;
      this.wake();
    });
  }

  /** Before a standby serves the session: replay what it misses; open its read transaction. False: replaying. */
  private prepareStandby(link: NodeLink): boolean {
    if (link.replaying) return false;
    const missing = this.memory.replay.since(link.appliedSeq);
    if (missing.length > 0) {
      link.appliedSeq = this.memory.replay.lastSeq;
      link.replaying = true;
      let failed = false;
      missing.forEach((e, i) => {
        link.runSwallowed(e.sql, (u) => {
          failed ||= u.errored;
          if (i < missing.length - 1) return;
          link.replaying = false;
          if (failed) this.drop(link, 'replaying session state failed');
          this.wake();
        });
      });
      return false;
    }
    if (this.state.inTransaction && !link.inReadTransaction) {
      link.inReadTransaction = true;
      link.runSwallowed(this.standbyBegin);
    }
    return true;
  }

  /** A one-value query of Sluice's own on a pooled connection of the session's to a node (not the session's). */
  private queryNode(node: number, sql: string): Promise<string | null> {
    const address = this.ctx.node(node);
    return address ? queryOnNode(this.ctx, address, this.s.req.backend, this.s.req.database, sql) : Promise.resolve(null);
  }

  // ---- Units and transactions ---------------------------------------------------------------

  /**
   * Transaction mode: a statement to the primary that resets settings the client started with
   * (its connection did not start with them): what puts the client's values back after it.
   */
  private restoreFor(link: NodeLink, s: Statement, frame: Frame): Restore | null {
    const carried = this.s.req.carried;
    if (carried.empty || link !== this.primary) return null;
    const r = frame.type === Frontend.Query ? s.resets : frame.type === Frontend.Sync ? resetsOf(this.ext.batch.statements.map((p) => p.stmt)) : undefined;
    const sql = r ? carried.restoreAfter(r) : null;
    return sql === null ? null : { ...r!, sql };
  }

  /**
   * The client's startup values back after a unit that reset them, as Sluice's own unit queued
   * right behind it; the unit's ParameterStatus messages and ReadyForQuery wait for it, and the
   * client then gets a ParameterStatus for each value that differs from before the unit, as a
   * direct connection reports only what changed. It is logged for other connections to replay
   * with the reset (a later RESET of the same setting supersedes both).
   */
  private restoreAfter(unit: Unit, link: NodeLink, restore: Restore, seqs: number[]): void {
    unit.holdsReady = true;
    if (!restore.local) {
      const key = restore.names.length === 1 ? (restore.names[0] === '*' ? 'restore all' : `set ${restore.names[0]}`) : undefined;
      seqs.push(this.memory.replay.append(restore.sql, key));
    }
    const release = (u: Unit) => {
      for (const [name, value] of link.conn.params) {
        if (u.paramsBefore?.get(name) === value) continue;
        const ps = encodeParameterStatus(new Writer(32), name, value).finish();
        this.port.toClient(ps, 0, ps.length);
      }
      this.port.toClient(u.heldReady!, 0, u.heldReady!.length);
    };
    const done = unit.done!;
    unit.done = (u) => {
      // Queued before the unit's own work, which may lend the connection once nothing is owed.
      if (u.errored) release(u);
      else link.runSwallowed(restore.sql, () => release(u));
      done(u);
    };
  }

  private openUnit(link: NodeLink, s: Statement, sql: string, restore: Restore | null = null): Unit {
    const unit: Unit = { forward: true, errored: false };
    const v = this.s.settings.values;
    if (sql && v.notice_per_node_statement) {
      unit.notice = encodeNotice(Backend.NoticeResponse, 'NOTICE', '00000', `DB node id: ${link.nodeId} statement: ${sql}`);
    }
    if (sql && v.log_per_node_statement) this.s.log.info({ node: link.nodeId, statement: sql }, 'statement sent');
    if (s.kind === 'read' || (s.kind === 'execute' && link !== this.primary)) this.ctx.countSelect(link.nodeId);
    const isPrimary = link === this.primary;
    const sentAt = this.memory.replay.lastSeq;
    const seqs = isPrimary ? this.memory.record(s, sql, this.links, this.primary, this.ext) : [];
    const functionsChanged = s.kind === 'write' ? s.functionsChanged : undefined;
    unit.done = (u) => {
      if (!isPrimary) {
        if (u.errored && this.state.inTransaction) this.standbyReadFailed(link);
        return;
      }
      const inTx = link.conn.txStatus !== 'idle';
      if (functionsChanged && !u.errored) this.lookups.changed(functionsChanged, inTx);
      if (this.memory.settled(s, seqs, sentAt, !u.errored, inTx)) this.state.pinnedTransaction = true;
      if (!u.errored) {
        this.unpinAfter(s);
        // DISCARD ALL includes UNLISTEN *; an UNLISTEN the server ran (in a transaction, say)
        // covers the shared listening connection's channels too.
        if (this.listening.size > 0) {
          if (s.kind === 'session' && s.discards === 'all') this.stopListening('*');
          else if (s.kind === 'write' && s.unlistens !== undefined) this.stopListening(s.unlistens);
        }
      }
      this.primaryReady(s, u);
    };
    if (restore) this.restoreAfter(unit, link, restore, seqs);
    link.open(unit);
    return unit;
  }

  private notePrimary(s: Statement, sql: string, wrote: boolean): void {
    if (s.kind === 'txBegin' || s.pinTransaction) this.state.txStartSeq = this.memory.replay.lastSeq;
    if (s.kind === 'txBegin' && s.standbyBegin) this.standbyBegin = s.standbyBegin;
    if (s.kind === 'write' && (s.createsUnlogged || s.createsSequences || s.renamed)) this.noteRelations(s);
    this.state.sentToPrimary(s, sql, wrote || s.kind === 'write');
    if (wrote || s.kind === 'write') this.ryw.wrote();
    if (this.lending) {
      if (s.pinsConnection) this.pinned(s.pinsConnection);
      else if (this.state.hasTempObjects) this.pinned('temporary table');
      // A read's, or one that set_config() made a txLocal: the functions it calls were kept.
      else if (s.functions.some((f) => SESSION_ADVISORY_LOCKS.has(bare(f)))) this.pinned('advisory lock');
    }
  }

  /** DDL that makes relations routing keeps on the primary (unlogged tables, sequences), or renames one. */
  private noteRelations(s: WriteStatement): void {
    const c = this.s.routing.catalog;
    if (!c) return;
    if (s.createsUnlogged) c.addRelation('unlogged', s.createsUnlogged);
    for (const seq of s.createsSequences ?? []) c.addRelation('sequence', seq);
    if (s.renamed && c.isUnlogged(bare(s.renamed.from))) c.addRelation('unlogged', s.renamed.to);
    if (s.renamed && c.isSequence(bare(s.renamed.from))) c.addRelation('sequence', s.renamed.to);
  }

  /** The primary answered a unit: track the transaction; end standbys' read transactions with it. */
  private primaryReady(s: Statement, u: Unit): void {
    const before = this.state.txStatus;
    const ended = this.state.primaryReady(this.primary.conn.txStatus, !this.primary.busy);
    if (this.s.options().readYourWrites && this.state.txStatus === 'idle' && !this.primary.busy) {
      // A write is committed: its position is where a standby must have replayed to serve this
      // session's reads (one extra round trip per writing transaction; docs/routing.md).
      this.ryw.committed(this.primary);
    }
    if (!ended) return;
    this.lookups.transactionEnded();
    const committed = !u.errored && !(s.kind === 'txEnd' && s.commit === false) && before !== 'failedTx';
    if (!committed) this.memory.replay.truncateAfter(this.state.txStartSeq);
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

  // ---- What the nodes send (LinkOwner) ------------------------------------------------------

  toClient(buf: Buffer, start: number, end: number): void {
    this.port.toClient(buf, start, end);
  }

  noticeToClient(notice: Buffer): void {
    this.port.toClient(notice, 0, notice.length);
  }

  chunkEnd(link: NodeLink): void {
    this.port.chunkEnd(link.conn);
  }

  /** A link finished its last forwarded unit, or its last unit of any kind. */
  linkSettled(): void {
    this.wake();
    this.lendIdle();
    if (this.notifications.length > 0 && this.atBoundary && this.waiting.kind === 'free') this.flushNotifications();
  }

  fatalSeen(): void {
    this.fatalSent = true;
  }

  get stats() {
    return this.ctx.backendStats;
  }

  get clock() {
    return this.ctx.clock;
  }

  /** The primary's FATAL outside an exchange: kept when the session may survive the node. */
  keepFatal(link: NodeLink, frame: Buffer): boolean {
    if (!this.survivable(link)) return false;
    this.keptFatal = frame;
    return true;
  }

  // ---- Losing nodes -------------------------------------------------------------------------

  /** Whether losing this link now can leave the client connected: the idle primary of a session. */
  private survivable(link: NodeLink): boolean {
    return this.ctx.canFailOver && link.isPrimary && link.forwarded === 0 && !this.state.inTransaction && !this.fatalSent;
  }

  /**
   * A backend connection went away. A standby is never the end of a session: what it owed is
   * answered from the primary. The primary's ends the session unless the session was idle outside
   * a transaction and the node turns out to be down (failed over): then the session waits for the
   * new primary. The primary's own FATAL for an idle session is kept until that is known.
   */
  linkClosed(link: NodeLink, err?: Error): void {
    if (this.port.closed || this.links.get(link.nodeId) !== link) return;
    if (!link.isPrimary) {
      this.standbyLost(link, err?.message ?? 'connection closed');
      void this.ctx.confirmDown(link.nodeId, false);
      return;
    }
    const fatal = this.keptFatal;
    this.keptFatal = null;
    const down = this.ctx.confirmDown(link.nodeId, fatal !== null && isShutdown(fatal));
    if (!this.survivable(link)) return this.primaryGone(link, fatal, err);
    // Idle outside a transaction: nothing is lost yet. If the node failed, the session carries
    // on with the new primary at its next statement; if not (its backend alone was ended, say by
    // pg_terminate_backend), it ends as a direct connection would.
    this.links.delete(link.nodeId);
    this.reconnect = async () => {
      if (!(await down)) throw new KeptFatal(fatal);
      const { conn } = await connectPrimary(this.ctx, this.s.req.backend);
      if (this.port.closed) {
        this.ctx.pool.discard(conn);
        throw new Error('session closed');
      }
      return conn;
    };
    void down.then((isDown) => {
      if (!isDown) this.primaryGone(link, fatal, err);
    });
    // A message held for the old link (a local command waiting for Sluice's own query there)
    // now waits for the new primary instead.
    if (this.waiting.kind !== 'free' && this.waiting.kind !== 'answering') {
      const frame = 'frame' in this.waiting ? this.waiting.frame : this.waiting.plan.frame;
      this.waiting = { kind: 'newPrimary', frame };
      this.startReconnect();
    }
  }

  /** The primary connection is gone and the session with it: the server's FATAL, or ours. */
  private primaryGone(link: NodeLink, fatal: Buffer | null, err?: Error): void {
    if (this.port.closed) return;
    const ours = this.fatalSent ? null : Errors.nodeLost(link.nodeId, err?.message).toFrame();
    this.port.end(fatal ?? ours, err);
  }

  /** Finds the new primary (once, however many wakes ask); the held message waits for it. */
  private startReconnect(): void {
    if (this.reconnecting || !this.reconnect) return;
    this.reconnecting = true;
    this.reconnect()
      .then((conn) => {
        this.reconnect = null;
        this.adoptPrimary(conn);
      })
      .catch((err: unknown) => this.port.end(errorFrame(err)))
      .finally(() => {
        this.reconnecting = false;
        this.wake();
      });
  }

  /** A new primary connection: the session's state is replayed on it before the held statement. */
  private adoptPrimary(conn: BackendConnection): void {
    const old = this.links.get(conn.node.id);
    if (old) {
      // This session's standby link to the promoted node: the new link replaces it.
      this.links.delete(old.nodeId);
      if (old.attached) old.conn.destroy();
    }
    this.primary = this.link(conn, true);
    const replayed = replayMissing(this.primary, this.memory.replay, this.s);
    this.s.log.info({ node: this.primary.nodeId, replayed }, 'session moved to the new primary');
  }

  /**
   * A standby's connection is gone (the node died, or was detached). What it still owed the
   * client is answered from the primary, in order: a read outside a transaction whose replies
   * had not started is simply run there; anything else gets an error of its own (08006) and,
   * inside a transaction, fails the transaction as a failed read would.
   */
  private standbyLost(link: NodeLink, reason: string): void {
    this.links.delete(link.nodeId);
    this.avoid.add(link.nodeId);
    deleteFrom(this.checking, link.nodeId);
    link.replaying = false;
    const owed = link.takeOwed();
    this.s.log.warn({ node: link.nodeId, reason, owed: owed.length }, 'standby connection lost');
    if (owed.length > 0) {
      if (this.reconnect) {
        this.port.end(errorFrame(new Error('primary and standby lost together')));
        return;
      }
      answerOwed(this.primary, this.ext, link.nodeId, owed, (l, st, sql) => this.openUnit(l, st, sql));
    }
    if (link.attached) link.conn.destroy();
    this.wake();
  }

  /** Stops using a node for this session (its connection is closed here). */
  private drop(link: NodeLink, reason: string): void {
    if (link === this.primary) return;
    this.avoid.add(link.nodeId);
    this.links.delete(link.nodeId);
    this.s.log.warn({ node: link.nodeId, reason }, 'node no longer used by this session');
    if (link.attached) link.conn.destroy();
  }

  /** A node left service: this session's connection to it goes (and what it owed is answered). */
  nodeDown(id: number): void {
    const link = this.links.get(id);
    if (link?.attached) link.conn.destroy(new Error(`node ${id} left service`));
    else if (link && !link.isPrimary) this.links.delete(id);
  }

  /** Cancels what this session's backend connections are running (a CancelRequest for it). */
  cancel(): void {
    for (const l of this.links.values()) {
      if (!l.attached) continue;
      // Transaction mode: the connection stays this session's until the request was delivered,
      // so that it cannot reach a statement of whoever borrows the connection next.
      this.cancelling++;
      cancelOnNode(l.conn, this.s.log, () => {
        this.cancelling--;
        if (this.port.closed && this.cancelling === 0) this.releaseLinks();
        else this.lendIdle();
      });
    }
  }

  /** The session ends: its backend connections go back to the pool (see releaseBackends). */
  close(): void {
    this.lookups.taken();
    // A LISTEN still on its way is taken out when it completes (sharedListen).
    if (this.listening.size > 0) this.stopListening('*');
    // A cancel request of this session still on its way: its connections wait for it (it could
    // otherwise reach the statement of whoever borrows them next).
    if (this.cancelling === 0) this.releaseLinks();
  }

  private releaseLinks(): void {
    const attached = [...this.links.values()].filter((l) => l.attached).map((l) => l.conn);
    releaseBackends(this.ctx, attached, this.s.req.database);
    this.links.clear();
  }

  get txStatus(): TxStatus {
    return this.state.txStatus;
  }
}
