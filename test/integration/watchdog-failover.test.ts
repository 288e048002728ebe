import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { CliSluice, startCli } from '../helpers/cli';
import { createCluster, TestCluster } from '../helpers/cluster';
import { startEtcd, TestEtcd } from '../helpers/etcd';
import { Forwarder, startForwarder } from '../helpers/forwarder';
import { pcpPassFile, runProgram, sluicectl } from '../helpers/pcp';
import { clusterConfig, SCRIPTS, waitFor } from '../helpers/sluice';

// Three Sluice instances, one cluster, one etcd: a node is failed over only when most of them
// see it down, by the leader alone (failover_command once, follow_primary_command once per
// standby), and every instance then routes writes to the new primary. One instance that alone
// loses the primary quarantines it and fails nothing over.

let cluster: TestCluster;
let etcd: TestEtcd;
let dir: string;
let passFile: string;
/** Between instance 2 and node 0: cut to isolate that instance from the primary alone. */
let cut: Forwarder;
const sluices: CliSluice[] = [];

const ARGS = '%d %h %p %D %m %H %M %P %r %R %N %S';
const recorder = join(__dirname, '..', 'fixtures', 'record-hook.mjs');
const recorded = (file: string, script: string) => `node ${recorder} ${join(dir, file)} ${ARGS} && ${SCRIPTS}/${script} ${ARGS}`;
const lines = (file: string) => (existsSync(join(dir, file)) ? readFileSync(join(dir, file), 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { args: string[] }) : []);

t.before(async () => {
  [cluster, etcd] = await Promise.all([createCluster(2), startEtcd(3)]);
  dir = mkdtempSync(join(tmpdir(), 'sluice-wd-failover-'));
  passFile = pcpPassFile();
  cut = await startForwarder(cluster.port(0));
  await runProgram('pgbench', ['-i', '-q', '-s', '1', '-h', '127.0.0.1', '-p', String(cluster.port(0)), '-U', 'postgres', 'postgres']);
  for (let i = 0; i < 3; i++) {
    const work = join(dir, `work${i}`);
    mkdirSync(work);
    const config = clusterConfig(cluster, {
      work_dir: work,
      health_check_period: 1,
      health_check_timeout: 2,
      connect_timeout: 2000,
      sr_check_period: 1,
      search_primary_node_timeout: 60,
      failover_command: recorded(`failover-${i}.jsonl`, 'failover.sh'),
      follow_primary_command: recorded(`follow-${i}.jsonl`, 'follow_primary.sh'),
      event_command: `node ${recorder} ${join(dir, `events-${i}.jsonl`)} %e %n %s %E`,
      use_watchdog: true,
      etcd_endpoints: etcd.endpoints,
      watchdog_cluster_name: 'wdfo',
      wd_name: `sluice${i}`,
      wd_hostname: '127.0.0.1',
      wd_lease_ttl: 3,
      wd_loop_wait: 1,
      wd_retry_timeout: 1,
    }) as { backend: { port: number }[] };
    // Instance 2 reaches node 0 through the forwarder.
    if (i === 2) config.backend[0]!.port = cut.port;
    sluices.push(await startCli(dir, config, `sluice${i}.toml`));
  }
  await waitFor('a group of three with a leader', async () => {
    const r = await sluicectl(sluices[0]!.pcpPort, passFile, 'watchdog-info');
    return r.stdout.startsWith('3 3 ') && !r.stdout.includes('Not Set');
  });
});

t.teardown(async () => {
  for (const s of sluices) if (s.proc.exitCode === null) s.proc.kill('SIGKILL');
  await cut?.close();
  await etcd?.destroy();
  await cluster?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

/** Node `id` as instance `s` sees it: sluicectl node-info's status and role words. */
async function nodeSeen(s: CliSluice, id: number): Promise<string> {
  const r = await sluicectl(s.pcpPort, passFile, 'node-info', String(id));
  return r.stdout.trim();
}

t.test('one instance alone loses the primary: it quarantines it, nothing is failed over, and it uses it again', async (t) => {
  await cut.stop();
  await waitFor('instance 2 quarantines node 0', async () => (await nodeSeen(sluices[2]!, 0)).includes('quarantine'), 15_000);
  // Three leader rounds in which one vote of three must not fail anything over.
  const deadline = Date.now() + 3000;
  const views: string[] = [];
  while (Date.now() < deadline) for (const s of sluices.slice(0, 2)) views.push(await nodeSeen(s, 0));
  t.ok(views.every((v) => /^\S+ \d+ 2 \S+ up up primary /.test(v)), `the others kept node 0 up as primary throughout (${views.length} looks)`);
  t.same([0, 1, 2].map((i) => lines(`failover-${i}.jsonl`).length), [0, 0, 0], 'no failover_command anywhere');
  await cut.start();
  await waitFor('instance 2 uses node 0 again', async () => !(await nodeSeen(sluices[2]!, 0)).includes('quarantine'), 15_000);
  const r = await runProgram('psql', ['-X', '-At', '-h', '127.0.0.1', '-p', String(sluices[2]!.port), '-U', 'postgres', '-c', 'insert into pgbench_history (tid, bid, aid, delta, mtime) values (1, 1, 1, 1, now()) returning 1', 'postgres']);
  t.match(r.stdout, /^INSERT 0 1$/m, `a write through instance 2 reaches the primary again ${r.stderr}`);
});

t.test('kill -9 of the primary under pgbench writes: one failover by the leader, every instance on the new primary', async (t) => {
  // TPC-B through two of the instances while the primary dies (their clients may abort then).
  const load = [0, 1].map((i) => runProgram('pgbench', ['-n', '-c', '2', '-T', '15', '-h', '127.0.0.1', '-p', String(sluices[i]!.port), '-U', 'postgres', 'postgres']));
  await waitFor('writes flow', async () => Number(await cluster.psql(0, 'select count(*) from pgbench_history')) > 50);
  await cluster.sh('kill', '0');
  const killed = Date.now();
  const primary = await waitFor(
    'every instance has node 0 down and one new primary',
    async () => {
      const seen = await Promise.all(sluices.map(async (s) => [await nodeSeen(s, 0), await nodeSeen(s, 1), await nodeSeen(s, 2)]));
      const primaries = seen.map((v) => v.findIndex((l) => /\bprimary\b/.test(l) && /\bup\b|\bwaiting\b/.test(l)));
      return seen.every((v) => /\bdown\b/.test(v[0]!)) && primaries.every((p) => p > 0 && p === primaries[0]) && primaries[0];
    },
    60_000,
  );
  t.comment(`every instance on the new primary ${Date.now() - killed} ms after the kill`);
  const other = primary === 1 ? 2 : 1;
  t.equal(await cluster.psql(primary, 'select pg_is_in_recovery()'), 'f', `node ${primary} was promoted`);
  const failovers = [0, 1, 2].map((i) => lines(`failover-${i}.jsonl`));
  t.equal(failovers.flat().length, 1, 'failover_command ran once in the whole group');
  const leader = failovers.findIndex((f) => f.length === 1);
  t.same(failovers[leader]![0]!.args.slice(0, 1), ['0'], 'for node 0');
  await waitFor('follow_primary_command ran', () => lines(`follow-${leader}.jsonl`).length === 1, 30_000);
  t.same([0, 1, 2].map((i) => lines(`follow-${i}.jsonl`).map((l) => l.args[0])), [0, 1, 2].map((i) => (i === leader ? [String(other)] : [])), 'once, for the other standby, by the leader');
  await Promise.all(load);
  // After the outage: pgbench through each instance, no failed transaction.
  for (const s of sluices) {
    const r = await runProgram('pgbench', ['-n', '-c', '2', '-t', '50', '-h', '127.0.0.1', '-p', String(s.port), '-U', 'postgres', 'postgres']);
    t.equal(r.code, 0, `pgbench through ${s.port}: ${r.stderr.trim().split('\n').pop()}`);
    t.match(r.stdout, /number of failed transactions: 0 /);
  }
  // event_command: run by the leader alone, the failover's events in order with their epochs.
  const events = [0, 1, 2].map((i) => lines(`events-${i}.jsonl`).filter((e) => e.args[0] !== 'leader_change'));
  const ran = events.findIndex((e) => e.some((x) => x.args[0] === 'failover'));
  t.same(events.filter((e) => e.some((x) => x.args[0] === 'failover')).length, 1, 'one instance reported the failover');
  const names = events[ran]!.map((e) => e.args[0]);
  t.same(names.slice(names.indexOf('failover')), ['failover', 'new_primary', 'follow'], 'failover, new primary, follow');
});
