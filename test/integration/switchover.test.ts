import t, { Test } from 'tap';
import { createCluster, TestCluster } from '../helpers/cluster';
import { pcp, pcpPassFile, Ran, runProgram, sluicectl } from '../helpers/pcp';
import { FAST_FAILOVER, startSluice, TestSluice, waitFor } from '../helpers/sluice';

// Switchover under load (pcp_promote_node -s, with the shipped failover.sh and
// follow_primary.sh): pgbench TPC-B through Sluice sees no failed transaction and no aborted
// client; the roles are swapped and the old primary streams from the new one. Then pause,
// restart a replica, resume: a concurrent load sees no error.

let cluster: TestCluster;
let sluice: TestSluice;
let pass = '';

t.before(async () => {
  cluster = await createCluster(2);
  pass = pcpPassFile();
  sluice = await startSluice(cluster, FAST_FAILOVER);
  const init = await runProgram('pgbench', ['-i', '-q', '-s', '1', '-h', '127.0.0.1', '-p', String(cluster.port(0)), '-U', 'postgres', 'postgres']);
  if (init.code !== 0) throw new Error(init.stderr);
});

t.teardown(async () => {
  await sluice?.stop().catch(() => undefined);
  await cluster?.destroy();
});

const pgbench = (...args: string[]): Promise<Ran> =>
  runProgram('pgbench', ['-n', '-h', '127.0.0.1', '-p', String(sluice.port), '-U', 'postgres', ...args, 'postgres']);

function clean(t: Test, r: Ran): void {
  t.equal(r.code, 0, `pgbench exits 0: ${r.stderr}`);
  t.match(r.stdout, /number of failed transactions: 0 \(0\.000%\)/);
  t.notMatch(r.stderr, /aborted|error/i, 'no client aborted, no error');
  const done = Number(/number of transactions actually processed: (\d+)/.exec(r.stdout)?.[1] ?? 0);
  t.ok(done > 100, `transactions processed: ${done}`);
}

t.test('switchover under pgbench TPC-B -c 8 -T 30: zero failed, roles swapped', async (t) => {
  const bench = pgbench('-c', '8', '-j', '2', '-T', '30');
  const stats = sluice.server.backendStats.nodes;
  await waitFor('pgbench is writing', () => stats[0]!.update > 500, 30_000);
  const r = await pcp('pcp_promote_node', sluice.server.pcpPort, pass, '-s', '-n', '1');
  t.equal(r.stdout, 'pcp_promote_node -- Command Successful\n', r.stderr);
  const writesBefore = stats[1]!.update;
  clean(t, await bench);
  t.ok(stats[1]!.update > writesBefore, 'writes went on, on node 1');

  t.equal(sluice.server.cluster.topology.primaryId, 1, 'Sluice: node 1 is the primary');
  t.equal(await cluster.psql(1, 'SELECT pg_is_in_recovery()'), 'f', 'node 1 is a primary');
  t.equal(await cluster.psql(0, 'SELECT pg_is_in_recovery()'), 't', 'node 0 is a standby');
  await waitFor('node 0 streams from node 1', async () => (await cluster.psql(0, "SELECT sender_port FROM pg_stat_wal_receiver WHERE status = 'streaming'")) === String(cluster.port(1)), 60_000);
  await waitFor('node 2 streams from node 1', async () => (await cluster.psql(2, "SELECT sender_port FROM pg_stat_wal_receiver WHERE status = 'streaming'")) === String(cluster.port(1)), 60_000);
  await waitFor('node 0 back in service', () => sluice.server.cluster.topology.nodes[0]!.status === 'up', 30_000);
  const info = await pcp('pcp_node_info', sluice.server.pcpPort, pass);
  const roles = info.stdout.trim().split('\n').map((l) => l.split(' ').slice(4, 8).join(' '));
  t.same(roles, ['up up standby standby', 'up up primary primary', 'up up standby standby'], 'pcp_node_info agrees');
});

t.test('pause, restart a replica, resume: the load sees no error', async (t) => {
  const bench = pgbench('-S', '-c', '4', '-j', '2', '-T', '8');
  await waitFor('pgbench is reading', () => sluice.server.selectCount.reduce((a, b) => a + b, 0) > 1000, 30_000);
  const paused = await sluicectl(sluice.server.pcpPort, pass, 'pause', '--wait');
  t.equal(paused.code, 0, paused.stderr);
  await cluster.sh('stop', '2');
  await cluster.sh('start', '2');
  const resumed = await sluicectl(sluice.server.pcpPort, pass, 'resume');
  t.equal(resumed.code, 0, resumed.stderr);
  clean(t, await bench);
  // A node an operator restarts while paused is not detached for it.
  t.notOk(sluice.logs.some((l) => l.msg === 'failover: node detached' && l.node === 2), 'node 2 was not detached');
  await waitFor('node 2 in service', () => sluice.server.cluster.topology.nodes[2]!.status === 'up');
});
