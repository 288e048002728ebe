// The routing data path of one session: where each client message goes and when it may be sent.
// Its helpers (read-your-writes, function look-ups, extended-protocol state, node loss, replay)
// live in files of their own; what stays here is the decision and the order of units across
// nodes, which are one story and are read together, hence the length.
import { encodeNotice } from '../protocol/backend';
import { Backend, Frontend } from '../protocol/codes';
import { decodeQuery } from '../protocol/frontend';
import { readNode } from '../router/balancer';
import { classify } from '../router/classify';
import { bare, Decision, route } from '../router/route';
import { Statement, statement } from '../router/statement';
import type { DispatchHost } from './dispatch-host';
import { ExtendedState } from './extended';
import type { NodeLink, Unit } from './link';
import { answerOwed, AvoidList, replayAll } from './node-loss';
import { ReadYourWrites } from './read-your-writes';
import { RouteState } from './route-state';
import { SessionState } from './session-state';
import { LocalTurn, mayBeLocal } from './local-command';
import { prepareAllNamed, prepareStatements, sendHeld } from './statements';
import { PrimaryRecovery } from './primary-recovery';
import { Hold, HoldReason } from './hold';
import { FunctionLookups } from './function-lookup';

const POISON_SQL = "DO $$BEGIN RAISE EXCEPTION 'a read of this transaction failed on a standby'; END$$";
/** What a statement is when nothing routes it (load balancing off, no per-node tracing). */
const UNROUTED = statement('write', 'not routed');

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
  private readonly session: SessionState;
  readonly ext = new ExtendedState();
  /** Nodes this session could not use lately (connection or replay failed, link lost). */
  private readonly badNodes = new AvoidList();
  /** Pending while the session has lost its primary and waits for the new one. */
  private readonly recovery = new PrimaryRecovery();
  /** The last unit opened for a read on a standby that could be re-run elsewhere. */
  private rerunnable: Unit | null = null;
  /** A client frame waits for release() (the framer delivers it again then). */
  private held = false;
  /** Why the current client message waits, and since when (cleared once it is taken). */
  private hold_: Hold | null = null;
  /** SHOW POOL_* and PGPOOL commands, when the server answers them. */
  private readonly localTurn: LocalTurn | null;
  private connecting = false;
  private standbyBegin = 'BEGIN';
  private readonly ryw: ReadYourWrites;
  private readonly lookups: FunctionLookups;
  /**
   * Statements are looked at only when something uses what is found: load balancing, or the
   * per-node notice/log. Otherwise everything goes to the primary unclassified (the hot path
   * of a single-node pool pays nothing for routing).
   */
  private inspect: boolean;

  constructor(
    public primary: NodeLink,
    private readonly host: DispatchHost,
  ) {
    this.links.set(primary.nodeId, primary);
    this.session = new SessionState(host.keepsState);
    this.ryw = new ReadYourWrites(host.replayPositions);
    this.lookups = new FunctionLookups(host.clock, () => host.catalog());
    this.inspect = this.wantsInspect();
    const owner = {
      busyNode: () => (this.active() ?? (this.primary.busy ? this.primary : null))?.nodeId ?? null,
      txStatus: () => this.state.txStatus,
      hold: (r: HoldReason) => this.hold(r),
      release: () => this.release(),
    };
    this.localTurn = host.local ? new LocalTurn(host.local, host, owner) : null;
  }

  private wantsInspect(): boolean {
    return this.host.keepsState || this.host.noticePerNode() || this.host.logPerNode();
  }

  /** PGPOOL SET changed the per-node notice or log: statements are looked at only if needed. */
  settingsChanged(): void {
    this.inspect = this.wantsInspect();
  }

  /** The link with forwarded units outstanding (at most one at a time), if any. */
  private active(): NodeLink | null {
    for (const l of this.links.values()) if (l.forwarded > 0) return l;
    return null;
  }

  /** One client message in the ready state. False: hold it; it comes again after resume(). */
  message(type: number, buf: Buffer, start: number, end: number): boolean {
    const taken = this.take(type, buf, start, end);
    if (taken) {
      this.hold_ = null;
      this.lookups.taken();
    }
    return taken;
  }

  private take(type: number, buf: Buffer, start: number, end: number): boolean {
    if (this.host.gate.closed && this.atBoundary) {
      // Paused (sluicectl pause, a switchover): the next statement waits until resume.
      this.host.gate.holdSession(this, () => this.release(), (err) => this.host.fail(err));
      return this.hold({ kind: 'paused' });
    }
    if (this.recovery.pending) {
      this.recovery.run((link) => this.adoptPrimary(link), (err) => this.host.fail(err), () => this.release());
      return this.hold({ kind: 'newPrimary' });
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
        if (this.ext.batchNode !== null) sendHeld(this.links.get(this.ext.batchNode) ?? this.primary, this.ext);
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
    if (this.localTurn && mayBeLocal(buf, start, end)) {
      const answered = this.localTurn.handle(decodeQuery(buf, start, end));
      if (answered !== null) return answered;
    }
    if (!this.inspect) return this.dispatch(this.primary.nodeId, UNROUTED, '', Frontend.Query, buf, start, end);
    const sql = decodeQuery(buf, start, end);
    const s = classify(sql);
    const d = this.decide(s, sql);
    return d !== null && this.dispatch(d.node, d.stmt, sql, Frontend.Query, buf, start, end, d.wrote);
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
        if (ds.includes(null)) return false;
        if (ds.every((d) => d!.node === ds[0]!.node)) node = ds[0]!.node;
        wrote = ds.some((d) => d!.wrote);
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

  /** Where a statement goes: the primary, or the node a read may use; null: held (a function look-up). */
  private decide(s: Statement, sql: string): { node: number; stmt: Statement; wrote: boolean } | null {
    let eff = s;
    if (s.kind === 'execute') eff = this.session.prepared(s.name ?? '') ?? statement('write', 'execute of an unknown statement');
    if (eff.kind === 'read' && eff.sessionView) return { node: this.sessionViewNode(eff.sessionView), stmt: s, wrote: false };
    const d: Decision = route(eff, sql, this.host.routing(), this.state, this.lookups);
    const primaryId = this.primary.nodeId;
    if (d.to === 'lookup') {
      // Behind work still running on the primary the read stays there anyway: it is taken as
      // writing, as an unknown function always was.
      if (this.primary.busy) return { node: primaryId, stmt: s, wrote: true };
      this.lookups.start(d.names!, (sql) => this.host.queryNode(primaryId, sql), () => this.release());
      this.hold({ kind: 'functionLookup', names: d.names! });
      return null;
    }
    if (d.to === 'primary') {
      const wrote = eff.kind === 'write' || (eff.kind === 'read' && d.reason.startsWith('function'));
      return { node: primaryId, stmt: s, wrote };
    }
    // A read right behind work still running on the primary stays there: it keeps the client's
    // pipeline flowing, and the transaction state is only certain once the primary has answered.
    if (this.primary.busy) return { node: primaryId, stmt: s, wrote: false };
    const lb = this.host.loadBalanceNode(this.badNodes.current());
    const node = lb === null ? primaryId : readNode(this.host.nodes(), lb, this.host.routing().preferLowerDelay);
    if (node === null || this.badNodes.current().has(node)) return { node: primaryId, stmt: s, wrote: false };
    const ryw = this.host.routing().readYourWrites;
    const behind = ryw && node !== primaryId && this.ryw.behind(node, this.host.replayLsn(node), ryw === 'cluster');
    return { node: behind ? primaryId : node, stmt: s, wrote: false };
  }

  /**
   * Where a read of the session's own objects runs: its cursors are where its open portals are
   * (they cannot move; SQL cursors are the primary's); its prepared statements are all brought
   * to the primary first (see dispatch()).
   */
  private sessionViewNode(view: 'statements' | 'cursors'): number {
    const node = view === 'cursors' ? this.ext.openPortalsNode() : null;
    return node !== null && this.links.has(node) ? node : this.primary.nodeId;
  }

  /**
   * Sends the frame (with any held batch messages) to the node as part of a forwarded unit, or
   * holds it: while another node still owes replies, while connecting, while replaying state.
   */
  private dispatch(node: number, s: Statement, sql: string, type: number, buf: Buffer, start: number, end: number, wrote = false): boolean {
    const link = this.links.get(node);
    if (!link) return this.connectTo(node);
    const active = this.active();
    if (active && active !== link) return this.hold({ kind: 'nodeAnswering', node: active.nodeId });
    if (this.ryw.checkNode === node) {
      this.ryw.check(link, () => this.release());
      return this.hold({ kind: 'checkingLag', node });
    }
    this.ryw.checkNode = null;
    if (link !== this.primary && !this.prepareStandby(link)) return false;
    const continuing = type !== Frontend.Query && this.ext.batchNode !== null;
    if (!continuing) {
      // Statements the batch uses but this node lacks are prepared first, in a unit of their own
      // that is queued (and answered) before the client's.
      const b = this.ext.batch;
      prepareStatements(link, b.statements, b.uses);
      if (s.sessionView === 'statements' || b.statements.some((p) => p.stmt.sessionView === 'statements')) prepareAllNamed(link, this.ext);
      const unit = this.openUnit(link, s, sql);
      this.rerunnable = null;
      if (link !== this.primary && !this.state.inTransaction) {
        unit.retry = { frames: [], statements: [...b.statements], uses: [...b.uses] };
        this.rerunnable = unit;
      }
    }
    if (link === this.primary) this.notePrimary(s, sql, wrote);
    const retry = link === this.primary ? undefined : this.rerunnable?.retry;
    if (retry) retry.frames.push(...this.ext.batch.held, { type, buf, start, end });
    sendHeld(link, this.ext);
    link.send(type, buf, start, end);
    if (type === Frontend.Query) link.prepared.delete('');
    return true;
  }

  private openUnit(link: NodeLink, s: Statement, sql: string): Unit {
    const unit: Unit = { forward: true, errored: false };
    if (sql && this.host.noticePerNode()) {
      unit.notice = encodeNotice(Backend.NoticeResponse, 'NOTICE', '00000', `DB node id: ${link.nodeId} statement: ${sql}`);
    }
    if (sql && this.host.logPerNode()) this.host.log.info({ node: link.nodeId, statement: sql }, 'statement sent');
    if (s.kind === 'read' || (s.kind === 'execute' && link !== this.primary)) this.host.countSelect(link.nodeId);
    const isPrimary = link === this.primary;
    const sentAt = this.session.replay.lastSeq;
    const seqs = isPrimary ? this.session.record(s, sql, this.links, this.primary, this.ext) : [];
    unit.done = (u) => {
      const inTx = this.primary.conn.txStatus !== 'idle';
      if (isPrimary && s.functionsChanged && !u.errored) this.lookups.changed(s.functionsChanged, inTx);
      if (isPrimary && this.session.settled(s, seqs, sentAt, !u.errored, inTx)) this.state.pinnedTransaction = true;
      if (isPrimary) this.primaryReady(s, u);
      else if (u.errored && this.state.inTransaction) this.standbyReadFailed(link);
    };
    link.open(unit);
    return unit;
  }

  private notePrimary(s: Statement, sql: string, wrote: boolean): void {
    if (s.kind === 'txBegin' || s.pinTransaction) this.state.txStartSeq = this.session.replay.lastSeq;
    if (s.kind === 'txBegin' && s.standbyBegin) this.standbyBegin = s.standbyBegin;
    if (s.createsUnlogged || s.createsSequences || s.renamed) this.noteRelations(s);
    this.state.sentToPrimary(s, sql, wrote || s.kind === 'write');
    if (wrote || s.kind === 'write') this.ryw.wrote();
  }

  /** DDL that makes relations routing keeps on the primary (unlogged tables, sequences), or renames one. */
  private noteRelations(s: Statement): void {
    const c = this.host.catalog();
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
    if (this.host.routing().readYourWrites && this.state.txStatus === 'idle' && !this.primary.busy) {
      // A write is committed: its position is where a standby must have replayed to serve this
      // session's reads (one extra round trip per writing transaction; README).
      this.ryw.committed(this.primary);
    }
    if (!ended) return;
    this.lookups.transactionEnded();
    const committed = !u.errored && s.commit !== false && before !== 'failedTx';
    if (!committed) this.session.replay.truncateAfter(this.state.txStartSeq);
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
    // A held message may be woken by another node meanwhile: it waits until the replay is over.
    if (link.replaying) return this.hold({ kind: 'replaying', node: link.nodeId });
    const missing = this.session.replay.since(link.appliedSeq);
    if (missing.length > 0) {
      link.appliedSeq = this.session.replay.lastSeq;
      link.replaying = true;
      let failed = false;
      missing.forEach((e, i) => {
        link.runSwallowed(e.sql, (u) => {
          failed ||= u.errored;
          if (i < missing.length - 1) return;
          link.replaying = false;
          if (failed) this.drop(link, 'replaying session state failed');
          this.release();
        });
      });
      return this.hold({ kind: 'replaying', node: link.nodeId });
    }
    if (this.state.inTransaction && !link.inReadTransaction) {
      link.inReadTransaction = true;
      link.runSwallowed(this.standbyBegin);
    }
    return true;
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
          this.badNodes.add(node);
          this.host.log.warn({ node, err: err.message }, 'cannot connect to node for reads; using the primary');
        })
        .finally(() => {
          this.connecting = false;
          this.release();
        });
    }
    return this.hold({ kind: 'connecting', node });
  }

  /** Between transactions, with nothing in flight: where a pause holds the session. */
  get atBoundary(): boolean {
    return this.state.txStatus === 'idle' && this.ext.batch.empty && this.ext.batchNode === null && !this.primary.busy && this.active() === null;
  }

  private hold(reason: HoldReason): false {
    this.held = true;
    if (this.hold_) this.hold_.reason = reason;
    else this.hold_ = new Hold(reason, this.host.clock.now());
    return false;
  }

  /** What the current client message waits for, if it is held. */
  get holding(): Hold | null {
    return this.held ? this.hold_ : null;
  }

  /** Some node owes this session replies (one will come and wake a held message). */
  get nodeOwes(): boolean {
    for (const l of this.links.values()) if (l.busy) return true;
    return false;
  }

  /** Lets a held client frame go again. */
  release(): void {
    if (!this.held) return;
    this.held = false;
    this.host.resume();
  }

  /** Stops using a node for this session (its connection is closed by the caller or here). */
  drop(link: NodeLink, reason: string): void {
    if (link === this.primary) return;
    this.badNodes.add(link.nodeId);
    this.links.delete(link.nodeId);
    this.host.log.warn({ node: link.nodeId, reason }, 'node no longer used by this session');
    link.conn.destroy();
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
    this.badNodes.add(link.nodeId);
    const owed = link.takeOwed();
    this.host.log.warn({ node: link.nodeId, reason, owed: owed.length }, 'standby connection lost');
    if (owed.length > 0) {
      if (this.recovery.pending) {
        this.host.fail(new Error('primary and standby lost together'));
        return;
      }
      answerOwed(this.primary, this.ext, link.nodeId, owed, (l, st, sql) => this.openUnit(l, st, sql));
    }
    link.conn.destroy();
    this.release();
  }

  /**
   * The primary's connection is gone while the session was idle outside a transaction: the
   * session waits (holding its next statement) for `reconnect` to give it the new primary.
   */
  primaryLost(reconnect: () => Promise<NodeLink>): void {
    this.links.delete(this.primary.nodeId);
    this.recovery.lost(reconnect);
    // A message held for the old link (a local command waiting for Sluice's own query there)
    // now waits for the new primary instead.
    this.release();
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
    replayAll(link, this.session.replay, this.host.log);
  }
}
