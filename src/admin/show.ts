import { encodeCommandComplete, encodeError } from '../protocol/backend';
import { Backend } from '../protocol/codes';
import { SqlState } from '../protocol/sqlstate';
import { Writer } from '../protocol/writer';
import type { LocalCommands, LocalSession } from '../session/local-commands';
import { isSessionParameter, PGPOOL_ONLY, SettingError } from '../session/settings';
import { fixed6, timestamp } from './format';
import type { AdminHost } from './host';
import { configItems } from './pool-status';
import { healthRow, nodeRows, poolRows, processStatus } from './views';

const TEXT_OID = 25;

const POOLS_COLUMNS = [
  'pool_pid', 'start_time', 'client_connection_count', 'pool_id', 'backend_id', 'database', 'username', 'backend_connection_time',
  'client_connection_time', 'client_disconnection_time', 'client_idle_duration', 'majorversion', 'minorversion', 'pool_counter',
  'pool_backendpid', 'pool_connected', 'status',
];
const HEALTH_COLUMNS = [
  'node_id', 'hostname', 'port', 'status', 'role', 'last_status_change', 'total_count', 'success_count', 'fail_count', 'skip_count',
  'retry_count', 'average_retry_count', 'max_retry_count', 'max_duration', 'min_duration', 'average_duration', 'last_health_check',
  'last_successful_health_check', 'last_skip_health_check', 'last_failed_health_check',
];

/** A result set as pgpool sends it: text columns, DataRows, CommandComplete "SELECT n". */
export function resultSet(columns: readonly string[], rows: readonly (readonly string[])[]): Buffer {
  const w = new Writer(256).begin(Backend.RowDescription).int16(columns.length);
  for (const c of columns) w.cstring(c).int32(0).int16(0).int32(TEXT_OID).int16(-1).int32(-1).int16(0);
  w.end();
  for (const r of rows) {
    w.begin(Backend.DataRow).int16(r.length);
    for (const v of r) {
      const b = Buffer.from(v, 'utf8');
      w.int32(b.length).bytes(b);
    }
    w.end();
  }
  return w.begin(Backend.CommandComplete).cstring(`SELECT ${rows.length}`).end().finish();
}

const commandComplete = encodeCommandComplete;
const error = (code: string, message: string): Buffer => encodeError('ERROR', code, message);

const MATCH = /^\s*(show\s+pool_\w+|pgpool\s+(show|set|reset)\b)/i;

/** pgpool's SQL commands on the proxy port (pgpool.md b.2), answered by Sluice. */
export class ShowCommands implements LocalCommands {
  constructor(
    private readonly h: AdminHost,
    private readonly version: string,
  ) {}

  matches(sql: string): boolean {
    return MATCH.test(sql);
  }

  async run(sql: string, session: LocalSession): Promise<Buffer> {
    const text = sql.trim().replace(/;\s*$/, '').trim();
    const show = /^show\s+pool_(\w+)$/i.exec(text);
    if (show) return this.show(show[1]!.toLowerCase(), session);
    const pshow = /^pgpool\s+show\s+(.+)$/i.exec(text);
    if (pshow) return this.pgpoolShow(pshow[1]!.trim(), session);
    const set = /^pgpool\s+set\s+("?[\w]+"?)\s*(?:=|\s+to\s+)\s*(.+)$/i.exec(text);
    if (set) return this.pgpoolSet(unquote(set[1]!), set[2]!.trim(), session);
    const reset = /^pgpool\s+reset\s+("?[\w]+"?)$/i.exec(text);
    if (reset) return this.pgpoolReset(unquote(reset[1]!), session);
    return error(SqlState.SyntaxError, `syntax error in pgpool command: "${text}"`);
  }

  private async show(what: string, session: LocalSession): Promise<Buffer> {
    const h = this.h;
    const nodes = h.cluster.topology.nodes;
    switch (what) {
      case 'nodes': {
        const rows = await nodeRows(h);
        return resultSet(
          ['node_id', 'hostname', 'port', 'status', 'pg_status', 'lb_weight', 'role', 'pg_role', 'select_cnt', 'load_balance_node', 'replication_delay', 'replication_state', 'replication_sync_state', 'last_status_change'],
          rows.map((r) => [
            String(r.id), r.host, String(r.port), r.status, r.pgStatus, fixed6(r.weight), r.role, r.pgRole, String(r.selectCount),
            String(session.loadBalanceNode === r.id), String(r.delayBytes), r.replicationState, r.replicationSyncState, timestamp(r.lastStatusChange),
          ]),
        );
      }
      case 'processes':
        return resultSet(
          ['pool_pid', 'start_time', 'client_connection_count', 'database', 'username', 'backend_connection_time', 'pool_counter', 'status'],
          h.sessions().map((s) => [
            String(s.id), timestamp(s.startedAt), '1', s.database, s.user, timestamp(s.backends[0]?.connectedAt), '1', processStatus(s),
          ]),
        );
      case 'pools':
        return resultSet(POOLS_COLUMNS, poolRows(h, h.sessions()));
      case 'version':
        return resultSet(['pool_version'], [[`4.3.5 (sluice ${this.version})`]]);
      case 'health_check_stats':
        return resultSet(HEALTH_COLUMNS, nodes.map((n) => healthRow(h, n.id)));
      case 'backend_stats':
        return resultSet(
          ['node_id', 'hostname', 'port', 'status', 'role', 'select_cnt', 'insert_cnt', 'update_cnt', 'delete_cnt', 'ddl_cnt', 'other_cnt', 'panic_cnt', 'fatal_cnt', 'error_cnt'],
          nodes.map((n) => {
            const c = h.backendStats.nodes[n.id]!;
            const role = n.id === h.cluster.topology.primaryId ? 'primary' : 'standby';
            return [String(n.id), n.host, String(n.port), n.status, role, String(h.selectCount[n.id] ?? 0), ...[c.insert, c.update, c.delete, c.ddl, c.other, c.panic, c.fatal, c.error].map(String)];
          }),
        );
      case 'status':
        return this.items(() => true, session);
      case 'cache':
        return error(SqlState.FeatureNotSupported, 'query cache is not enabled');
      default:
        return error(SqlState.SyntaxError, `syntax error: unknown SHOW POOL_${what.toUpperCase()}`);
    }
  }

  private itemsWith(session: LocalSession) {
    const h = this.h;
    return configItems(h.config, {
      status: (i) => h.cluster.topology.nodes[i]!.status,
      delay: (i) => h.cluster.replication.info[i]!.delayBytes,
    })
      .concat(Object.entries(PGPOOL_ONLY).map(([name, value]) => ({ name, value, description: name.replace(/_/g, ' ') })))
      .map((it) => {
        const own = session.settings.shown(it.name);
        return own === undefined ? it : { ...it, value: own };
      });
  }

  private items(keep: (name: string) => boolean, session: LocalSession): Buffer {
    const rows = this.itemsWith(session).filter((it) => keep(it.name));
    return resultSet(['item', 'value', 'description'], rows.map((it) => [it.name, it.value, it.description]));
  }

  private pgpoolShow(arg: string, session: LocalSession): Buffer {
    const name = unquote(arg);
    const lower = name.toLowerCase();
    if (lower === 'all') return this.items(() => true, session);
    if (lower === 'backend') return this.items((n) => n.startsWith('backend_'), session);
    if (lower === 'health_check') return this.items((n) => n.startsWith('health_check_'), session);
    if (lower === 'watchdog' || lower === 'heartbeat') return this.items(() => false, session);
    const it = this.itemsWith(session).find((x) => x.name === name);
    if (!it) return error(SqlState.UndefinedObject, `unrecognized configuration parameter "${name}"`);
    return resultSet([it.name], [[it.value]]);
  }

  private pgpoolSet(name: string, raw: string, session: LocalSession): Buffer {
    const known = this.itemsWith(session).some((x) => x.name === name);
    if (!known) return error(SqlState.UndefinedObject, `unrecognized configuration parameter "${name}"`);
    if (!isSessionParameter(name)) return error(SqlState.CantChangeRuntimeParam, `invalid Context, value for parameter "${name}" cannot be changed`);
    if (/^default$/i.test(raw)) session.settings.reset(name);
    else {
      try {
        session.settings.set(name, unquote(raw, "'"));
      } catch (err) {
        if (err instanceof SettingError) return error(SqlState.InvalidParameterValue, err.message);
        throw err;
      }
    }
    return commandComplete('SET');
  }

  private pgpoolReset(name: string, session: LocalSession): Buffer {
    if (name.toLowerCase() === 'all') session.settings.resetAll();
    else if (!isSessionParameter(name)) return error(SqlState.CantChangeRuntimeParam, `invalid Context, value for parameter "${name}" cannot be changed`);
    else session.settings.reset(name);
    return commandComplete('SET');
  }
}

function unquote(s: string, q = '"'): string {
  return s.length >= 2 && s.startsWith(q) && s.endsWith(q) ? s.slice(1, -1) : s;
}
