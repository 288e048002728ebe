import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import t from 'tap';
import { CliSluice, startCli } from '../helpers/cli';
import { createCluster, TestCluster } from '../helpers/cluster';
import { pcp, pcpPassFile, sluicectl } from '../helpers/pcp';
import { freePortRun } from '../helpers/ports';
import { clusterConfig, waitFor } from '../helpers/sluice';

// Sluice as an operator runs it (the CLI, its signals, pgpool's pcp programs and sluicectl):
// reloads under load apply all or nothing and drop no session; each shutdown mode does what
// pgpool's does and leaves no PostgreSQL connection behind.

let cluster: TestCluster;
let dir: string;
let passFile: string;
const running: CliSluice[] = [];

t.before(async () => {
  cluster = await createCluster(2);
  dir = mkdtempSync(join(tmpdir(), 'sluice-cli-'));
  passFile = pcpPassFile();
  await cluster.psql(0, 'create table shutdown_probe (mode text)');
});

t.teardown(async () => {
  for (const s of running) if (s.proc.exitCode === null) s.proc.kill('SIGKILL');
  await cluster?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

async function start(extra: Record<string, unknown> = {}, name = 'sluice.toml'): Promise<{ s: CliSluice; config: Record<string, unknown> }> {
  const config = { ...clusterConfig(cluster), http_port: 0, health_check_period: 1, sr_check_period: 1, ...extra };
  const s = await startCli(dir, config, name);
  running.push(s);
  return { s, config };
}

const client = async (s: CliSluice, applicationName: string) => {
  const c = new Client({ host: '127.0.0.1', port: s.port, user: 'postgres', database: 'postgres', application_name: applicationName });
  const errors: { code?: string }[] = [];
  c.on('error', (e) => errors.push(e as { code?: string }));
  await c.connect();
  return { c, errors };
};

/** SHOW POOL_NODES through Sluice: node id -> [status, lb_weight, select_cnt]. */
async function poolNodes(c: Client): Promise<Map<number, { status: string; weight: number; selects: number }>> {
  const r = await c.query<{ node_id: string; status: string; lb_weight: string; select_cnt: string }>('SHOW POOL_NODES');
  return new Map(r.rows.map((x) => [Number(x.node_id), { status: x.status, weight: Number(x.lb_weight), selects: Number(x.select_cnt) }]));
}

/** Connections Sluice made that are still open on any node (its own checks, and the clients'). */
async function leftBehind(applicationName: string): Promise<number> {
  let n = 0;
  for (const node of [0, 1, 2]) {
    n += Number(await cluster.psql(node, `select count(*) from pg_stat_activity where application_name in ('sluice', '${applicationName}')`));
  }
  return n;
}

t.test('reload under load: weights follow, a backend is added detached, bad files are refused', async (t) => {
  const weights = { weights: [1, 1, 0] };
  const { s, config } = await start({ ...clusterConfig(cluster, weights), statement_level_load_balance: true, health_check_period: 1, sr_check_period: 1 });
  const watcher = await client(s, 'reload-watch');
  const pid = (await watcher.c.query('select pg_backend_pid() as p')).rows[0].p as number;
  // The load: two sessions reading without pause until the test ends.
  let stop = false;
  let reads = 0;
  const failures: unknown[] = [];
  const loaders = await Promise.all([client(s, 'reload-load'), client(s, 'reload-load')]);
  t.teardown(() => void (stop = true));
  const loops = loaders.map(async ({ c }) => {
    while (!stop && failures.length === 0) await c.query('select 1').then(() => reads++, (e) => failures.push(e));
  });
  await waitFor('reads under way', () => reads > 100);
  const reloadAndCount = async (trigger: () => Promise<unknown>, msg: string) => {
    const from = s.logs.length;
    await trigger();
    return s.logged(msg, from);
  };

  const sel = async () => (await poolNodes(watcher.c)).get(1)!.selects;
  const before = await poolNodes(watcher.c);
  t.equal(before.get(2)!.weight, 0, 'node 2 starts with weight 0');
  const b2 = before.get(2)!.selects;
  s.write({ ...config, ...clusterConfig(cluster, { weights: [1, 0, 1] }), statement_level_load_balance: true, health_check_period: 1, sr_check_period: 1 });
  const applied = await reloadAndCount(async () => s.proc.kill('SIGHUP'), 'config reloaded');
  t.same(applied.changed, ['backend[1].weight', 'backend[2].weight'], 'SIGHUP applied the two weights');
  const n1 = await sel();
  await waitFor('reads reach node 2', async () => (await poolNodes(watcher.c)).get(2)!.selects > b2 + 50);
  t.ok((await sel()) - n1 <= 2, 'node 1 (weight 0 now) takes no new reads'); // at most the in-flight ones

  const added = { ...clusterConfig(cluster, { weights: [1, 0, 1] }), statement_level_load_balance: true, health_check_period: 1, sr_check_period: 1 };
  (added as unknown as { backend: Record<string, unknown>[] }).backend.push({ hostname: '127.0.0.1', port: cluster.port(3), application_name: 'node3' });
  s.write({ ...config, ...added });
  const viaPcp = await pcp('pcp_reload_config', s.pcpPort, passFile);
  t.equal(viaPcp.code, 0, 'pcp_reload_config succeeds');
  const nodes = await poolNodes(watcher.c);
  t.equal(nodes.size, 4, 'four nodes');
  t.equal(nodes.get(3)!.status, 'down', 'the new backend joined detached');
  t.match((await sluicectl(s.pcpPort, passFile, 'node-count')).stdout, /^4$/m);

  s.write({ ...config, ...added, num_init_children: 5, health_check_period: 2 });
  const refused = await reloadAndCount(async () => s.proc.kill('SIGHUP'), 'config reload refused; the running config stays');
  t.match(refused.err, /restart-only keys changed .*num_init_children/, 'the log names the key');
  const ctl = await sluicectl(s.pcpPort, passFile, 'reload');
  t.not(ctl.code, 0, 'sluicectl reload fails too');
  t.match(ctl.stderr, /num_init_children/);
  t.equal((await watcher.c.query('PGPOOL SHOW health_check_period')).rows[0].health_check_period, '1', 'not even the hot key changed');

  writeFileSync(s.file, 'port = \n');
  const syntax = await pcp('pcp_reload_config', s.pcpPort, passFile);
  // pgpool's pcp_reload_config prints the error but exits 0 (as it does against pgpool).
  t.match(syntax.stderr, /ERROR: {2}PCP: reload config failed\nDETAIL: {2}TOML syntax/, 'a syntax error is refused');
  t.equal((await poolNodes(watcher.c)).size, 4, 'the running config stays');

  stop = true;
  await Promise.all(loops);
  t.same(failures, [], `no read failed across the reloads (${reads} reads)`);
  t.equal((await watcher.c.query('select pg_backend_pid() as p')).rows[0].p, pid, 'the watching session kept its connection');
  for (const { c } of [watcher, ...loaders]) await c.end();
  s.proc.kill('SIGTERM');
  t.equal(await s.exited, 0);
});

t.test('smart shutdown (SIGTERM): no new sessions, open ones finish their work, then exit', async (t) => {
  const httpPort = await freePortRun(1);
  const { s } = await start({ http_listen_addresses: '127.0.0.1', http_port: httpPort }, 'smart.toml');
  t.equal((await fetch(`http://127.0.0.1:${httpPort}/health`)).status, 200);
  const idle = await client(s, 'shutdown-smart');
  const tx = await client(s, 'shutdown-smart');
  await tx.c.query('begin');
  await tx.c.query("insert into shutdown_probe values ('smart')");
  s.proc.kill('SIGTERM');
  await s.logged('shutting down');
  await t.rejects(client(s, 'shutdown-smart'), { code: 'ECONNREFUSED' }, 'a new session is refused');
  t.equal((await fetch(`http://127.0.0.1:${httpPort}/health`)).status, 503, '/health tells load balancers while sessions drain');
  await tx.c.query('commit');
  t.equal((await idle.c.query('select 1 as one')).rows[0].one, 1, 'an open session still works');
  t.equal(s.proc.exitCode, null, 'still running while sessions are open');
  await tx.c.end();
  await idle.c.end();
  t.equal(await s.exited, 0, 'exits once the last session left');
  t.equal(await cluster.psql(0, "select count(*) from shutdown_probe where mode = 'smart'"), '1', 'the transaction committed');
  await waitFor('no connection left behind', async () => (await leftBehind('shutdown-smart')) === 0);
  t.pass('no PostgreSQL connection left');
});

t.test('fast shutdown (SIGINT): sessions end with 57P01, open transactions roll back', async (t) => {
  const { s } = await start({}, 'fast.toml');
  const idle = await client(s, 'shutdown-fast');
  const tx = await client(s, 'shutdown-fast');
  await tx.c.query('begin');
  await tx.c.query("insert into shutdown_probe values ('fast')");
  s.proc.kill('SIGINT');
  await waitFor('both sessions told', () => idle.errors.length > 0 && tx.errors.length > 0);
  t.equal(idle.errors[0]!.code, '57P01', 'idle session: admin shutdown');
  t.equal(tx.errors[0]!.code, '57P01', 'session in a transaction: admin shutdown');
  t.equal(await s.exited, 0);
  t.equal(await cluster.psql(0, "select count(*) from shutdown_probe where mode = 'fast'"), '0', 'rolled back');
  await waitFor('no connection left behind', async () => (await leftBehind('shutdown-fast')) === 0);
  t.pass('no PostgreSQL connection left');
});

t.test('immediate shutdown (sluicectl stop -m immediate): connections dropped, nothing left behind', async (t) => {
  const { s } = await start({}, 'immediate.toml');
  const a = await client(s, 'shutdown-immediate');
  await a.c.query('begin');
  await a.c.query("insert into shutdown_probe values ('immediate')");
  const r = await sluicectl(s.pcpPort, passFile, 'stop', '-m', 'immediate');
  t.equal(r.code, 0, r.stderr);
  t.equal(await s.exited, 0);
  await waitFor('the client saw its connection end', () => a.errors.length > 0);
  t.equal(await cluster.psql(0, "select count(*) from shutdown_probe where mode = 'immediate'"), '0', 'rolled back');
  await waitFor('no connection left behind', async () => (await leftBehind('shutdown-immediate')) === 0);
  t.pass('no PostgreSQL connection left');
});
