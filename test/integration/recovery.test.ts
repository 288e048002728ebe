import { chmodSync, cpSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { Test } from 'tap';
import { createCluster, TestCluster } from '../helpers/cluster';
import { pcp, pcpPassFile, Ran, runProgram, sluicectl } from '../helpers/pcp';
import { FAST_FAILOVER, SCRIPTS, startSluice, TestSluice, waitFor } from '../helpers/sluice';

// Two-stage online recovery with the shipped scripts, on a real cluster: a standby whose data
// directory is gone comes back under a TPC-B load; stage 2 holds new sessions, lets a
// transaction finish and disconnects idle sessions; a failing stage 1 changes nothing; the
// pgpool_recovery extension path; and the old primary after a failover, rewound with pg_rewind,
// recovered by pgpool's own pcp_recovery_node.

let cluster: TestCluster;
let pass = '';
const scripts = SCRIPTS;
const BASE = {
  ...FAST_FAILOVER,
  recovery_1st_stage_command: join(scripts, 'recovery_1st_stage.sh'),
  remote_start_command: join(scripts, 'remote_start.sh'),
  recovery_timeout: 60,
};

t.before(async () => {
  cluster = await createCluster(2);
  pass = pcpPassFile();
  const init = await runProgram('pgbench', ['-i', '-q', '-s', '1', '-h', '127.0.0.1', '-p', String(cluster.port(0)), '-U', 'postgres', 'postgres']);
  if (init.code !== 0) throw new Error(init.stderr);
  await cluster.psql(0, 'CREATE TABLE recovered (x int)');
});

t.teardown(() => cluster?.destroy());

/** A Sluice for one test, stopped when the test ends. */
async function sluiceFor(t: Test, overrides: Record<string, unknown> = {}): Promise<TestSluice> {
  const s = await startSluice(cluster, { ...BASE, ...overrides });
  t.teardown(() => s.stop());
  return s;
}

const streamsFrom = async (node: number, from: number) =>
  (await cluster.psql(node, "SELECT sender_port FROM pg_stat_wal_receiver WHERE status = 'streaming'").catch(() => '')) === String(cluster.port(from));

/** Detaches a standby and stops its server: a node to recover. */
async function downNode(s: TestSluice, id: number): Promise<void> {
  const d = await sluicectl(s.server.pcpPort, pass, 'detach-node', '-n', String(id));
  if (d.code !== 0) throw new Error(d.stderr);
  await waitFor(`node ${id} down`, () => s.server.cluster.topology.nodes[id]!.status === 'down');
  await cluster.sh('stop', String(id));
}

async function attached(t: Test, s: TestSluice, id: number, primary: number): Promise<void> {
  await waitFor(`node ${id} up`, () => s.server.cluster.topology.nodes[id]!.status === 'up', 30_000);
  t.ok(await waitFor(`node ${id} streams from node ${primary}`, () => streamsFrom(id, primary), 30_000), `node ${id} is a streaming standby of node ${primary}`);
}

function clean(t: Test, r: Ran): void {
  t.equal(r.code, 0, `pgbench exits 0: ${r.stderr}`);
  t.match(r.stdout, /number of failed transactions: 0 \(0\.000%\)/);
  t.notMatch(r.stderr, /aborted|error/i, 'no client aborted, no error');
}

t.test('a standby killed and its data directory deleted comes back under a TPC-B load', async (t) => {
  const s = await sluiceFor(t);
  await cluster.sh('kill', '2');
  rmSync(join(cluster.dir, 'node2'), { recursive: true, force: true });
  await waitFor('node 2 detached by the health check', () => s.server.cluster.topology.nodes[2]!.status === 'down', 30_000);

  let benchDone = false;
  const bench = runProgram('pgbench', ['-n', '-h', '127.0.0.1', '-p', String(s.port), '-U', 'postgres', '-c', '4', '-j', '2', '-T', '20', 'postgres']).finally(() => (benchDone = true));
  await waitFor('pgbench is writing', () => s.server.backendStats.nodes[0]!.update > 200, 30_000);
  const started = Date.now();
  const r = await sluicectl(s.server.pcpPort, pass, 'recovery-node', '-n', '2');
  t.comment(`recovery by pg_basebackup under load: ${Date.now() - started} ms`);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, 'recovery-node -- Command Successful\n');
  t.match(r.stderr, /first stage \(clients keep working\)[\s\S]*starting the node[\s\S]*done, node attached/, 'progress was printed');
  t.notOk(benchDone, 'pgbench ran through the whole recovery');
  clean(t, await bench);
  await attached(t, s, 2, 0);

  // The node takes its share of reads again (sessions choose their load-balance node at start).
  const before = s.server.selectCount[2]!;
  await waitFor('node 2 serves reads', async () => {
    const c = await s.client();
    await c.query('SELECT count(*) FROM pgbench_branches');
    await c.end();
    return s.server.selectCount[2]! > before;
  });
});

t.test('stage 2: new sessions wait, a transaction finishes, idle sessions are disconnected', async (t) => {
  const s = await sluiceFor(t, { recovery_2nd_stage_command: join(scripts, 'recovery_2nd_stage.sh'), client_idle_limit_in_recovery: 1 });
  await downNode(s, 2);
  const idle = await s.client();
  const inTx = await s.client();
  await inTx.query('BEGIN');
  await inTx.query('INSERT INTO recovered VALUES (1)');
  const idleGone = new Promise<Error & { code?: string }>((resolve) => idle.once('error', resolve));

  const rec = sluicectl(s.server.pcpPort, pass, 'recovery-node', '-n', '2');
  await waitFor('stage 2', () => s.server.cluster.topology.nodes[2]!.recovery === 'stage 2', 60_000);
  const info = (await pcp('pcp_node_info', s.server.pcpPort, pass, '-n', '2')).stdout.split(' ');
  t.same([info[4], info[9]], ['down', 'recovery-stage-2'], 'pcp_node_info shows the step (new sessions wait; PCP does not)');
  const second = await pcp('pcp_recovery_node', s.server.pcpPort, pass, '-n', '1');
  t.match(second.stderr, /^FATAL: {2}pgpool-II is already processing another recovery request\.\n/, 'one recovery at a time');
  let lateReady = false;
  const late = s.client().then((c) => {
    lateReady = true;
    return c;
  });
  t.equal((await idleGone).code, '57P01', 'the idle session was disconnected (client_idle_limit_in_recovery = 1)');
  t.notOk(lateReady, 'a session that connects during stage 2 waits');
  t.equal(s.server.cluster.topology.nodes[2]!.recovery, 'stage 2', 'stage 2 waits for the transaction');
  await inTx.query('INSERT INTO recovered VALUES (2)');
  await inTx.query('COMMIT');

  const r = await rec;
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, /second stage/);
  const c = await late;
  t.same((await c.query('SELECT count(*)::int AS n FROM recovered')).rows, [{ n: 2 }], 'the late session runs; the transaction committed');
  await attached(t, s, 2, 0);
});

t.test('a failing first stage leaves the node down and the service as it was', async (t) => {
  const failing = join(cluster.dir, 'failing_stage.sh');
  writeFileSync(failing, '#!/bin/sh\necho "no space left on the target" >&2\nexit 3\n');
  chmodSync(failing, 0o755);
  const s = await sluiceFor(t, { recovery_1st_stage_command: failing });
  await downNode(s, 2);
  const c = await s.client();

  const r = await sluicectl(s.server.pcpPort, pass, 'recovery-node', '-n', '2');
  t.equal(r.code, 1, 'sluicectl fails');
  t.match(r.stderr, /node recovery failed[\s\S]*recovery_1st_stage_command exited with code 3: no space left on the target/);
  const p = await pcp('pcp_recovery_node', s.server.pcpPort, pass, '-n', '2');
  t.equal(p.stderr, 'ERROR:  node recovery failed\nDETAIL:  recovery_1st_stage_command exited with code 3: no space left on the target\n\n', "pgpool's client reports it");
  t.equal(s.server.cluster.topology.nodes[2]!.status, 'down', 'the node stays down');
  t.equal(s.server.cluster.topology.nodes[2]!.recovery, null);
  t.same((await c.query('SELECT 1 AS one')).rows, [{ one: 1 }], 'sessions are unaffected');

  await cluster.sh('start', '2');
  await sluicectl(s.server.pcpPort, pass, 'attach-node', '-n', '2');
  await waitFor('node 2 up again', () => s.server.cluster.topology.nodes[2]!.status === 'up', 30_000);
});

t.test('recovery through the pgpool_recovery extension on the primary', async (t) => {
  // pgpool's layout: the scripts live in the primary's data directory and run as its OS user.
  const pgdata = join(cluster.dir, 'node0');
  const own = join(pgdata, 'sluice-scripts');
  mkdirSync(own, { recursive: true });
  for (const f of ['recovery_1st_stage.sh', 'remote_start.sh', 'pg-env.sh', 'standby-lib.sh']) cpSync(join(scripts, f), join(own, f));
  const wrapper = (script: string) => `#!/bin/sh\nexec "$(dirname "$0")/sluice-scripts/${script}" "$@"\n`;
  writeFileSync(join(pgdata, 'recovery_1st_stage'), wrapper('recovery_1st_stage.sh'));
  writeFileSync(join(pgdata, 'pgpool_remote_start'), wrapper('remote_start.sh'));
  await runProgram('chmod', ['-R', 'a+rx', own, join(pgdata, 'recovery_1st_stage'), join(pgdata, 'pgpool_remote_start')]);
  await runProgram('chown', ['-R', 'postgres:', own, join(pgdata, 'recovery_1st_stage'), join(pgdata, 'pgpool_remote_start')]);
  await cluster.psql(0, 'CREATE EXTENSION IF NOT EXISTS pgpool_recovery');

  const s = await sluiceFor(t, { recovery_via_pgpool_recovery: true, recovery_1st_stage_command: 'recovery_1st_stage', remote_start_command: '' });
  await downNode(s, 1);
  rmSync(join(cluster.dir, 'node1'), { recursive: true, force: true });
  const r = await sluicectl(s.server.pcpPort, pass, 'recovery-node', '-n', '1');
  t.equal(r.code, 0, r.stderr);
  await attached(t, s, 1, 0);
});

t.test('after a failover the old primary is rewound and recovered by pcp_recovery_node', async (t) => {
  const s = await sluiceFor(t);
  await cluster.sh('kill', '0');
  const primary = await waitFor('a new primary', () => {
    const id = s.server.cluster.topology.primaryId;
    return id !== null && id !== 0 && !s.server.cluster.failover.inProgress ? id : undefined;
  }, 60_000);
  // The test cluster runs without full_page_writes (speed); pg_rewind needs it on its source.
  await cluster.psql(primary, 'ALTER SYSTEM SET full_page_writes = on');
  await cluster.psql(primary, 'SELECT pg_reload_conf()');

  const started = Date.now();
  const r = await pcp('pcp_recovery_node', s.server.pcpPort, pass, '-n', '0');
  t.comment(`recovery of the old primary by pg_rewind: ${Date.now() - started} ms`);
  t.equal(r.stdout, 'pcp_recovery_node -- Command Successful\n', r.stderr);
  t.ok(s.logs.some((l) => /rewound; a standby/.test(String(l.output))), 'the rewind path was taken');
  await attached(t, s, 0, primary);
  t.equal(await cluster.psql(0, 'SELECT pg_is_in_recovery()'), 't', 'node 0 is a standby now');
  const c = await s.client();
  await c.query('INSERT INTO recovered VALUES (3)');
  t.equal(await cluster.psql(primary, 'SELECT count(*) FROM recovered'), '3', 'writes go on, on the new primary');
});
