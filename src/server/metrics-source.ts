import type { HttpHost } from '../http/host';
import type { MetricsSource } from '../metrics/metrics';

/** The metrics' scrape-time view of the live components. */
export function metricsSource(h: HttpHost): MetricsSource {
  return {
    nodes: () => {
      const { topology, replication, health } = h.cluster;
      return topology.nodes.map((n) => {
        const primary = n.id === topology.primaryId;
        const r = replication.info[n.id];
        const c = h.backendStats.nodes[n.id];
        return {
          id: n.id,
          status: n.status,
          primary,
          delayBytes: primary ? 0 : (r?.delayBytes ?? 0),
          delaySeconds: primary ? 0 : r?.delayMs == null ? null : r.delayMs / 1000,
          healthCheckFailures: health[n.id]?.stats.fail ?? 0,
          statements: {
            select: h.selectCount[n.id] ?? 0,
            insert: c?.insert ?? 0,
            update: c?.update ?? 0,
            delete: c?.delete ?? 0,
            ddl: c?.ddl ?? 0,
            other: c?.other ?? 0,
          },
        };
      });
    },
    sessions: () => {
      const out = { active: 0, idle: 0, waiting: 0, pinned: 0 };
      for (const s of h.sessions()) {
        if (s.pinnedBy !== null) out.pinned++;
        if (s.status === 'Idle') out.idle++;
        else if (s.status === 'Wait for connection') out.waiting++;
        else out.active++;
      }
      return out;
    },
    pools: () => h.poolCounts().map((p, node) => ({ node, ...p })),
    errorClasses: () => h.backendStats.errorClasses,
    watchdog: () => {
      const w = h.watchdog();
      return w && { name: w.self.name, members: w.members.length, isLeader: w.isLeader, hasLeader: w.leader !== null, etcdReachable: w.etcdReachable };
    },
  };
}
