import type { Config } from '../config/load';

/**
 * Backend connections are pooled per (node, database, user) and, within that, per the other
 * startup parameters they start with. In session mode those are all the client's: a reused
 * connection started with exactly its application_name, options, DateStyle, ..., so RESET and
 * RESET ALL return to the client's own values. Transaction mode starts them with fewer
 * (splitStartup) and carries the rest.
 */
export function poolKey(nodeId: number, params: ReadonlyMap<string, string>): string {
  // Built with plain loops; a startup request keeps its keys (session/startup.ts poolKeyOf), and
  // clients that send the same startup packet share the request.
  const names: string[] = [];
  for (const k of params.keys()) if (k !== 'user' && k !== 'database') names.push(k);
  names.sort();
  let key = `${nodeId}\u0000${params.get('database') ?? ''}\u0000${params.get('user') ?? ''}`;
  for (const k of names) key += `\u0000${k}=${params.get(k)}`;
  return key;
}

/**
 * Startup parameters a server connection must have started with, for a session in transaction
 * mode to use it: the pool key's. `options` may hold anything (-c of a setting fixed at start);
 * the rest are settings that take effect only at connection start, or that pin a session anyway.
 */
const KEPT_AT_START = new Set([
  'user',
  'database',
  'options',
  'replication',
  'role',
  'session_authorization',
  'local_preload_libraries',
  'session_preload_libraries',
  'log_connections',
  'log_disconnections',
  'post_auth_delay',
  'ignore_system_indexes',
  'jit_debugging_support',
  'jit_profiling_support',
]);

/**
 * A client's startup parameters in transaction mode: those its server connections start with
 * (the pool key's), and the settings Sluice carries to whichever connection it borrows, as
 * set_config() calls (docs/pooling.md). Many clients that differ only in application_name,
 * TimeZone or DateStyle then share one pool.
 */
export function splitStartup(params: ReadonlyMap<string, string>): { backend: Map<string, string>; carried: Map<string, string> } {
  const backend = new Map<string, string>();
  const carried = new Map<string, string>();
  for (const [k, v] of params) (KEPT_AT_START.has(k.toLowerCase()) || k.startsWith('_pq_.') ? backend : carried).set(k, v);
  return { backend, carried };
}

/**
 * The pool mode of a client's (database, user): the first [[pool]] entry that matches (either
 * may be "all"), else the global pool_mode.
 */
export function poolModeOf(config: Pick<Config, 'pool' | 'pool_mode'>, database: string, user: string): Config['pool_mode'] {
  for (const p of config.pool) {
    if ((p.database === 'all' || p.database === database) && (p.user === 'all' || p.user === user)) return p.pool_mode;
  }
  return config.pool_mode;
}

/** Whether any client can be in transaction mode. */
export function lendsAnywhere(config: Pick<Config, 'pool' | 'pool_mode'>): boolean {
  return config.pool_mode === 'transaction' || config.pool.some((p) => p.pool_mode === 'transaction');
}
