import type { BackendConnection } from '../backend/connection';
import { runQueries } from '../backend/query';
import type { Logger } from '../log/logger';
import { CommitPositions } from './commit-positions';
import { isLive, NodeInfo } from './topology';

/** What the streaming-replication check last found about one node (pgpool's sr_check worker). */
export interface ReplicationInfo {
  /** WAL bytes the node's replay is behind the primary's current LSN (0 for the primary). */
  delayBytes: number;
  /** pg_stat_replication.replay_lag in ms, via application_name; null when unknown. */
  delayMs: number | null;
  /** pg_stat_replication state and sync_state, as SHOW POOL_NODES lists them. */
  state: string;
  syncState: string;
  /** Last replayed LSN seen on the node, as a number of bytes. */
  replayLsn: number;
  /** Over delay_threshold (or delay_threshold_by_time): no reads for it. */
  delayed: boolean;
}

export interface ReplicationOptions {
  periodMs: number;
  thresholdBytes: number;
  thresholdMs: number;
  timeoutMs: number;
}

/** 'X/Y' (pg_lsn text) as bytes; exact below 2^53, far beyond any real WAL position. */
export function lsnToNumber(lsn: string | null | undefined): number {
  if (!lsn) return 0;
  const [hi, lo] = lsn.split('/');
  return Number.parseInt(hi!, 16) * 2 ** 32 + Number.parseInt(lo!, 16);
}

const emptyInfo = (): ReplicationInfo => ({ delayBytes: 0, delayMs: null, state: '', syncState: '', replayLsn: 0, delayed: false });

const STAT_SQL =
  'SELECT application_name, state, sync_state, (EXTRACT(EPOCH FROM replay_lag) * 1000)::bigint FROM pg_catalog.pg_stat_replication';

/**
 * Measures each standby's delay every sr_check_period, as pgpool does: the primary's
 * pg_current_wal_lsn() minus the standby's pg_last_wal_replay_lsn() in bytes, and replay_lag
 * from pg_stat_replication by application_name in time. One connection per node is kept open
 * between checks (pgpool reconnects each time; keeping it saves a startup per node per period).
 */
export class ReplicationMonitor {
  readonly info: ReplicationInfo[];
  private readonly conns = new Map<number, BackendConnection>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | null = null;
  private stopped = false;
  private generation = 0;
  /** The primary the last measurement found (undefined before the first). */
  private measuredPrimary: number | undefined;
  /** read_your_writes' positions, shared by every session. */
  readonly commits = new CommitPositions();

  constructor(
    private readonly nodes: readonly NodeInfo[],
    private readonly primaryId: () => number | null,
    private readonly open: (node: NodeInfo) => Promise<BackendConnection>,
    /** Replaced by a reload (reconfigure). */
    private opts: ReplicationOptions,
    /** With true as soon as a node's figures that routing uses changed; with false after each whole check. */
    private readonly measured: (changed: boolean) => void,
    private readonly log: Logger,
  ) {
    this.info = nodes.map(emptyInfo);
  }

  start(): void {
    const gen = ++this.generation;
    if (this.opts.periodMs <= 0) return;
    // A chain belongs to one generation: a reload that changes the period starts a new one.
    const next = () => {
      if (this.stopped || gen !== this.generation) return;
      this.timer = setTimeout(() => void this.check().finally(next), this.opts.periodMs);
      this.timer.unref();
    };
    void this.check().finally(next);
  }

  /** A reload's settings, and room for nodes it added; a changed period takes effect now. */
  reconfigure(next: ReplicationOptions): void {
    while (this.info.length < this.nodes.length) this.info.push(emptyInfo());
    const restart = next.periodMs !== this.opts.periodMs;
    this.opts = next;
    if (!restart || this.stopped) return;
    clearTimeout(this.timer);
    this.start();
  }

  /** One round of measurements (also callable on demand, e.g. by a test or an admin command). */
  check(): Promise<void> {
    if (!this.running) this.running = this.measure().finally(() => (this.running = null));
    return this.running;
  }

  private async query(node: NodeInfo, sqls: string[]): Promise<(string | null)[][][] | null> {
    try {
      let conn = this.conns.get(node.id);
      if (!conn || conn.isClosed) {
        conn = await this.open(node);
        this.conns.set(node.id, conn);
      }
      const rs = await runQueries(conn, sqls, this.opts.timeoutMs);
      if (rs.some((r) => r.error)) return null;
      return rs.map((r) => r.rows);
    } catch (err) {
      this.conns.get(node.id)?.destroy();
      this.conns.delete(node.id);
      this.log.debug({ node: node.id, err: (err as Error).message }, 'replication check failed');
      return null;
    }
  }

  private async measure(): Promise<void> {
    const pid = this.primaryId();
    const primary = pid === null ? undefined : this.nodes[pid];
    if (!primary) return;
    const p = await this.query(primary, ['SELECT pg_catalog.pg_current_wal_lsn()', STAT_SQL]);
    if (!p) return;
    const primaryLsn = lsnToNumber(p[0]![0]?.[0]);
    if (this.measuredPrimary !== undefined && this.measuredPrimary !== primary.id) this.commits.restart(primaryLsn);
    this.measuredPrimary = primary.id;
    const stats = new Map(p[1]!.map((r) => [r[0]!, r]));
    // Routing sees each node's new figures as soon as they are known, not once the slowest node
    // answered: a standby back under delay_threshold gets reads from the moment Sluice knows it.
    await Promise.all(
      this.nodes.map(async (n) => {
        if (n.id === pid) {
          if (this.set(n.id, { delayBytes: 0, delayMs: null, state: '', syncState: '', replayLsn: primaryLsn, delayed: false })) this.measured(true);
          return;
        }
        const stat = stats.get(n.applicationName);
        if (!isLive(n)) {
          // Not queried; what the primary says of it still counts (a down node streaming again).
          this.info[n.id] = { ...this.info[n.id]!, state: stat?.[1] ?? '', syncState: stat?.[2] ?? '' };
          return;
        }
        const r = await this.query(n, ['SELECT pg_catalog.pg_last_wal_replay_lsn()']);
        if (!r) return;
        const replayLsn = lsnToNumber(r[0]![0]?.[0]);
        const delayMs = stat?.[3] != null ? Number(stat[3]) : null;
        const delayBytes = Math.max(0, primaryLsn - replayLsn);
        const delayed =
          this.opts.thresholdMs > 0 ? (delayMs ?? 0) > this.opts.thresholdMs : this.opts.thresholdBytes > 0 && delayBytes > this.opts.thresholdBytes;
        if (this.set(n.id, { delayBytes, delayMs, state: stat?.[1] ?? '', syncState: stat?.[2] ?? '', replayLsn, delayed })) this.measured(true);
      }),
    );
    this.measured(false);
  }

  /** Records a node's figures; true when what routing uses (delayed, delay) changed. */
  private set(id: number, next: ReplicationInfo): boolean {
    const prev = this.info[id]!;
    this.info[id] = next;
    if (prev.delayed !== next.delayed) {
      this.log.info({ node: id, delayBytes: next.delayBytes, delayMs: next.delayMs, delayed: next.delayed }, next.delayed ? 'standby delay over threshold: no reads for it' : 'standby delay back under threshold');
    }
    return prev.delayed !== next.delayed || prev.delayBytes !== next.delayBytes;
  }

  /** A standby's replay position learned elsewhere (a read-your-writes check). */
  noteReplay(id: number, lsn: number): void {
    const i = this.info[id];
    if (i && lsn > i.replayLsn) i.replayLsn = lsn;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    for (const c of this.conns.values()) c.terminate();
    this.conns.clear();
  }
}
