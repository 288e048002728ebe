import type { BackendConnection } from '../backend/connection';
import { runQueries } from '../backend/query';
import type { Logger } from '../log/logger';
import type { NodeInfo } from './topology';

/**
 * Finds the primary as pgpool does in streaming-replication mode: a node flagged ALWAYS_PRIMARY
 * is the primary without asking; otherwise the first node answering pg_is_in_recovery() = false.
 * Every node reached gets its role recorded. Returns the primary's id, or null.
 */
export async function discoverPrimary(
  nodes: NodeInfo[],
  open: (node: NodeInfo) => Promise<BackendConnection>,
  timeoutMs: number,
  log: Logger,
): Promise<number | null> {
  const fixed = nodes.find((n) => n.flags.includes('ALWAYS_PRIMARY'));
  if (fixed) {
    fixed.role = 'primary';
    return fixed.id;
  }
  const roles = await Promise.all(
    nodes.map(async (node) => {
      let conn: BackendConnection | undefined;
      try {
        conn = await open(node);
        const [r] = await runQueries(conn, ['SELECT pg_is_in_recovery()'], timeoutMs);
        return r?.rows[0]?.[0] === 'f' ? 'primary' : r?.rows[0]?.[0] === 't' ? 'standby' : 'unknown';
      } catch (err) {
        log.warn({ node: node.id, err: (err as Error).message }, 'node unreachable during primary discovery');
        return 'unknown';
      } finally {
        conn?.terminate();
      }
    }),
  );
  nodes.forEach((n, i) => (n.role = roles[i]!));
  return nodes.find((n) => n.role === 'primary')?.id ?? null;
}
