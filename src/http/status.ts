import type { HttpHost } from './host';
import { HISTORY_INTERVAL_MS, type HistorySample, statementsOf } from './history';

/**
 * What the status page shows, from what Sluice already knows (no query to any node, so a page
 * left open costs the cluster nothing): nodes, sessions, pools, recent events.
 */
export function statusFacts(h: HttpHost, history: readonly HistorySample[] = []): Record<string, unknown> {
  const { topology, replication } = h.cluster;
  const total = topology.nodes.reduce((sum, n) => sum + n.weight, 0);
  const pools = h.poolCounts();
  const sessions = h.sessions();
  const byStatus: Record<string, number> = {};
  for (const s of sessions) byStatus[s.status] = (byStatus[s.status] ?? 0) + 1;
  // Sessions whose next message Sluice holds, and for what (the relay's wait, in words); the
  // first few only: the page is for a glance; the debug log has each wait as it begins.
  const held = sessions.filter((s) => s.waitingFor !== null);
  return {
    version: h.version,
    startedAt: h.startedAt.toISOString(),
    now: new Date().toISOString(),
    paused: h.gate.closed,
    nodes: topology.nodes.map((n) => {
      const r = replication.info[n.id];
      const primary = n.id === topology.primaryId;
      return {
        id: n.id,
        host: n.host,
        port: n.port,
        // A primary that left service is not a standby: the page says what it was.
        role: primary ? 'primary' : n.wasPrimary ? 'was primary' : 'standby',
        status: n.status,
        recovery: n.recovery,
        following: n.following,
        weight: total > 0 ? n.weight / total : 0,
        delayBytes: primary ? 0 : (r?.delayBytes ?? 0),
        delaySeconds: primary || r?.delayMs == null ? null : r.delayMs / 1000,
        delayed: !primary && (r?.delayed ?? false),
        replicationState: primary ? '' : (r?.state ?? ''),
        statements: statementsOf(h, n.id),
        lastStatusChange: n.lastStatusChange.toISOString(),
        pool: pools[n.id] ?? { idle: 0, inUse: 0, opening: 0 },
      };
    }),
    sessions: { total: sessions.length, byStatus, held: held.length, pinned: sessions.filter((s) => s.pinnedBy !== null).length, waiting: held.slice(0, 20).map((s) => ({ session: s.id, waitingFor: s.waitingFor })) },
    events: h.recentEvents().map((e) => ({ time: e.time.toISOString(), kind: e.kind, node: e.node, message: e.message })),
    history: { intervalMs: HISTORY_INTERVAL_MS, samples: history },
  };
}
