import { timestamp } from '../admin/format';

const RAND_MAX = 2147483647;
const STATUS_NAME = ['unused', 'waiting', 'up', 'down'];
const ROLE_NAME = ['main', 'replica', 'primary', 'standby'];

/** A record: labels in pgpool's -v order, with the values pgpool prints. */
export type Record = [label: string, key: string, value: string][];

/** pgpool's -v layout: each label padded to the longest, " : ", the value; a blank line after. */
export function verbose(r: Record): string {
  const width = Math.max(...r.map(([l]) => l.length));
  return r.map(([l, , v]) => `${l.padEnd(width)} : ${v}`).join('\n') + '\n\n';
}

export const plain = (r: Record): string => r.map(([, , v]) => v).join(' ') + '\n';

export const asObject = (r: Record): { [k: string]: string } => Object.fromEntries(r.map(([, k, v]) => [k, v]));

/** A NodeInfo packet's 12 fields (pgpool 4.3 layout) as pcp_node_info prints them. */
export function nodeRecord(f: string[]): Record {
  const [host = '', port = '', status = '', quarantine = '', pgStatus = '', weight = '', role = '', pgRole = '', delay = '', state = '', sync = '', changed = ''] = f;
  const statusName = quarantine === '1' ? 'quarantine' : (STATUS_NAME[Number(status)] ?? 'unknown');
  return [
    ['Hostname', 'hostname', host],
    ['Port', 'port', port],
    ['Status', 'status', status],
    ['Weight', 'weight', (Number(weight) / RAND_MAX).toFixed(6)],
    ['Status Name', 'status_name', statusName],
    ['Backend Status Name', 'pg_status', pgStatus],
    ['Role', 'role', ROLE_NAME[Number(role)] ?? 'unknown'],
    ['Backend Role', 'pg_role', pgRole],
    ['Replication Delay', 'replication_delay', delay],
    ['Replication State', 'replication_state', state || 'none'],
    ['Replication Sync State', 'replication_sync_state', sync || 'none'],
    ['Last Status Change', 'last_status_change', timestamp(new Date(Number(changed) * 1000))],
  ];
}

const HEALTH = [
  ['Node Id', 'node_id'], ['Host Name', 'hostname'], ['Port', 'port'], ['Status', 'status'], ['Role', 'role'],
  ['Last Status Change', 'last_status_change'], ['Total Count', 'total_count'], ['Success Count', 'success_count'],
  ['Fail Count', 'fail_count'], ['Skip Count', 'skip_count'], ['Retry Count', 'retry_count'],
  ['Average Retry Count', 'average_retry_count'], ['Max Retry Count', 'max_retry_count'],
  ['Max Health Check Duration', 'max_health_check_duration'], ['Minimum Health Check Duration', 'min_health_check_duration'],
  ['Average Health Check Duration', 'average_health_check_duration'], ['Last Health Check', 'last_health_check'],
  ['Last Successful Health Check', 'last_successful_health_check'], ['Last Skip Health Check', 'last_skip_health_check'],
  ['Last Failed Health Check', 'last_failed_health_check'],
] as const;

export const healthRecord = (f: string[]): Record => HEALTH.map(([l, k], i) => [l, k, f[i] ?? '']);

/** A ProcessInfo packet's 17 fields, in pcp_proc_info's printed order (16 values). */
export function procRecord(f: string[]): Record {
  const [pid, start, count, , backendId, db, user, backendTime, clientTime, disconnTime, idle, major, minor, counter, backendPid, connected, status] = f;
  return [
    ['Database', 'database', db ?? ''],
    ['Username', 'username', user ?? ''],
    ['Start time', 'start_time', start ?? ''],
    ['Client connection count', 'client_connection_count', count ?? ''],
    ['Major', 'major', major ?? ''],
    ['Minor', 'minor', minor ?? ''],
    ['Backend connection time', 'backend_connection_time', backendTime ?? ''],
    ['Client connection time', 'client_connection_time', clientTime ?? ''],
    ['Client idle duration', 'client_idle_duration', idle ?? ''],
    ['Client disconnection time', 'client_disconnection_time', disconnTime ?? ''],
    ['Pool Counter', 'pool_counter', counter ?? ''],
    ['Backend PID', 'backend_pid', backendPid ?? ''],
    ['Connected', 'connected', connected ?? ''],
    ['PID', 'pid', pid ?? ''],
    ['Backend ID', 'backend_id', backendId ?? ''],
    ['Status', 'status', status ?? ''],
  ];
}
