import { averageDuration, averageRetries } from '../cluster/health';
import type { NodeInfo } from '../cluster/topology';
import type { SessionInfo } from '../session/registry';
import { fixed6, timestamp } from './format';
import type { AdminHost } from './host';

/** pgpool's status numbers: 0 unused, 1 waiting (connect-wait), 2 up, 3 down. */
export const STATUS_CODE = { unused: 0, waiting: 1, up: 2, down: 3 } as const;

/** One node as pcp_node_info and SHOW POOL_NODES show it. */
export interface NodeRow {
  id: number;
  host: string;
  port: number;
  status: NodeInfo['status'];
  /** Several instances: this one's checks find it down, the group has not failed it over. */
  quarantined: boolean;
  /** PostgreSQL itself, looked at now: up / down / unknown (health check off). */
  pgStatus: 'up' | 'down' | 'unknown';
  /** The weight normalised over every configured node (pgpool's lb_weight). */
  weight: number;
  /** Sluice's view. */
  role: 'primary' | 'standby';
  /** The node's own answer to pg_is_in_recovery(), or unknown. */
  pgRole: 'primary' | 'standby' | 'unknown';
  selectCount: number;
  delayBytes: number;
  replicationState: string;
  replicationSyncState: string;
  lastStatusChange: Date;
}

const IN_RECOVERY = 'SELECT pg_catalog.pg_is_in_recovery()';

/** What PostgreSQL says of itself: reachable, and in recovery or not. */
async function lookAt(h: AdminHost, n: NodeInfo): Promise<{ pgStatus: NodeRow['pgStatus']; pgRole: NodeRow['pgRole'] }> {
  const healthOff = h.cluster.health[n.id]!.settings.periodMs <= 0;
  try {
    const [rows] = await h.cluster.query(n, [IN_RECOVERY]);
    const inRecovery = rows?.[0]?.[0];
    const pgRole = h.config.sr_check_period <= 0 ? 'unknown' : inRecovery === 't' ? 'standby' : inRecovery === 'f' ? 'primary' : 'unknown';
    return { pgStatus: healthOff ? 'unknown' : 'up', pgRole };
  } catch {
    return { pgStatus: healthOff ? 'unknown' : 'down', pgRole: 'unknown' };
  }
}

export async function nodeRows(h: AdminHost, ids?: readonly number[]): Promise<NodeRow[]> {
  const nodes = h.cluster.topology.nodes.filter((n) => !ids || ids.includes(n.id));
  const total = h.cluster.topology.nodes.reduce((sum, n) => sum + n.weight, 0);
  const primary = h.cluster.topology.primaryId;
  const looks = await Promise.all(nodes.map((n) => lookAt(h, n)));
  return nodes.map((n, i) => {
    const r = h.cluster.replication.info[n.id]!;
    const isPrimary = n.id === primary;
    return {
      id: n.id,
      host: n.host,
      port: n.port,
      status: n.status,
      quarantined: n.quarantined,
      ...looks[i]!,
      weight: total > 0 ? n.weight / total : 0,
      role: isPrimary ? 'primary' : 'standby',
      selectCount: h.selectCount[n.id] ?? 0,
      delayBytes: isPrimary ? 0 : r.delayBytes,
      // A node online recovery is bringing back has no replication yet: its step shows there
      // (one word, so pcp_node_info's space-separated line stays parseable).
      replicationState: n.recovery ? `recovery-${n.recovery.replace(' ', '-')}` : isPrimary ? '' : r.state,
      replicationSyncState: isPrimary ? '' : r.syncState,
      lastStatusChange: n.lastStatusChange,
    };
  });
}

/** pcp_health_check_stats / SHOW POOL_HEALTH_CHECK_STATS: 20 values, pgpool's order. */
export function healthRow(h: AdminHost, id: number): string[] {
  const n = h.cluster.topology.nodes[id]!;
  const s = h.cluster.health[id]!.stats;
  const ran = s.total - s.skip;
  return [
    String(id),
    n.host,
    String(n.port),
    n.status,
    id === h.cluster.topology.primaryId ? 'primary' : 'standby',
    timestamp(n.lastStatusChange),
    String(s.total),
    String(s.success),
    String(s.fail),
    String(s.skip),
    String(s.retry),
    fixed6(averageRetries(s)),
    String(s.maxRetry),
    String(Math.round(s.maxDurationMs)),
    String(ran > 0 ? Math.round(s.minDurationMs) : 0),
    fixed6(averageDuration(s)),
    timestamp(s.lastCheck),
    timestamp(s.lastSuccess),
    timestamp(s.lastSkip),
    timestamp(s.lastFailure),
  ];
}

/**
 * pgpool's status of a session, and in transaction mode what keeps it on its server connection
 * ("Idle (pinned: LISTEN)"): pcp_proc_info's fields are fixed, so the status says it.
 */
export function processStatus(s: SessionInfo): string {
  return s.pinnedBy ? `${s.status} (pinned: ${s.pinnedBy})` : s.status;
}

/**
 * pcp_proc_info / SHOW POOL_POOLS: one row per session and configured node, pgpool 4.3's 17
 * values (pool_pid, process_start_time, client_connection_count, pool_id, backend_id, database,
 * username, backend_connection_time, client_connection_time, client_disconnection_time,
 * client_idle_duration, majorversion, minorversion, pool_counter, pool_backendpid,
 * pool_connected, status). A session is one client, so its pool_id is 0 and its client count 1.
 */
export function poolRows(h: AdminHost, sessions: readonly SessionInfo[]): string[][] {
  const out: string[][] = [];
  for (const s of sessions) {
    for (const n of h.cluster.topology.nodes) {
      const b = s.backends.find((x) => x.node === n.id);
      out.push([
        String(s.id),
        timestamp(s.startedAt),
        '1',
        '0',
        String(n.id),
        s.database,
        s.user,
        timestamp(b?.connectedAt),
        timestamp(s.startedAt),
        '',
        String(s.idleSeconds),
        '3',
        '0',
        b ? '1' : '0',
        String(b?.processId ?? 0),
        b ? '1' : '0',
        processStatus(s),
      ]);
    }
  }
  return out;
}
