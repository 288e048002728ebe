import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';
import { clusterWithSluice, waitFor } from '../helpers/sluice';

// pgbench through Sluice: initialise, then TPC-B-like runs in each query mode, no failures;
// read-only runs spread over both standbys.

const run = promisify(execFile);
// Weights 0:1:1: the read-only runs must land on the standbys only (a random 1:1:1 split of 16
// sessions could give the primary most of them by chance).
const env = clusterWithSluice(2, { weights: [0, 1, 1] });

const conn = () => ['-h', '127.0.0.1', '-p', String(env.sluice.port), '-U', 'postgres'];

t.test('pgbench -i through Sluice', async (t) => {
  const { stderr } = await run('pgbench', ['-i', '-q', ...conn(), 'postgres']);
  t.match(stderr, /done in/);
  t.equal(await env.cluster.psql(0, 'select count(*) from pgbench_accounts'), '100000');
  // New sessions read from the standbys: wait until both have replayed the load.
  for (const n of [1, 2]) {
    await waitFor(`node ${n} replayed pgbench -i`, async () => (await env.cluster.psql(n, "select count(*) from pg_class where relname = 'pgbench_accounts'")) === '1' && (await env.cluster.psql(n, 'select count(*) from pgbench_accounts')) === '100000', 30_000);
  }
});

for (const mode of ['simple', 'prepared']) {
  t.test(`pgbench -S -c 16 -M ${mode} with load balancing: every standby serves reads, zero failed`, async (t) => {
    const before = [...env.sluice.server.selectCount];
    const { stdout } = await run('pgbench', ['-S', '-c', '16', '-j', '2', '-T', '5', '-M', mode, ...conn(), 'postgres'], { maxBuffer: 1 << 24 });
    const processed = Number(/number of transactions actually processed: (\d+)/.exec(stdout)?.[1]);
    t.equal(Number(/number of failed transactions: (\d+)/.exec(stdout)?.[1]), 0);
    const reads = env.sluice.server.selectCount.map((n, i) => n - before[i]!);
    t.ok(reads[1]! > 0 && reads[2]! > 0, `reads per node ${reads.join('/')} for ${processed} transactions`);
    // pgbench's start-up look at pg_catalog is the primary's (system catalogs stay there).
    t.ok(reads[0]! <= 1, `the primary served only pgbench's catalog lookup (${reads[0]})`);
  });
}

for (const mode of ['simple', 'extended', 'prepared']) {
  t.test(`pgbench -c 8 -T 10 -M ${mode}: zero failed transactions`, async (t) => {
    const { stdout } = await run('pgbench', ['-c', '8', '-j', '2', '-T', '10', '-M', mode, ...conn(), 'postgres'], { maxBuffer: 1 << 24 });
    const processed = Number(/number of transactions actually processed: (\d+)/.exec(stdout)?.[1]);
    const failed = Number(/number of failed transactions: (\d+)/.exec(stdout)?.[1]);
    const tps = /tps = ([\d.]+)/.exec(stdout)?.[1];
    t.ok(processed > 0, `${processed} transactions, ${tps} tps`);
    t.equal(failed, 0);
  });
}

t.test('pgbench -C (a new connection per transaction) reuses pooled backends', async (t) => {
  const count = async () => Number(await env.cluster.psql(0, "select count(*) from pg_stat_activity where application_name = 'pgbench'"));
  const opened = () => env.sluice.server.poolCounts()[0]!.opened;
  // The earlier runs left up to 8 pooled connections for pgbench's startup parameters.
  const before = await count();
  const openedBefore = opened();
  const { stdout } = await run('pgbench', ['-C', '-S', '-c', '4', '-j', '2', '-T', '3', ...conn(), 'postgres']);
  t.equal(Number(/number of failed transactions: (\d+)/.exec(stdout)?.[1]), 0);
  const sessions = Number(/number of transactions actually processed: (\d+)/.exec(stdout)?.[1]);
  t.ok(sessions > 100, `${sessions} client connections`);
  // Reuse itself: the primary's backends opened for all those sessions, counted as they are made.
  const made = opened() - openedBefore;
  t.ok(made <= 8, `${made} backend connections opened for ${sessions} client sessions`);
  // A backend whose connection was just closed (pgbench ends with transactions in flight; those
  // connections are discarded) stays in pg_stat_activity until it has exited: poll to a deadline.
  let after = await count();
  await waitFor('the pgbench backends to settle', async () => (after = await count()) <= Math.max(before, 4), 5000).catch(() => undefined);
  t.ok(after <= Math.max(before, 4), `${after} pgbench backends on the primary (${before} before)`);
});
