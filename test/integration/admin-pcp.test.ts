import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import t from 'tap';
import { pcpResponse } from '../../src/admin/pcp/auth';
import { createHash } from 'node:crypto';
import { clusterWithSluice, PCP_PASSWORD, PCP_USER, waitFor } from '../helpers/sluice';
import { pcp, pcpPassFile, runProgram, sluicectl } from '../helpers/pcp';

// pgpool's own pcp_* programs (Debian 4.3.5) against Sluice's PCP port, sluicectl, and the
// SHOW POOL_* commands through psql: pgpool's output layout with this cluster's real state.

const env = clusterWithSluice(2, { load_balance_mode: true, health_check_period: 1, sr_check_period: 1 });
let pass = '';
t.before(() => {
  pass = pcpPassFile();
});
const port = () => env.sluice.server.pcpPort;
const psql = (sql: string) => runProgram('psql', ['-X', '-A', '-F', '|', '-P', 'footer=off', '-h', '127.0.0.1', '-p', String(env.sluice.port), '-U', 'postgres', '-d', 'postgres', '-c', sql]);
const lines = (s: string) => s.split('\n').filter(Boolean);

t.test('pcp_node_count and pcp_node_info (all, one, -v) show the cluster as it is', async (t) => {
  const count = await pcp('pcp_node_count', port(), pass);
  t.equal(count.code, 0);
  t.equal(count.stdout, '3\n');
  const all = await pcp('pcp_node_info', port(), pass);
  t.equal(all.code, 0, all.stderr);
  const rows = lines(all.stdout).map((l) => l.split(' '));
  t.equal(rows.length, 3);
  rows.forEach((f, i) => {
    t.same(f.slice(0, 8), ['127.0.0.1', String(env.cluster.port(i)), '2', '0.333333', 'up', 'up', i === 0 ? 'primary' : 'standby', i === 0 ? 'primary' : 'standby'], `node ${i}`);
    t.equal(f[9], i === 0 ? 'none' : 'streaming');
    t.equal(f[10], i === 0 ? 'none' : 'async');
    t.match(`${f[11]} ${f[12]}`, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
  });
  const one = await pcp('pcp_node_info', port(), pass, '-n', '1', '-v');
  t.match(one.stdout, /^Hostname {15}: 127\.0\.0\.1\nPort {19}: \d+\nStatus {17}: 2\nWeight {17}: 0\.333333\nStatus Name {12}: up\nBackend Status Name {4}: up\nRole {19}: standby\nBackend Role {11}: standby\nReplication Delay {6}: \d+\nReplication State {6}: streaming\nReplication Sync State : async\nLast Status Change {5}: \S+ \S+\n\n$/);
  const bad = await pcp('pcp_node_info', port(), pass, '-n', '5');
  t.equal(bad.code, 0, "pgpool's client exits 0 after connecting, even when the command fails");
  t.equal(bad.stderr, 'ERROR:  informing node info failed\nDETAIL:  invalid node ID : 5\n\n');
});

t.test('pcp_health_check_stats: 20 fields, counting real checks', async (t) => {
  await waitFor('a health check of node 0', () => env.sluice.server.cluster.health[0]!.stats.success > 0);
  const r = await pcp('pcp_health_check_stats', port(), pass, '-n', '0');
  t.equal(r.code, 0, r.stderr);
  const f = r.stdout.replace(/\n$/, '').split(' ');
  // Timestamps hold a space each: 20 fields, 6 of them timestamps (two never set: empty).
  t.same(f.slice(0, 4), ['0', '127.0.0.1', String(env.cluster.port(0)), 'up']);
  t.equal(f[4], 'primary');
  t.ok(Number(f[7]) >= 1, 'total_count');
  t.ok(Number(f[8]) >= 1, 'success_count');
  const v = await pcp('pcp_health_check_stats', port(), pass, '-n', '1', '-v');
  t.match(v.stdout, /^Node Id +: 1\nHost Name +: 127\.0\.0\.1\n/);
  const colons = new Set(lines(v.stdout).map((l) => l.indexOf(' : ')));
  t.equal(colons.size, 1, 'the labels are padded to one width');
  t.match(v.stdout, /Average Health Check Duration : \d+\.\d{6}\n/);
});

t.test('pcp_pool_status, pcp_proc_count and pcp_proc_info show sessions and config', async (t) => {
  const c = await env.sluice.client();
  const pid = (await c.query('SELECT pg_backend_pid() AS p')).rows[0].p as number;
  const status = await pcp('pcp_pool_status', port(), pass);
  t.equal(status.code, 0, status.stderr);
  t.match(status.stdout, /name : port\nvalue: \d+\ndesc : port\n\n/);
  t.match(status.stdout, /name : backend_port1\nvalue: \d+\n/);
  const procs = await pcp('pcp_proc_count', port(), pass);
  const ids = procs.stdout.trim().split(' ');
  t.ok(ids.length >= 1, 'at least this session');
  const info = await pcp('pcp_proc_info', port(), pass);
  const mine = lines(info.stdout).find((l) => l.includes(` ${pid} 1 `));
  t.ok(mine, `a row with the session's backend pid ${pid}: ${info.stdout}`);
  t.match(mine!, /^postgres postgres \S+ \S+ 1 3 0 /);
  const missing = await pcp('pcp_proc_info', port(), pass, '-P', '99999');
  t.equal(missing.stderr, 'ERROR:  informing process info failed\nDETAIL:  invalid process ID : 99999\n\n');
});

t.test('SHOW POOL_* columns are pgpool 4.3.5\'s; select_cnt counts the node that served', async (t) => {
  const cols = async (sql: string) => lines((await psql(sql)).stdout)[0]!.split('|');
  t.same(await cols('SHOW POOL_NODES'), ['node_id', 'hostname', 'port', 'status', 'pg_status', 'lb_weight', 'role', 'pg_role', 'select_cnt', 'load_balance_node', 'replication_delay', 'replication_state', 'replication_sync_state', 'last_status_change']);
  t.same(await cols('SHOW POOL_PROCESSES'), ['pool_pid', 'start_time', 'client_connection_count', 'database', 'username', 'backend_connection_time', 'pool_counter', 'status']);
  t.same(await cols('show pool_pools'), ['pool_pid', 'start_time', 'client_connection_count', 'pool_id', 'backend_id', 'database', 'username', 'backend_connection_time', 'client_connection_time', 'client_disconnection_time', 'client_idle_duration', 'majorversion', 'minorversion', 'pool_counter', 'pool_backendpid', 'pool_connected', 'status']);
  t.same(await cols('SHOW POOL_VERSION'), ['pool_version']);
  t.same(await cols('SHOW POOL_HEALTH_CHECK_STATS'), ['node_id', 'hostname', 'port', 'status', 'role', 'last_status_change', 'total_count', 'success_count', 'fail_count', 'skip_count', 'retry_count', 'average_retry_count', 'max_retry_count', 'max_duration', 'min_duration', 'average_duration', 'last_health_check', 'last_successful_health_check', 'last_skip_health_check', 'last_failed_health_check']);
  t.same(await cols('SHOW POOL_BACKEND_STATS'), ['node_id', 'hostname', 'port', 'status', 'role', 'select_cnt', 'insert_cnt', 'update_cnt', 'delete_cnt', 'ddl_cnt', 'other_cnt', 'panic_cnt', 'fatal_cnt', 'error_cnt']);
  t.same(await cols('PGPOOL SHOW ALL'), ['item', 'value', 'description']);

  // One session: its load-balance node serves its SELECTs, and SHOW POOL_NODES says so.
  const c = await env.sluice.client();
  const before = (await c.query('SHOW POOL_NODES')).rows as { node_id: string; select_cnt: string; load_balance_node: string }[];
  const lb = before.find((r) => r.load_balance_node === 'true')!;
  t.ok(lb, 'the session has a load-balance node');
  for (let i = 0; i < 5; i++) await c.query('SELECT 1');
  const after = (await c.query('SHOW POOL_NODES')).rows as typeof before;
  const served = after.find((r) => r.node_id === lb.node_id)!;
  t.equal(Number(served.select_cnt) - Number(lb.select_cnt), 5, 'select_cnt of the node that served rose by 5');

  await c.query('CREATE TEMP TABLE t_admin (x int)');
  await c.query('INSERT INTO t_admin VALUES (1)');
  const stats = (await c.query('SHOW POOL_BACKEND_STATS')).rows as { node_id: string; insert_cnt: string; ddl_cnt: string; error_cnt: string }[];
  t.ok(Number(stats[0]!.insert_cnt) >= 1 && Number(stats[0]!.ddl_cnt) >= 1, 'the primary counted the INSERT and the CREATE');
  await c.query('SELECT 1/0').catch(() => undefined);
  const errs = (await c.query('SHOW POOL_BACKEND_STATS')).rows as typeof stats;
  t.ok(errs.reduce((s, r) => s + Number(r.error_cnt), 0) >= 1, 'the error was counted');

  t.same((await c.query('PGPOOL SHOW num_init_children')).rows, [{ num_init_children: String(env.sluice.config.num_init_children) }]);
  await c.query('PGPOOL SET client_idle_limit = 5');
  t.same((await c.query('PGPOOL SHOW client_idle_limit')).rows, [{ client_idle_limit: '5' }]);
  await c.query('PGPOOL RESET client_idle_limit');
  t.same((await c.query('PGPOOL SHOW client_idle_limit')).rows, [{ client_idle_limit: '0' }]);
  await t.rejects(c.query('PGPOOL SET port = 3'), { message: 'invalid Context, value for parameter "port" cannot be changed' });
  t.equal((await c.query('SELECT 2 AS two')).rows[0].two, 2, 'the session goes on');
});

t.test('PGPOOL SET changes what this session does, and only this one', async (t) => {
  const c = await env.sluice.client();
  const other = await env.sluice.client();
  const notices: string[] = [];
  c.on('notice', (n) => notices.push(n.message ?? ''));
  other.on('notice', (n) => notices.push(`other: ${n.message}`));
  await c.query('SELECT 11');
  t.same(notices, [], 'notice_per_node_statement is off in the config');
  await c.query('PGPOOL SET notice_per_node_statement = on');
  await c.query('SELECT 12');
  await other.query('SELECT 13');
  t.match(notices, [/^DB node id: \d statement: SELECT 12$/]);
  t.equal(notices.length, 1, 'the other session is unchanged');

  await c.query('PGPOOL SET log_statement TO on');
  await c.query('SELECT 14 AS logged');
  await waitFor('the statement logged', () => env.sluice.logs.some((l) => l.statement === 'SELECT 14 AS logged'));
  await c.query('PGPOOL RESET ALL');
  await c.query('SELECT 15');
  t.equal(notices.length, 2, 'RESET ALL: back to the config (only SELECT 12 and 14 had notices)');
  t.notOk(env.sluice.logs.some((l) => l.statement === 'SELECT 15'), 'no longer logged');

  await t.rejects(c.query("PGPOOL SET client_idle_limit = 'soon'"), { code: '22023', message: 'invalid value for parameter "client_idle_limit": "soon"' });
  await t.rejects(c.query('PGPOOL SET no_such_thing = 1'), { code: '42704' });
  const ended = new Promise<Error & { code?: string }>((resolve) => c.once('error', resolve));
  await c.query('PGPOOL SET client_idle_limit = 1');
  const err = await ended;
  t.equal(err.code, '57P05', 'client_idle_limit set for the session disconnects it when idle');
  t.equal((await other.query('SELECT 16 AS n')).rows[0].n, 16, 'the other session has no limit');
});

t.test('pcp_detach_node / pcp_attach_node: SHOW POOL_NODES follows', async (t) => {
  const d = await pcp('pcp_detach_node', port(), pass, '-n', '2');
  t.equal(d.stdout, 'pcp_detach_node -- Command Successful\n');
  await waitFor('node 2 down', async () => (await psql('SHOW POOL_NODES')).stdout.includes(`2|127.0.0.1|${env.cluster.port(2)}|down|up|`));
  const info = await pcp('pcp_node_info', port(), pass, '-n', '2');
  t.match(info.stdout, / 3 0\.333333 down up standby standby /);
  const a = await pcp('pcp_attach_node', port(), pass, '-n', '2');
  t.equal(a.stdout, 'pcp_attach_node -- Command Successful\n');
  await waitFor('node 2 up', async () => (await psql('SHOW POOL_NODES')).stdout.includes(`2|127.0.0.1|${env.cluster.port(2)}|up|up|`));
  const g = await pcp('pcp_detach_node', port(), pass, '-n', '2', '-g');
  t.equal(g.stdout, 'pcp_detach_node -- Command Successful\n', 'graceful detach');
  t.equal(env.sluice.server.cluster.topology.nodes[2]!.status, 'down', 'down when -g answers');
  await pcp('pcp_attach_node', port(), pass, '-n', '2');
  await waitFor('node 2 up again', () => env.sluice.server.cluster.topology.nodes[2]!.status === 'up');
});

t.test('promote of the primary, watchdog, reload, recovery, wrong password: as pgpool answers', async (t) => {
  const p = await pcp('pcp_promote_node', port(), pass, '-n', '0');
  t.equal(p.stderr, "FATAL:  invalid promote request\nDETAIL:  specified node is already primary node, can't promote node id 0\n\n");
  const w = await pcp('pcp_watchdog_info', port(), pass);
  t.equal(w.stderr, 'ERROR:  PCP: informing watchdog info failed\nDETAIL:  watchdog is not enabled\n\n');
  const r = await pcp('pcp_reload_config', port(), pass);
  t.equal(r.stdout, 'pcp_reload_config -- Command Successful\n');
  const rec = await pcp('pcp_recovery_node', port(), pass, '-n', '2');
  t.equal(rec.stderr, 'ERROR:  node recovery failed, node id: 2 is alive\nDETAIL:  detach it first (sluicectl detach-node)\n\n');
  const recPrimary = await pcp('pcp_recovery_node', port(), pass, '-n', '0');
  t.match(recPrimary.stderr, /^ERROR: {2}primary server cannot be recovered by online recovery\.\n/);
  const bad = await runProgram('/usr/sbin/pcp_node_count', ['-h', '127.0.0.1', '-p', String(port()), '-U', 'nobody', '-w'], { PCPPASSFILE: '/nonexistent' });
  t.equal(bad.code, 1);
  t.equal(bad.stderr, 'FATAL:  authentication failed for user "nobody"\nDETAIL:  username and/or password does not match\n\n');
});

/** A raw PCP exchange: sends the bytes, returns what came back until the server closed or `until` matched. */
function exchange(bytes: Buffer, until?: (got: Buffer) => boolean): Promise<{ got: Buffer; closed: boolean }> {
  return new Promise((resolve) => {
    const s = connect(port(), '127.0.0.1');
    let got = Buffer.alloc(0);
    const done = (closed: boolean) => {
      s.destroy();
      resolve({ got, closed });
    };
    s.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (until?.(got)) done(false);
    });
    s.on('close', () => done(true));
    s.on('error', () => undefined);
    s.write(bytes);
  });
}

const packet = (type: string, payload: Buffer | string = '') => {
  const b = Buffer.from(payload);
  const h = Buffer.alloc(5);
  h[0] = type.charCodeAt(0);
  h.writeInt32BE(b.length + 4, 1);
  return Buffer.concat([h, b]);
};

t.test('raw PCP: oversized packet, request before authentication, several requests on one connection', async (t) => {
  const big = await exchange(Buffer.concat([Buffer.from('R'), Buffer.from([0, 0, 1, 44])]));
  t.ok(big.closed, 'closed');
  t.match(big.got.toString('latin1'), /^E.{4}SFATAL\0CXX000\0Minvalid PCP packet\0Dincorrect packet length \(300\)\0/s);
  const early = await exchange(packet('L'));
  t.ok(early.closed);
  t.match(early.got.toString('latin1'), /Mauthentication failed for new PCP connection\0Dconnection not authorized\0/);

  // M, then R with the answer for that salt, then two L: two node counts on one connection.
  const s = connect(port(), '127.0.0.1');
  s.on('error', () => undefined);
  let got = Buffer.alloc(0);
  const wait = (n: number) => waitFor(`${n} bytes`, () => got.length >= n);
  s.on('data', (d: Buffer) => (got = Buffer.concat([got, d])));
  s.write(packet('M'));
  await wait(9);
  const salt = got.subarray(5, 9);
  const md5 = createHash('md5').update(PCP_PASSWORD).digest('hex');
  s.write(packet('R', `${PCP_USER}\0${pcpResponse(PCP_USER, md5, salt)}\0`));
  await wait(9 + 22);
  t.equal(got.subarray(9, 31).toString('latin1'), 'r\0\0\0\x15AuthenticationOK\0');
  s.write(Buffer.concat([packet('L'), packet('L')]));
  await wait(31 + 46);
  t.equal(got.subarray(31).toString('latin1'), 'l\0\0\0\x16CommandComplete\x003\0'.repeat(2));
  s.end(packet('X'));
});

t.test('sluicectl: the same facts, --json, exit codes a script can trust', async (t) => {
  const info = await sluicectl(port(), pass, 'node-info', '--json');
  t.equal(info.code, 0, info.stderr);
  const nodes = JSON.parse(info.stdout) as { port: string; role: string; status_name: string }[];
  t.same(nodes.map((n) => [n.port, n.role, n.status_name]), [0, 1, 2].map((i) => [String(env.cluster.port(i)), i === 0 ? 'primary' : 'standby', 'up']));
  const plain = await sluicectl(port(), pass, 'node-info');
  const theirs = await pcp('pcp_node_info', port(), pass);
  const strip = (s: string) => s.replace(/\d+ (streaming|none) (async|none) .*$/gm, '$1 $2');
  t.equal(strip(plain.stdout), strip(theirs.stdout), "sluicectl prints pcp_node_info's layout");
  t.equal((await sluicectl(port(), pass, 'node-count')).stdout, '3\n');
  const hc = await sluicectl(port(), pass, 'health-check-stats', '1', '--json');
  t.equal((JSON.parse(hc.stdout) as { node_id: string }).node_id, '1');
  const bad = await sluicectl(port(), pass, 'node-info', '9');
  t.equal(bad.code, 1, 'a failed command exits 1');
  t.equal(bad.stderr, 'ERROR:  informing node info failed\nDETAIL:  invalid node ID : 9\n\n');
  t.equal((await sluicectl(port(), pass, 'frobnicate')).code, 2, 'a usage error exits 2');
  const denied = await runProgram(process.execPath, [require.resolve('../../dist/ctl.js'), 'node-count', '-h', '127.0.0.1', '-p', String(port()), '-U', PCP_USER, '-w'], { PCPPASSFILE: '/nonexistent' });
  t.equal(denied.code, 1, 'authentication failure exits 1');
  // No password anywhere and no terminal to ask on (a script, cron): an error and exit 1, not a
  // prompt nobody sees; -W with an input that ends: the same.
  const ctl = (...args: string[]) =>
    new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const p = spawn(process.execPath, [require.resolve('../../dist/ctl.js'), 'node-count', '-h', '127.0.0.1', '-p', String(port()), '-U', 'nobody', ...args], { env: { ...process.env, PCPPASSFILE: '/nonexistent' }, stdio: ['pipe', 'pipe', 'pipe'] });
      let stderr = '';
      p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      p.stdin.end();
      p.on('close', (code) => resolve({ code, stderr }));
    });
  const unasked = await ctl();
  t.equal(unasked.code, 1, 'no password and no terminal: exit 1');
  t.match(unasked.stderr, /no password for PCP user "nobody" at 127\.0\.0\.1:\d+: add a line host:port:user:password to PCPPASSFILE/, 'saying where a password goes');
  const ended = await ctl('-W');
  t.equal(ended.code, 1, '-W and the input ends: exit 1');
  t.match(ended.stderr, /no password was given/);
});

t.test('pause holds new statements, resume releases them without an error', async (t) => {
  const c = await env.sluice.client();
  t.equal((await sluicectl(port(), pass, 'pause', '--wait')).code, 0);
  let answered = false;
  const q = c.query('SELECT 7 AS seven').then((r) => {
    answered = true;
    return r.rows[0].seven as number;
  });
  await waitFor('the statement is held', () => env.sluice.server.gate.holding === 1);
  t.notOk(answered, 'not answered while paused');
  t.equal((await sluicectl(port(), pass, 'resume')).code, 0);
  t.equal(await q, 7);
});

t.test('pcp_stop_pgpool stops Sluice', async (t) => {
  const r = await pcp('pcp_stop_pgpool', port(), pass, '-m', 'fast');
  t.equal(r.stdout, 'pcp_stop_pgpool -- Command Successful\n');
  await waitFor('the proxy port refuses connections', () =>
    new Promise<boolean>((resolve) => {
      const s = connect(env.sluice.port, '127.0.0.1');
      s.on('connect', () => (s.destroy(), resolve(false)));
      s.on('error', () => resolve(true));
    }),
  );
});
