import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { createCluster, TestCluster } from '../helpers/cluster';
import { clusterConfig, startSluice, TestSluice, waitFor } from '../helpers/sluice';

// A standby dying is a non-event: pgbench -S through Sluice finishes without an aborted client
// while one is killed; failover_command still runs, with every placeholder verbatim. A frozen
// standby is detached after timeout and retries and stays down (also across a restart, through
// sluice_status) until auto_failback or -D.

const run = promisify(execFile);
let cluster: TestCluster;
let overrides: Record<string, unknown>;
const started: TestSluice[] = [];
const start = async (extra: Record<string, unknown> = {}, discardStatus = false) => {
  const s = await startSluice(cluster, { ...overrides, ...extra }, { discardStatus });
  started.push(s);
  return s;
};

const hookOut = () => join(cluster.dir, 'hooks.jsonl');
const marker = () => join(cluster.dir, 'pwned');
const weirdDir = () => `/tmp/it's a dir; $(touch ${marker()}) "q" \`touch ${marker()}\``;

t.before(async () => {
  cluster = await createCluster(2);
  const base = clusterConfig(cluster, { weights: [1, 1, 1] }) as { backend: Record<string, unknown>[] };
  base.backend[1]!.health_check_max_retries = 2; // per-node override: node 1 gets retries
  base.backend[2]!.data_directory = weirdDir();
  overrides = {
    backend: base.backend,
    work_dir: cluster.dir,
    health_check_period: 1,
    health_check_timeout: 1,
    health_check_retry_delay: 1,
    connect_timeout: 2000,
    sr_check_period: 1,
    // Per statement, so that node 2 certainly serves some of pgbench's 4 clients' reads (a
    // per-session choice leaves it out one run in five).
    statement_level_load_balance: true,
    failover_command: `node ${join(__dirname, '..', 'fixtures', 'record-hook.mjs')} ${hookOut()} %d %h %p %D %m %H %M %P %r %R %N %S %% lit`,
  };
  await run('pgbench', ['-i', '-q', '-s', '1', '-h', '127.0.0.1', '-p', String(cluster.port(0)), '-U', 'postgres', 'postgres']);
  await waitFor('standbys replayed the pgbench tables', async () => {
    const lsn = await cluster.psql(0, 'select pg_current_wal_lsn()');
    for (const n of [1, 2]) if ((await cluster.psql(n, `select pg_last_wal_replay_lsn() >= '${lsn}'`)) !== 't') return false;
    return true;
  });
});

t.teardown(async () => {
  for (const s of started) await s.stop().catch(() => undefined);
  await cluster?.destroy();
});

t.test('kill -9 of a standby under pgbench -S: no aborted client, reads go on', async (t) => {
  const s = await start();
  const bench = run('pgbench', ['-S', '-n', '-c', '4', '-j', '2', '-T', '6', '-h', '127.0.0.1', '-p', String(s.port), '-U', 'postgres', 'postgres']).then(
    (r) => ({ code: 0, out: r.stdout + r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout + e.stderr }),
  );
  const before = [...s.server.selectCount];
  await waitFor('node 2 serving reads', () => s.server.selectCount[2]! > before[2]! + 100);
  await cluster.sh('kill', '2');
  const atKill = [...s.server.selectCount];
  const result = await bench;
  t.equal(result.code, 0, 'pgbench exits 0');
  t.notMatch(result.out, /aborted|error/i, 'no client aborted, no error');
  t.match(result.out, /number of failed transactions: 0/);
  t.ok(s.server.selectCount[1]! > atKill[1]! && s.server.selectCount[0]! > atKill[0]!, 'the other nodes served reads after the kill');
  await waitFor('node 2 detached', () => s.server.cluster.topology.nodes[2]!.status === 'down');

  // The detach comes first, then failover_command: its recorder may not have written yet.
  await waitFor('failover_command recorded', () => existsSync(hookOut()) && readFileSync(hookOut(), 'utf8').includes('\n'));
  const calls = readFileSync(hookOut(), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { args: string[]; env: Record<string, string> });
  t.equal(calls.length, 1, 'failover_command ran once');
  const p = (n: number) => String(cluster.port(n));
  t.same(calls[0]!.args, ['2', '127.0.0.1', p(2), weirdDir(), '0', '127.0.0.1', '0', '0', p(0), join(cluster.dir, 'node0'), '127.0.0.1', p(0), '%', 'lit'], 'every placeholder verbatim');
  t.match(calls[0]!.env, { SLUICE_FAILED_NODE_ID: '2', SLUICE_FAILED_DATA_DIRECTORY: weirdDir(), SLUICE_NEW_MAIN_NODE_ID: '0', SLUICE_OLD_PRIMARY_PORT: p(0) });
  t.notOk(existsSync(marker()), 'nothing in the values was executed');
  await s.stop();
});

t.test('a frozen standby is detached after timeout and retries, and stays down', async (t) => {
  const s = await start();
  const pid = Number(readFileSync(join(cluster.dir, 'node1', 'postmaster.pid'), 'utf8').split('\n')[0]);
  process.kill(pid, 'SIGSTOP');
  try {
    await waitFor('node 1 detached', () => s.server.cluster.topology.nodes[1]!.status === 'down', 30_000);
  } finally {
    process.kill(pid, 'SIGCONT');
  }
  const stats = s.server.cluster.health[1]!.stats;
  t.ok(stats.retry >= 2 && stats.fail >= 1, `retried before failing (retries ${stats.retry}, failures ${stats.fail})`);
  const skips = stats.skip;
  await waitFor('two more health check rounds', () => stats.skip >= skips + 2);
  t.equal(s.server.cluster.topology.nodes[1]!.status, 'down', 'SIGCONT alone does not re-attach it');
  const c = await s.client();
  const before = [...s.server.selectCount];
  for (let i = 0; i < 20; i++) await c.query('select 1');
  t.equal(s.server.selectCount[1], before[1], 'no reads for the detached node');
  await s.stop();
});

t.test('sluice_status keeps nodes down across a restart; auto_failback and -D bring them back', async (t) => {
  await cluster.sh('start', '2');
  await waitFor('node 2 streaming again', async () => (await cluster.psql(0, "select count(*) from pg_stat_replication where state = 'streaming'")) === '2', 30_000);
  t.equal(readFileSync(join(cluster.dir, 'sluice_status'), 'utf8'), 'up\ndown\ndown\n');

  const again = await start();
  const nodes = again.server.cluster.topology.nodes;
  t.same(nodes.map((n) => n.status), ['up', 'down', 'down'], 'restored: both standbys stay down');
  t.ok(again.logs.some((l) => l.msg?.toString().startsWith('node is marked down but streams')), 'the stale status is reported');
  await again.stop();

  const auto = await start({ auto_failback: true });
  await waitFor('auto_failback re-attached both', () => auto.server.cluster.topology.nodes.every((n) => n.status !== 'down'), 20_000);
  await auto.stop();

  await run('sh', ['-c', `printf 'up\\ndown\\ndown\\n' > ${join(cluster.dir, 'sluice_status')}`]);
  const fresh = await start({}, true);
  t.same(fresh.server.cluster.topology.nodes.map((n) => n.status), ['up', 'up', 'up'], '-D: every node starts afresh');
  t.equal(readFileSync(join(cluster.dir, 'sluice_status'), 'utf8'), 'up\nup\nup\n', 'and the file says so');
  await fresh.stop();
});
