import { collectDefaultMetrics, Counter, Gauge, Histogram, Metric, Registry } from 'prom-client';
import { FastHistogram } from './fast-histogram';

/** One node as the metrics see it at scrape time. */
export interface NodeSample {
  id: number;
  status: 'up' | 'waiting' | 'down' | 'unused';
  primary: boolean;
  delayBytes: number;
  /** null when unknown (no replay_lag yet). */
  delaySeconds: number | null;
  healthCheckFailures: number;
  /** Statements per class (select, insert, update, delete, ddl, other). */
  statements: Readonly<Record<string, number>>;
}

/** Backend connections of one node. */
export interface PoolSample {
  node: number;
  idle: number;
  inUse: number;
  opening: number;
  opened: number;
  /** Checkouts waiting for a connection (transaction mode's default_pool_size). */
  waiting: number;
}

/** What scrape-time gauges and counters read (server.ts wires it to the live components). */
export interface MetricsSource {
  nodes(): readonly NodeSample[];
  sessions(): { active: number; idle: number; waiting: number; pinned: number };
  pools(): readonly PoolSample[];
  /** Errors the nodes sent to clients, by SQLSTATE class (the code's first two characters). */
  errorClasses(): ReadonlyMap<string, number>;
  /** The instances through etcd (use_watchdog), else null. */
  watchdog(): WatchdogSample | null;
}

/** What the watchdog gauges read: this instance (its member name) and the group as it sees it. */
export interface WatchdogSample {
  name: string;
  members: number;
  isLeader: boolean;
  hasLeader: boolean;
  etcdReachable: boolean;
}

const NODE_STATUSES = ['up', 'waiting', 'down', 'unused'] as const;
/** Seconds: from a local pooled round trip (sub-millisecond) to a statement that waits a minute. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const HEALTH_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20];

/**
 * Every metric Sluice exports, declared once (DESIGN.md rule 8): `sluice_` prefix, base units,
 * labels bounded by the config (node, class, state, result), never a client address, SQL text or
 * session id. Gauges and the counters kept elsewhere are read at scrape time, so the data path
 * only pays for the two latency histograms.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly healthCheckDuration: Histogram<'node'>;
  readonly clientWait: FastHistogram;
  readonly statementDuration: FastHistogram;
  readonly failovers: Counter;
  readonly failbacks: Counter;
  readonly recoveries: Counter<'result'>;
  readonly reloads: Counter<'result'>;
  readonly heldTooLong: Counter<'reason'>;
  readonly sessionPins: Counter<'reason'>;

  constructor(source: MetricsSource) {
    const registers = [this.registry];
    const node = (id: number) => String(id);
    collectDefaultMetrics({ register: this.registry, prefix: 'sluice_' });

    new Gauge({
      name: 'sluice_node_up',
      help: 'Whether the node is attached and serving (pgpool status up or waiting): 1 or 0.',
      labelNames: ['node'],
      registers,
      collect() {
        this.reset();
        for (const n of source.nodes()) this.set({ node: node(n.id) }, n.status === 'up' || n.status === 'waiting' ? 1 : 0);
      },
    });
    new Gauge({
      name: 'sluice_node_status',
      help: "The node's pgpool status: 1 for the current one.",
      labelNames: ['node', 'status'],
      registers,
      collect() {
        this.reset();
        for (const n of source.nodes()) for (const s of NODE_STATUSES) this.set({ node: node(n.id), status: s }, n.status === s ? 1 : 0);
      },
    });
    new Gauge({
      name: 'sluice_node_primary',
      help: 'Whether Sluice routes writes to the node (its primary): 1 or 0.',
      labelNames: ['node'],
      registers,
      collect() {
        this.reset();
        for (const n of source.nodes()) this.set({ node: node(n.id) }, n.primary ? 1 : 0);
      },
    });
    new Gauge({
      name: 'sluice_node_replication_delay_bytes',
      help: "WAL bytes the standby's replay is behind the primary (0 for the primary).",
      labelNames: ['node'],
      registers,
      collect() {
        this.reset();
        for (const n of source.nodes()) this.set({ node: node(n.id) }, n.delayBytes);
      },
    });
    new Gauge({
      name: 'sluice_node_replication_delay_seconds',
      help: "The standby's replay_lag from pg_stat_replication (absent while unknown).",
      labelNames: ['node'],
      registers,
      collect() {
        this.reset();
        for (const n of source.nodes()) if (n.delaySeconds !== null) this.set({ node: node(n.id) }, n.delaySeconds);
      },
    });
    new Counter({
      name: 'sluice_health_check_failures_total',
      help: 'Health checks of the node that failed after all their retries.',
      labelNames: ['node'],
      registers,
      collect() {
        this.reset();
        for (const n of source.nodes()) this.inc({ node: node(n.id) }, n.healthCheckFailures);
      },
    });
    new Counter({
      name: 'sluice_statements_total',
      help: 'Statements sent to each node, by class (select counts where reads were routed; the rest from the nodes\' command tags).',
      labelNames: ['node', 'class'],
      registers,
      collect() {
        this.reset();
        for (const n of source.nodes()) for (const [c, v] of Object.entries(n.statements)) this.inc({ node: node(n.id), class: c }, v);
      },
    });
    new Gauge({
      name: 'sluice_sessions',
      help: 'Client sessions: active (a statement or a transaction open), idle, waiting (for a free slot).',
      labelNames: ['state'],
      registers,
      collect() {
        this.reset();
        const s = source.sessions();
        this.set({ state: 'active' }, s.active);
        this.set({ state: 'idle' }, s.idle);
        this.set({ state: 'waiting' }, s.waiting);
      },
    });
    new Gauge({
      name: 'sluice_sessions_pinned',
      help: 'Transaction mode: sessions kept on their server connection (a temporary table, a session advisory lock, LISTEN, ...; sluice_session_pins_total says why).',
      registers,
      collect() {
        this.set(source.sessions().pinned);
      },
    });
    new Gauge({
      name: 'sluice_pool_connections',
      help: 'Backend connections per node: idle in the pool, in use by a session, opening.',
      labelNames: ['node', 'state'],
      registers,
      collect() {
        this.reset();
        for (const p of source.pools()) {
          this.set({ node: node(p.node), state: 'idle' }, p.idle);
          this.set({ node: node(p.node), state: 'in_use' }, p.inUse);
          this.set({ node: node(p.node), state: 'opening' }, p.opening);
        }
      },
    });
    new Gauge({
      name: 'sluice_pool_waiting_clients',
      help: 'Transaction mode: clients waiting for a server connection to the node (its (database, user) pool is at default_pool_size).',
      labelNames: ['node'],
      registers,
      collect() {
        this.reset();
        for (const p of source.pools()) this.set({ node: node(p.node) }, p.waiting);
      },
    });
    new Counter({
      name: 'sluice_backend_connections_opened_total',
      help: 'Backend connections opened per node (a session reusing a pooled one opens none).',
      labelNames: ['node'],
      registers,
      collect() {
        this.reset();
        for (const p of source.pools()) this.inc({ node: node(p.node) }, p.opened);
      },
    });
    // use_watchdog: labelled by the instance's member name, so that a Sluice without it shows none.
    const watchdogGauges: [string, string, (w: WatchdogSample) => number][] = [
      ['members', 'the live Sluice instances in this group, as this one last read them from etcd.', (w) => w.members],
      ['leader', '1 while this instance is the leader (the one that acts for all), else 0.', (w) => (w.isLeader ? 1 : 0)],
      ['has_leader', '1 while some instance holds the leader key, else 0.', (w) => (w.hasLeader ? 1 : 0)],
      ['etcd_reachable', '1 while etcd answers; 0: degraded, serving with the last view and acting for no one.', (w) => (w.etcdReachable ? 1 : 0)],
    ];
    for (const [name, help, value] of watchdogGauges) {
      new Gauge({
        name: `sluice_watchdog_${name}`,
        help: `use_watchdog: ${help}`,
        labelNames: ['member'],
        registers,
        collect() {
          this.reset();
          const w = source.watchdog();
          if (w) this.set({ member: w.name }, value(w));
        },
      });
    }
    new Counter({
      name: 'sluice_errors_total',
      help: 'ErrorResponses the nodes sent to clients, by SQLSTATE class.',
      labelNames: ['class'],
      registers,
      collect() {
        this.reset();
        for (const [c, v] of source.errorClasses()) this.inc({ class: c }, v);
      },
    });
    this.healthCheckDuration = new Histogram({
      name: 'sluice_health_check_duration_seconds',
      help: 'Duration of each health check attempt that ran (connect, startup, authentication).',
      labelNames: ['node'],
      buckets: HEALTH_BUCKETS,
      registers,
    });
    this.clientWait = new FastHistogram('sluice_client_wait_seconds', 'Time a session waited for a backend connection (pooled or newly opened).', LATENCY_BUCKETS, null);
    this.statementDuration = new FastHistogram(
      'sluice_statement_duration_seconds',
      'Time from a client exchange being sent to the node until its ReadyForQuery, by node.',
      LATENCY_BUCKETS,
      'node',
    );
    // The registry only calls get(), which FastHistogram provides in prom-client's shape.
    for (const h of [this.clientWait, this.statementDuration]) this.registry.registerMetric(h as unknown as Metric);
    this.failovers = new Counter({ name: 'sluice_failovers_total', help: 'Nodes detached by a failover (or a switchover).', registers });
    this.failbacks = new Counter({ name: 'sluice_failbacks_total', help: 'Nodes attached again (attach-node, auto_failback, recovery).', registers });
    this.recoveries = new Counter({
      name: 'sluice_recoveries_total',
      help: 'Online recoveries, by result (done or failed).',
      labelNames: ['result'],
      registers,
    });
    this.reloads = new Counter({
      name: 'sluice_config_reloads_total',
      help: 'Config reloads, by result (applied or refused).',
      labelNames: ['result'],
      registers,
    });
    this.heldTooLong = new Counter({
      name: 'sluice_client_messages_held_too_long_total',
      help: 'Client messages that Sluice held for a reason of its own for more than 5 s with no node owing a reply (each logged once with what it waited for), by reason.',
      labelNames: ['reason'],
      registers,
    });
    this.sessionPins = new Counter({
      name: 'sluice_session_pins_total',
      help: 'Transaction mode: sessions that kept their server connection for good, by what made them (a temporary table, LISTEN, an advisory lock, ...).',
      labelNames: ['reason'],
      registers,
    });
    // Series that exist from the start, so rate() sees the first increment.
    for (const r of ['done', 'failed']) this.recoveries.inc({ result: r }, 0);
    for (const r of ['applied', 'refused']) this.reloads.inc({ result: r }, 0);
  }

  /** The exposition text and its content type. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
