import type { Logger } from '../log/logger';
import { isLive, NodeInfo } from './topology';

/** Runs queries on a node over a connection of its own; rows per query; throws when unreachable. */
export type NodeQuery = (node: NodeInfo, sqls: string[]) => Promise<(string | null)[][][]>;

/** host and port of a libpq conninfo string ('host=... port=...'). */
export function conninfoTarget(conninfo: string): { host: string; port: string } {
  const get = (k: string) => new RegExp(`(?:^|\\s)${k}\\s*=\\s*'?([^'\\s]*)`).exec(conninfo)?.[1] ?? '';
  return { host: get('host'), port: get('port') || '5432' };
}

/**
 * Finds the primary as pgpool does (pgpool.md a.6), in one pass over the live nodes: a node
 * flagged ALWAYS_PRIMARY is the primary without asking; else the node answering
 * pg_is_in_recovery() = false. When several do, the true one is the one every streaming
 * standby's pg_stat_wal_receiver points at (the others are false primaries: a promoted node
 * that nobody follows). Every node reached gets its role recorded. Null when there is none.
 */
export async function findPrimary(nodes: readonly NodeInfo[], query: NodeQuery, log: Logger): Promise<number | null> {
  const live = nodes.filter(isLive);
  const fixed = live.find((n) => n.flags.includes('ALWAYS_PRIMARY'));
  if (fixed) return fixed.id;
  const answers = await Promise.all(
    live.map(async (node) => {
      try {
        const [rows] = await query(node, ['SELECT pg_catalog.pg_is_in_recovery()']);
        const v = rows?.[0]?.[0];
        node.role = v === 'f' ? 'primary' : v === 't' ? 'standby' : 'unknown';
      } catch (err) {
        log.debug({ node: node.id, err: (err as Error).message }, 'node unreachable while looking for the primary');
        node.role = 'unknown';
      }
      return node;
    }),
  );
  const primaries = answers.filter((n) => n.role === 'primary');
  if (primaries.length <= 1) return primaries[0]?.id ?? null;
  return truePrimary(primaries, answers.filter((n) => n.role === 'standby'), query, log);
}

async function truePrimary(primaries: NodeInfo[], standbys: NodeInfo[], query: NodeQuery, log: Logger): Promise<number> {
  const followed = await Promise.all(
    standbys.map(async (s) => {
      try {
        const [rows] = await query(s, ['SELECT status, conninfo FROM pg_catalog.pg_stat_wal_receiver']);
        const r = rows?.[0];
        return r && r[0] === 'streaming' ? conninfoTarget(r[1] ?? '') : null;
      } catch {
        return null;
      }
    }),
  );
  const targets = followed.filter((t): t is { host: string; port: string } => t !== null);
  const truth = primaries.find((p) => targets.length > 0 && targets.every((t) => t.host === p.host && t.port === String(p.port)));
  const chosen = truth ?? primaries[0]!;
  for (const p of primaries) if (p !== chosen) p.role = 'unknown';
  log.warn({ primaries: primaries.map((p) => p.id), chosen: chosen.id, followedByAll: truth !== undefined }, 'more than one node claims to be primary; false primaries ignored');
  return chosen.id;
}
