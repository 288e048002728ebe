import { backendKeys, topLevel } from './schema';
import type { Spec } from './spec';

/** A pgpool parameter that did not become a Sluice key, and why. */
export interface Skipped {
  key: string;
  value: string;
  why: string;
}

export interface Imported {
  toml: string;
  skipped: Skipped[];
}

/** pgpool parameters with no Sluice key, by pattern, with the reason an operator is told. */
const NOT_CARRIED: [RegExp, string][] = [
  [/^(use_watchdog|trusted_servers|trusted_server_command|ping_path|delegate_ip|hostname\d+|pgpool_port\d+|wd_.*|heartbeat_.*|if_.*|arping_.*|failover_when_quorum_exists|failover_require_consensus|allow_multiple_failover_requests_from_node|enable_consensus_with_half_votes|clear_memqcache_on_escalation)$/,
    "pgpool's watchdog protocol: Sluice's instances coordinate through etcd instead (use_watchdog, etcd_endpoints: docs/watchdog.md)"],
  [/^(memory_cache_enabled|memqcache_.*|cache_(un)?safe_memqcache_table_list)$/, 'query cache: Sluice has none (it never serves one user\'s results to another)'],
  [/^(log_destination|log_line_prefix|syslog_.*|logging_collector|log_directory|log_filename|log_file_mode|log_truncate_on_rotation|log_rotation_.*|log_connections|log_disconnections|log_hostname|log_error_verbosity|client_min_messages|log_client_messages|log_standby_delay|log_backend_messages)$/,
    'logging: Sluice writes JSON lines (pino) to stdout for the service manager; levels via log_min_messages'],
  [/^(listen_backlog_multiplier|serialize_accept|child_life_time|child_max_connections|connection_cache|process_management_.*|min_spare_children|max_spare_children)$/,
    'pre-forked children: Sluice is one process with one shared pool (num_init_children bounds sessions)'],
  [/^(enable_pool_hba|pool_passwd|allow_clear_text_frontend_auth|ssl_.*|pool_hba_file|auth_.*)$/, 'client authentication and TLS beyond ssl, ssl_cert, ssl_key, ssl_ca_cert: use [[hba]] and [[user]]'],
  [/^(replicate_select|insert_lock|lobj_lock_table|replication_stop_on_mismatch|failover_if_affected_tuples_mismatch)$/, 'native replication mode: Sluice supports streaming replication only'],
  [/^(socket_dir|unix_socket_.*)$/, 'Unix socket for clients: Sluice listens on TCP (listen_addresses)'],
  [/^(pid_file_name)$/, 'pid file: Sluice runs in the foreground under a service manager'],
  [/^(ignore_leading_white_space)$/, 'always on in Sluice'],
  [/^(relcache_size|enable_shared_relcache|relcache_query_target)$/, 'Sluice caches only what routing needs (function volatility, temporary and unlogged tables) per database'],
  [/^(auto_failback_interval)$/, 'fixed at 60 seconds in Sluice'],
  [/^(connect_timeout\d+)$/, 'per-node connect_timeout: the top-level connect_timeout applies to every node'],
];

const TIME_UNITS: Record<string, number> = { ms: 0.001, s: 1, min: 60, h: 3600, d: 86400 };
/** Keys whose Sluice unit is milliseconds (pgpool's too); the rest of the durations are seconds. */
const MS_KEYS = new Set(['connect_timeout', 'delay_threshold_by_time']);
const LOG_LEVELS: Record<string, string> = { log: 'info', notice: 'info', info: 'info', warning: 'warning', error: 'error', fatal: 'error', panic: 'error' };
const TRUE = new Set(['on', 'true', 'yes', '1']);
const FALSE = new Set(['off', 'false', 'no', '0']);

/** pgpool.conf lines: `name = value`, value quoted with '' or bare, # comments; last one wins. */
export function parsePgpoolConf(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=?\s*('((?:[^']|'')*)'|[^#\s]*)/.exec(line);
    if (!m || line.trim().startsWith('#')) continue;
    out.set(m[1]!.toLowerCase(), m[3] !== undefined ? m[3].replace(/''/g, "'") : m[2]!);
  }
  return out;
}

/** One value for a key's spec; throws with the reason when it does not fit. */
function convert(key: string, spec: Spec<unknown>, raw: string): unknown {
  const v = raw.trim();
  switch (spec.kind) {
    case 'bool':
      if (TRUE.has(v.toLowerCase())) return true;
      if (FALSE.has(v.toLowerCase())) return false;
      throw new Error(`"${raw}" is not a boolean`);
    case 'int':
    case 'number': {
      const m = /^(-?\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(v);
      if (!m) throw new Error(`"${raw}" is not a number`);
      let n = Number(m[1]);
      if (m[2]) {
        const unit = TIME_UNITS[m[2].toLowerCase()];
        if (unit === undefined) throw new Error(`unit "${m[2]}" is not a time unit`);
        n = (n * unit) / (MS_KEYS.has(key) ? 0.001 : 1);
      }
      if (spec.kind === 'int') n = Math.round(n);
      if (n < spec.min! || n > spec.max!) throw new Error(`${n} is outside ${spec.min}..${spec.max}`);
      return n;
    }
    case 'enum': {
      let e = v.toLowerCase();
      if (key === 'log_min_messages') e = e.startsWith('debug') ? 'debug' : (LOG_LEVELS[e] ?? e);
      if (key === 'check_temp_table') e = e === 'on' ? 'catalog' : e === 'off' ? 'none' : e;
      if (!spec.values!.includes(e)) throw new Error(`"${raw}" is not one of ${spec.values!.join(', ')}`);
      return e;
    }
    case 'string':
      return raw;
    case 'strings':
      return v.split(',').map((x) => x.trim()).filter(Boolean);
  }
}

const tomlValue = (v: unknown) => (typeof v === 'string' ? JSON.stringify(v) : String(v));

function whyNot(key: string): string {
  return NOT_CARRIED.find(([re]) => re.test(key))?.[1] ?? 'no counterpart in Sluice';
}

/**
 * pgpool.conf (and pcp.conf) as Sluice TOML: top-level keys of the same name, the numbered
 * backend_*N and per-node health_check_*N keys as [[backend]] tables, logdir (where pgpool keeps
 * pgpool_status) as work_dir, pcp.conf users as [[pcp_user]]. Every other parameter is listed
 * with the reason, in the output's closing comments and in `skipped`.
 */
export function importPgpoolConf(conf: string, pcpConf = ''): Imported {
  const params = parsePgpoolConf(conf);
  const skipped: Skipped[] = [];
  const top: string[] = [];
  const nodes = new Map<number, Map<string, unknown>>();
  const put = (key: string, spec: Spec<unknown>, raw: string, set: (v: unknown) => void) => {
    try {
      set(convert(key, spec, raw));
    } catch (e) {
      skipped.push({ key, value: raw, why: `value not accepted: ${(e as Error).message}` });
    }
  };
  for (const [key, raw] of params) {
    const numbered = /^(?:backend_(hostname|port|weight|data_directory|flag|application_name)|(health_check_[a-z_]+))(\d+)$/.exec(key);
    const nodeKey = numbered ? (numbered[1] ?? numbered[2])! : '';
    if (numbered && nodeKey in backendKeys) {
      const id = Number(numbered[3]);
      if (!nodes.has(id)) nodes.set(id, new Map());
      put(key, backendKeys[nodeKey as keyof typeof backendKeys] as Spec<unknown>, raw, (v) => nodes.get(id)!.set(nodeKey, v));
    } else if (key === 'backend_clustering_mode') {
      if (raw !== 'streaming_replication') skipped.push({ key, value: raw, why: 'Sluice supports streaming_replication only' });
    } else if (key === 'logdir') {
      top.push(`work_dir = ${tomlValue(raw)}   # pgpool's logdir: where the node status file is kept`);
    } else if (key in topLevel) {
      put(key, (topLevel as Record<string, Spec<unknown>>)[key]!, raw, (v) => top.push(`${key} = ${tomlValue(v)}`));
    } else {
      skipped.push({ key, value: raw, why: whyNot(key) });
    }
  }
  const out = ['# Converted from pgpool.conf by `sluice import-pgpool-conf`.', '', ...top];
  const ids = [...nodes.keys()].sort((a, b) => a - b);
  // Node ids are positions: pgpool's numbering may have gaps, Sluice's may not.
  ids.forEach((id, i) => {
    const n = nodes.get(id)!;
    if (!n.has('hostname')) n.set('hostname', 'localhost');
    out.push('', `[[backend]]${id !== i ? `   # pgpool's backend ${id}` : ''}`);
    for (const [k, v] of n) out.push(`${k} = ${tomlValue(v)}`);
  });
  if (ids.length === 0) {
    out.push('', '[[backend]]   # pgpool.conf names no backend: a placeholder to edit', 'hostname = "localhost"', 'port = 5432');
    skipped.push({ key: 'backend_hostname0', value: '', why: 'not set: a placeholder [[backend]] (localhost:5432) was written' });
  }
  for (const line of pcpConf.split('\n')) {
    const m = /^\s*([^#:\s][^:]*):([0-9a-f]{32})\s*$/i.exec(line);
    if (m) out.push('', '[[pcp_user]]', `name = ${tomlValue(m[1])}`, `md5 = ${tomlValue(m[2]!.toLowerCase())}`);
  }
  if (skipped.length > 0) {
    out.push('', '# Not carried over:');
    for (const s of skipped) out.push(`#   ${s.key} = '${s.value}': ${s.why}`);
  }
  return { toml: `${out.join('\n')}\n`, skipped };
}
