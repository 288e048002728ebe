import { BackendStartupError } from '../backend/connect';
import type { BackendConnection } from '../backend/connection';
import { runQueries } from '../backend/query';
import type { Config } from '../config/load';
import type { Logger } from '../log/logger';
import { SqlState } from '../protocol/sqlstate';
import type { NodeView } from '../router/balancer';
import { NodeQuery } from './discover';
import { Failover } from './failover';
import { HealthCheck, healthSettings, HealthSettings } from './health';
import { connectTimeoutMs, failoverOptions, recoveryOptions, replicationOptions } from './options';
import { OnlineRecovery } from './recovery';
import { ReplicationMonitor } from './replication';
import { StatusFile } from './status-file';
import { isLive, NodeInfo, NodeStatus, Topology } from './topology';
import { Clock, systemClock } from '../util/clock';

/** Opens a connection to a node as a user (Sluice's own: checks, discovery). */
export type OpenAs = (node: NodeInfo, user: string, database: string, password: string | undefined, timeoutMs: number) => Promise<BackendConnection>;

/** What the cluster tells the rest of Sluice (wired in server.ts). */
export interface ClusterEvents {
  /** A node left service: sessions and the pool let go of it. */
  nodeDown(id: number): void;
  /** A primary is known (at start-up, or after a failover). */
  primaryFound(id: number): void;
  /** Failover, failback, a primary found, a recovery ended: for metrics and the status page. */
  event(kind: 'failover' | 'failback' | 'primary' | 'follow' | 'recovery', node: number, message: string, ok?: boolean): void;
  /** A health check ran (its duration, retries included). */
  healthMeasured(node: number, ms: number): void;
}

/**
 * Several instances (use_watchdog): failed checks quarantine a node here, and only the instance
 * that leads the group acts (failover by the group's consensus, the primary search, failback).
 */
export interface ClusterCoordination {
  leads(): boolean;
  /**
   * Cut off from the group and allowed to act on its own (failover_when_quorum_exists = false,
   * etcd unreachable): this instance then acts as a single one would.
   */
  alone(): boolean;
}

/** pgpool's auto_failback_interval default: a node is not re-attached more often than this. */
const AUTO_FAILBACK_INTERVAL_MS = 60_000;

/**
 * The nodes and everything that watches them: statuses (saved in work_dir/sluice_status), the
 * health checks, the replication check, failover, and the routing views built from them.
 */
export class ClusterManager {
  readonly topology: Topology;
  readonly replication: ReplicationMonitor;
  readonly failover: Failover;
  readonly health: HealthCheck[];
  readonly recovery: OnlineRecovery;
  private readonly statusFile: StatusFile;
  private views: NodeView[] = [];
  /** The primary when the views were last built (a change starts a replication check). */
  private viewedPrimary: number | null = null;
  private readonly waiters = new Set<() => void>();
  private readonly lastAutoFailback = new Map<number, number>();
  private readonly reportedStale = new Set<number>();
  /** While paused for maintenance: nodes whose health check failed, checked again on resume. */
  private held: Set<number> | null = null;
  private started = false;
  private coordination: ClusterCoordination | null = null;

  constructor(
    private config: Config,
    private readonly open: OpenAs,
    private readonly events: ClusterEvents,
    private readonly log: Logger,
    private readonly clock: Clock = systemClock,
  ) {
    this.statusFile = new StatusFile(config.work_dir);
    this.topology = new Topology(config.backend, this.statusFile, () => this.refreshViews(), clock);
    this.replication = new ReplicationMonitor(
      this.topology.nodes,
      () => this.topology.primaryId,
      (node) => {
        const c = this.config;
        return this.open(node, c.sr_check_user, c.sr_check_database || 'postgres', c.sr_check_password || undefined, connectTimeoutMs(c));
      },
      replicationOptions(config),
      (changed) => this.measured(changed),
      log.child({ component: 'sr_check' }),
    );
    this.failover = new Failover(
      this.topology,
      failoverOptions(config),
      {
        query: this.query,
        nodeDown: (id) => events.nodeDown(id),
        primaryFound: (id) => this.primaryFound(id),
        recheck: (id) => void this.health[id]?.checkNow(),
        event: (kind, node, message, ok) => events.event(kind, node, message, ok),
        mayAct: () => this.mayAct,
      },
      log.child({ component: 'failover' }),
      clock,
    );
    this.recovery = new OnlineRecovery(
      this.topology,
      recoveryOptions(config),
      {
        onPrimary: (sqls, timeoutMs) => {
          const p = this.primary;
          if (!p) return Promise.reject(new Error('no primary node is known'));
          const c = this.config;
          return this.queryAs(p, sqls, c.recovery_user, c.recovery_database, c.recovery_password, timeoutMs);
        },
        isStandby: async (node) => {
          const c = this.config;
          const [rows] = await this.queryAs(node, ['SELECT pg_catalog.pg_is_in_recovery()'], c.recovery_user, 'postgres', c.recovery_password, connectTimeoutMs(c));
          return rows?.[0]?.[0] === 't';
        },
        failback: (id) => this.failover.failback(id, 'online recovery'),
        event: (kind, node, message, ok) => events.event(kind, node, message, ok),
      },
      log.child({ component: 'recovery' }),
      clock,
    );
    this.health = this.topology.nodes.map((n) => this.healthCheck(n));
  }

  private healthCheck(n: NodeInfo): HealthCheck {
    return new HealthCheck(
      n.id,
      healthSettings(this.config, this.config.backend[n.id]!),
      {
        probe: (st) => this.probe(n, st),
        skipped: () => n.status === 'down' || n.following,
        failed: (reason) => this.healthFailed(n, reason),
        succeeded: () => this.healthy(n),
        measured: (ms) => this.events.healthMeasured(n.id, ms),
      },
      this.log.child({ component: 'health_check' }),
      this.clock,
    );
  }

  /**
   * A reload (already validated and diffed: only hot keys changed). Every component takes its
   * new settings; nodes added at the end join detached, with their health check running.
   */
  reconfigure(next: Config): void {
    this.config = next;
    const added = this.topology.reconfigure(next.backend);
    this.replication.reconfigure(replicationOptions(next));
    this.failover.opts = failoverOptions(next);
    this.recovery.opts = recoveryOptions(next);
    for (const id of added) {
      const h = this.healthCheck(this.topology.nodes[id]!);
      this.health.push(h);
      if (this.started) h.start();
    }
    this.health.forEach((h, id) => h.reconfigure(healthSettings(next, next.backend[id]!)));
    this.refreshViews();
  }

  /** Joins a group of instances (or leaves it: null). */
  coordinate(c: ClusterCoordination | null): void {
    this.coordination = c;
    this.topology.countsEpochs = () => this.mayAct;
  }

  /** Alone, or the group's leader: this instance runs hooks and searches. */
  private get mayAct(): boolean {
    return this.coordination === null || this.coordination.leads() || this.coordination.alone();
  }

  /** Nodes this instance's checks find down while the group has not failed them over. */
  quarantined(): number[] {
    return this.topology.nodes.filter((n) => n.quarantined && n.status !== 'down').map((n) => n.id);
  }

  /**
   * The group's view, from the leader: statuses and primary taken as they are (no hook runs
   * here); a node newly down is let go of, a new primary wakes who waits for one.
   */
  applyGroupView(statuses: readonly NodeStatus[], primary: number | null, epoch: number): void {
    const before = this.topology.nodes.map((n) => n.status);
    const oldPrimary = this.topology.primaryId;
    this.topology.applyView(statuses, primary, epoch);
    this.log.info({ epoch, primary, statuses }, 'the group\'s view of the nodes applied');
    this.topology.nodes.forEach((n, id) => {
      if (n.status === 'down' && before[id] !== 'down') this.events.nodeDown(id);
      if (n.status === 'waiting' && before[id] === 'down') void this.health[id]?.checkNow();
    });
    if (primary !== null && primary !== oldPrimary) this.primaryFound(primary);
  }

  /** Restores (or discards) saved statuses, finds the primary, starts the checks. */
  async start(discardStatus: boolean): Promise<void> {
    if (discardStatus) this.statusFile.discard();
    const saved = discardStatus ? null : this.statusFile.read(this.topology.nodes.length);
    if (saved) {
      this.topology.restore(saved);
      const down = this.topology.nodes.filter((n) => n.status === 'down').map((n) => n.id);
      if (down.length > 0) this.log.info({ down, file: this.statusFile.path }, 'node statuses restored: nodes saved down stay detached');
    }
    const id = await this.failover.findOnce();
    if (id === null) {
      // Sessions wait for one (failover_hold_timeout) while the search goes on.
      this.log.warn('no primary found at start-up; still looking');
      void this.failover.search();
    }
    // Every node that answered is up; the others wait for a health check.
    for (const n of this.topology.nodes) if (n.status === 'waiting' && n.role !== 'unknown') this.topology.setStatus(n.id, 'up');
    this.refreshViews();
    this.log.info({ primary: id, nodes: this.topology.nodes.map((n) => ({ id: n.id, status: n.status, role: n.role })) }, 'cluster state');
    // One replication check now even when sr_check_period is 0: it reports stale down statuses.
    await this.replication.check();
    this.replication.start();
    for (const h of this.health) h.start();
    this.started = true;
  }

  stop(): void {
    this.replication.stop();
    for (const h of this.health) h.stop();
    for (const w of this.waiters) w();
    this.waiters.clear();
  }

  get primary(): NodeInfo | null {
    const id = this.topology.primaryId;
    return id === null ? null : this.topology.nodes[id]!;
  }

  /**
   * The primary once one is known (other than `not`, a node just found dead): at once, or when a
   * failover finds it; null after timeoutMs.
   */
  waitForPrimary(timeoutMs: number, not?: number): Promise<NodeInfo | null> {
    const usable = () => (this.primary && this.primary.id !== not ? this.primary : null);
    if (usable() || timeoutMs <= 0) return Promise.resolve(usable());
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve(usable());
      };
      const timer = setTimeout(done, timeoutMs);
      this.waiters.add(done);
    });
  }

  /** The nodes as routing sees them (rebuilt on change, read on every balanced statement). */
  nodeViews(): readonly NodeView[] {
    return this.views;
  }

  private refreshViews(): void {
    const useTime = this.config.delay_threshold_by_time > 0;
    const pid = this.topology.primaryId;
    // A new primary: measure now, which also restarts read_your_writes' positions on its timeline.
    if (this.started && pid !== null && pid !== this.viewedPrimary) void this.replication.check();
    this.viewedPrimary = pid;
    this.views = this.topology.nodes.map((n) => {
      const r = this.replication.info[n.id]!;
      const primary = n.id === pid;
      const delay = primary ? 0 : useTime ? (r.delayMs ?? 0) : r.delayBytes;
      return { id: n.id, weight: n.weight, up: isLive(n), primary, delayed: !primary && r.delayed, delay };
    });
  }

  /**
   * A session's connection to a node broke (failover_on_backend_error), or the node said it is
   * shutting down (failover_on_backend_shutdown). pgpool fails the node over at once; Sluice
   * checks it first (with the health check's retries), so one killed backend or a network blip
   * does not detach a healthy node. True when the node is down (failed over, or being).
   */
  async confirmDown(id: number, shutdown: boolean): Promise<boolean> {
    const n = this.topology.nodes[id];
    if (!n) return false;
    if (n.status === 'down') return true;
    const enabled = this.config.failover_on_backend_error || (shutdown && this.config.failover_on_backend_shutdown);
    if (!enabled || n.following) return false;
    return !(await this.health[id]!.checkNow());
  }

  /**
   * sluicectl pause: an operator is restarting a node. Its failed health checks detach nothing
   * meanwhile; on resume each such node is checked again and failed over only if still down.
   */
  holdFailovers(on: boolean): void {
    if (on) {
      this.held ??= new Set();
      return;
    }
    const held = this.held;
    this.held = null;
    for (const id of held ?? []) void this.health[id]?.checkNow();
  }

  private healthFailed(n: NodeInfo, reason: string): void {
    if (this.held) {
      this.held.add(n.id);
      this.log.warn({ node: n.id, reason }, 'health check failed while paused: checked again on resume');
      return;
    }
    if (this.coordination && !this.coordination.alone()) {
      // pgpool's quarantine: not used from here, and failed over only if the group agrees.
      if (!n.quarantined) {
        this.log.warn({ node: n.id, reason }, 'health check failed: node quarantined here; the group decides on a failover');
        this.topology.setQuarantined(n.id, true);
        this.events.nodeDown(n.id);
      }
      return;
    }
    void this.failover.degenerate(n.id, `health check failed: ${reason}`);
  }

  private primaryFound(id: number): void {
    this.events.primaryFound(id);
    for (const w of [...this.waiters]) w();
  }

  private healthy(n: NodeInfo): void {
    if (n.quarantined) {
      this.log.info({ node: n.id }, 'node answers again: out of quarantine');
      this.topology.setQuarantined(n.id, false);
    }
    if (n.status === 'waiting') this.topology.setStatus(n.id, 'up');
    if (this.topology.primaryId === null && !this.failover.inProgress && this.mayAct) void this.failover.search();
  }

  /** After each replication check: a down standby streaming from the primary is stale. */
  private measured(changed: boolean): void {
    if (changed) this.refreshViews();
    for (const n of this.topology.nodes) {
      if (n.status !== 'down' || n.recovery || this.replication.info[n.id]!.state !== 'streaming') continue;
      if (!this.mayAct) continue;
      if (!this.config.auto_failback) {
        if (!this.reportedStale.has(n.id)) this.log.warn({ node: n.id }, 'node is marked down but streams from the primary; attach it (sluicectl attach-node) or set auto_failback');
        this.reportedStale.add(n.id);
        continue;
      }
      const last = this.lastAutoFailback.get(n.id) ?? -Infinity;
      if (this.clock.now() - last < AUTO_FAILBACK_INTERVAL_MS) continue;
      this.lastAutoFailback.set(n.id, this.clock.now());
      void this.failover.failback(n.id, 'auto_failback: streaming from the primary');
    }
  }

  /**
   * A node that refuses for too many connections is up and serving: failing it over (as pgpool
   * does, a common complaint) would turn a busy primary into an outage, or two primaries.
   */
  private async probe(n: NodeInfo, s: HealthSettings): Promise<void> {
    try {
      const conn = await this.open(n, s.user, s.database, s.password || undefined, s.timeoutMs);
      conn.terminate();
    } catch (err) {
      if (!(err instanceof BackendStartupError && err.code === SqlState.TooManyConnections)) throw err;
      this.log.warn({ node: n.id }, 'health check: node refused for too many connections; it is up');
    }
  }

  /** One-off queries as sr_check_user (pgpool finds the primary with that user). */
  readonly query: NodeQuery = (node, sqls) => {
    const c = this.config;
    return this.queryAs(node, sqls, c.sr_check_user, c.sr_check_database || 'postgres', c.sr_check_password, connectTimeoutMs(c));
  };

  /** Queries on a connection of their own as a user; throws on the first error. */
  private async queryAs(node: NodeInfo, sqls: string[], user: string, database: string, password: string, timeoutMs: number): Promise<(string | null)[][][]> {
    const conn = await this.open(node, user, database, password || undefined, connectTimeoutMs(this.config));
    try {
      const rs = await runQueries(conn, sqls, timeoutMs);
      const bad = rs.find((r) => r.error);
      if (bad) throw new Error(bad.error!.message);
      return rs.map((r) => r.rows);
    } finally {
      conn.terminate();
    }
  }
}
