// The session's inputs to routing beyond what route() weighs: its load-balance node and its
// database's catalog facts (SessionRouting), the look-up of functions the catalog does not know
// yet (FunctionLookups), and the replay positions a read must wait for (ReadYourWrites).
import type { BackendConnection } from '../backend/connection';
import type { CommitPositions } from '../cluster/commit-positions';
import type { DatabaseCatalog } from '../cluster/catalog-cache';
import { lsnToNumber } from '../cluster/replication';
import type { RedirectRule } from '../config/patterns';
import type { Logger } from '../log/logger';
import { chooseLoadBalanceNode, matchRedirect, NodeView } from '../router/balancer';
import type { CatalogView } from '../router/route';
import type { Clock, TimerHandle } from '../util/clock';
import type { SessionContext } from './context';
import type { NodeLink } from './links';
import type { StartupRequest } from './startup';

/**
 * What routing fixes for a session when it starts: its load-balance node (pgpool's
 * select_load_balancing_node(), redirect lists first) and its database's catalog facts.
 */
export class SessionRouting {
  lbNode: number | null = null;
  catalog: DatabaseCatalog | null = null;
  private rule: RedirectRule | null = null;

  constructor(
    private readonly ctx: SessionContext,
    private readonly session: { readonly log: Logger },
  ) {}

  async load(req: StartupRequest, conn: BackendConnection): Promise<void> {
    const r = this.ctx.routing;
    this.rule = matchRedirect(r.appNameRedirects, req.params.get('application_name')) ?? matchRedirect(r.databaseRedirects, req.database);
    this.lbNode = chooseLoadBalanceNode(this.ctx.nodeViews(), this.rule, this.ctx.rng);
    this.catalog = this.ctx.catalogs.get(req.database);
    if (this.catalog) return;
    try {
      this.catalog = await this.ctx.catalogs.load(req.database, conn, this.ctx.config.connect_timeout || 10_000);
    } catch (err) {
      this.session.log.warn({ err: (err as Error).message, database: req.database }, 'cannot read function volatility; reads that call functions go to the primary');
    }
  }

  /**
   * The node for the next read: a fresh choice per statement, or the session's, chosen again
   * when its node left service or failed this session (`avoid`).
   */
  loadBalanceNode(avoid: ReadonlyMap<number, number>): number | null {
    const views = this.ctx.nodeViews();
    if (this.ctx.routing.statementLevel) return chooseLoadBalanceNode(usable(views, avoid), this.rule, this.ctx.rng);
    const lb = this.lbNode;
    if (lb !== null && views[lb]?.up && !avoid.has(lb)) return lb;
    this.lbNode = chooseLoadBalanceNode(usable(views, avoid), this.rule, this.ctx.rng);
    if (lb !== null) this.session.log.debug({ from: lb, to: this.lbNode }, 'load-balance node changed');
    return this.lbNode;
  }
}

/** The views with the avoided nodes marked down (copied only when there are some). */
function usable(views: readonly NodeView[], avoid: ReadonlyMap<number, number>): readonly NodeView[] {
  return avoid.size === 0 ? views : views.map((v) => (avoid.has(v.id) ? { ...v, up: false } : v));
}

/**
 * How long a read waits for the volatility of functions it calls that are not known yet (made
 * after the catalog was read) before it goes to the primary, the safe side. A primary answers
 * the look-up in well under a millisecond; one that does not is no place to wait.
 */
export const LOOKUP_LIMIT_MS = 200;

/**
 * One session's side of function look-ups (pgpool looks an unknown function up when it first
 * meets it): routing's view of the catalog, the look-up of the held message's unknown names on
 * the session's primary connection, and its time limit. Answers are kept per database for every
 * session (cluster/catalog-cache.ts); DDL that passes through forgets what it changes.
 */
export class FunctionLookups implements CatalogView {
  /** The held message's look-up had no answer in time: names still unknown are the primary's. */
  private gaveUp = false;
  private timer: TimerHandle | undefined;
  /** Names changed by DDL in the open transaction: forgotten again when it ends (commit makes them visible). */
  private changedInTx: string[] | '*' | null = null;

  constructor(
    private readonly clock: Clock,
    /** The session's database's catalog facts (null: they could not be read). */
    private readonly catalog: () => DatabaseCatalog | null,
  ) {}

  writesFunction(name: string): boolean | null {
    const e = this.catalog();
    if (!e) return true;
    const w = e.writesFunction(name);
    return w === null && this.gaveUp ? true : w;
  }

  isUnlogged(relation: string): boolean {
    return this.catalog()?.isUnlogged(relation) ?? false;
  }

  isSequence(relation: string): boolean {
    return this.catalog()?.isSequence(relation) ?? false;
  }

  /**
   * Asks the primary about the names (or joins a look-up under way) with `query`, which runs on
   * a connection of its own: a look-up that hangs must not hold up what the session sends next.
   * `wake` lets the held message go.
   */
  start(names: readonly string[], query: (sql: string) => Promise<string | null>, wake: () => void): void {
    const e = this.catalog();
    if (!e) return wake();
    e.lookUp(names, (sql, asked) => void query(sql).then((v) => e.learned(asked, v)), wake);
    this.timer ??= this.clock.setTimeout(() => {
      this.timer = undefined;
      this.gaveUp = true;
      wake();
    }, LOOKUP_LIMIT_MS);
  }

  /** The held message was taken: the next one starts afresh. */
  taken(): void {
    if (this.timer === undefined && !this.gaveUp) return;
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.gaveUp = false;
  }

  /** DDL changed functions (names, or '*': anything may have changed) and the primary said so. */
  changed(names: readonly string[] | '*', inTransaction: boolean): void {
    this.catalog()?.forget(names);
    if (!inTransaction) return;
    this.changedInTx = names === '*' || this.changedInTx === '*' ? '*' : [...(this.changedInTx ?? []), ...names];
  }

  /** The transaction ended: what it changed is forgotten again (a look-up meanwhile saw the old). */
  transactionEnded(): void {
    if (this.changedInTx === null) return;
    this.catalog()?.forget(this.changedInTx);
    this.changedInTx = null;
  }
}

/** Where replay positions are shared between sessions (cluster/replication.ts). */
export interface ReplayPositions {
  noteReplay(node: number, lsn: number): void;
  readonly commits: CommitPositions;
}

/**
 * read_your_writes for one session. After a transaction of this session that wrote commits, the
 * primary's WAL position is read once. A read headed to a standby goes there only when the
 * standby is known to have replayed far enough: with scope cluster, to the latest position any
 * session committed (and while one is still being read, every read goes to the primary: see
 * CommitPositions); with scope session, to this session's own, or the cluster's when it began.
 * When that is not known, this session asks the standby first (the read waits for the answer);
 * behind means the primary.
 */
export class ReadYourWrites {
  /** The position after this session's last write, or the cluster's when it began (scope session). */
  private ownLsn: number;
  /** A write went to the primary since the last position was read. */
  private owed = false;

  constructor(private readonly positions: ReplayPositions) {
    this.ownLsn = positions.commits.committedLsn;
  }

  wrote(): void {
    this.owed = true;
  }

  /**
   * For a read headed to a standby: whether it may go there ('ahead'), must go to the primary
   * instead ('behind'), or the standby is to be asked first ('ask'). `cluster`: the read must see
   * every session's commits; else this session's own (and those before it began). `asked`: the
   * standby was just asked, and `replayLsn` is its answer.
   */
  verdict(node: number, replayLsn: number, cluster: boolean, asked = false): 'ahead' | 'behind' | 'ask' {
    const commits = this.positions.commits;
    if (cluster && commits.pending()) return 'behind';
    if ((cluster ? commits.committedLsn : this.ownLsn) <= replayLsn) return 'ahead';
    if (asked) {
      commits.foundBehind(node);
      return 'behind';
    }
    return commits.recentlyBehind(node) ? 'behind' : 'ask';
  }

  /** The primary is idle outside a transaction: read its position if a write is owed. */
  committed(primary: NodeLink): void {
    if (!this.owed) return;
    this.owed = false;
    const commits = this.positions.commits;
    const ticket = commits.committing();
    primary.runCaptured('SELECT pg_catalog.pg_current_wal_insert_lsn()', (v) => {
      const lsn = v ? lsnToNumber(v) : null;
      if (lsn !== null && lsn > this.ownLsn) this.ownLsn = lsn;
      commits.committed(ticket, lsn);
    });
  }

  /** Asks the standby how far it replayed; `then` gets the answer (null when it failed). */
  check(link: NodeLink, then: (replayLsn: number | null) => void): void {
    link.runCaptured('SELECT pg_catalog.pg_last_wal_replay_lsn()', (v) => {
      const lsn = v ? lsnToNumber(v) : null;
      if (lsn !== null) this.positions.noteReplay(link.nodeId, lsn);
      then(lsn);
    });
  }
}
