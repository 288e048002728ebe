// The status page's charts: a few minutes of what Sluice already counts, sampled in memory
// (statements per second and latency per node, replication lag per standby, sessions). No query
// to any node: a page left open costs the cluster nothing.
import type { HttpHost } from './host';

/** One sample: rates over the interval before it; null where a node had nothing to say. */
export interface HistorySample {
  /** Epoch milliseconds. */
  readonly t: number;
  /** Null while the node is down (a gap in its line, not a zero). */
  readonly statementsPerSecond: readonly (number | null)[];
  /** Mean time to ReadyForQuery of the exchanges in the interval, in ms (null: none ran). */
  readonly latencyMs: readonly (number | null)[];
  /** How far a standby's replay is behind the primary, in bytes (null: the primary, or down). */
  readonly lagBytes: readonly (number | null)[];
  readonly sessions: number;
}

/** What the history reads at each sample: cumulative counters, and the state at that moment. */
interface Reading {
  readonly t: number;
  readonly statements: readonly (number | null)[];
  readonly latency: readonly { sum: number; count: number }[];
  readonly lagBytes: readonly (number | null)[];
  readonly sessions: number;
}

export const HISTORY_INTERVAL_MS = 2000;
/** Ten minutes at one sample every two seconds. */
const KEEP = 300;

/** Statements a node ran so far, as the status page counts them (reads balanced there, and writes). */
export function statementsOf(h: HttpHost, node: number): number {
  const c = h.backendStats.nodes[node];
  return (h.selectCount[node] ?? 0) + (c ? c.insert + c.update + c.delete + c.ddl + c.other : 0);
}

function read(h: HttpHost, now: number): Reading {
  const { topology, replication } = h.cluster;
  return {
    t: now,
    statements: topology.nodes.map((n) => (n.status === 'down' ? null : statementsOf(h, n.id))),
    latency: topology.nodes.map((n) => h.metrics.statementDuration.totals(n.id)),
    // Bytes, as pgpool's delay_threshold: replay_lag (seconds) is NULL while nothing is written.
    lagBytes: topology.nodes.map((n) => (n.id === topology.primaryId || n.status === 'down' ? null : (replication.info[n.id]?.delayBytes ?? null))),
    // Every two seconds with the HTTP port open: a count, not the sessions' descriptions.
    sessions: h.sessionCount,
  };
}

/** The last ten minutes, sampled every two seconds while the HTTP port is open. */
export class StatusHistory {
  private readonly samples: HistorySample[] = [];
  private last: Reading | null = null;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly h: HttpHost,
    private readonly now: () => number = Date.now,
  ) {}

  start(): void {
    this.last = read(this.h, this.now());
    this.timer = setInterval(() => this.sample(), HISTORY_INTERVAL_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Takes a sample now (the timer's work; a test may call it). */
  sample(): void {
    const r = read(this.h, this.now());
    const prev = this.last;
    this.last = r;
    if (!prev || r.t <= prev.t) return;
    const seconds = (r.t - prev.t) / 1000;
    this.samples.push({
      t: r.t,
      // A node added by a reload has no earlier count: its first rate is from zero.
      statementsPerSecond: r.statements.map((n, i) => {
        const p = prev.statements[i];
        // A node added by a reload, or back from down, starts its line at the next sample.
        return n === null || p === null || p === undefined ? null : Math.max(0, n - p) / seconds;
      }),
      latencyMs: r.latency.map((l, i) => {
        const p = prev.latency[i] ?? { sum: 0, count: 0 };
        const count = l.count - p.count;
        return count > 0 ? ((l.sum - p.sum) / count) * 1000 : null;
      }),
      lagBytes: r.lagBytes,
      sessions: r.sessions,
    });
    if (this.samples.length > KEEP) this.samples.splice(0, this.samples.length - KEEP);
  }

  list(): readonly HistorySample[] {
    return this.samples;
  }
}
