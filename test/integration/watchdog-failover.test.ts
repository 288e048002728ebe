import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import t from 'tap';
import { CliSluice, startCli } from '../helpers/cli';
import { createCluster, TestCluster } from '../helpers/cluster';
import { startEtcd, TestEtcd } from '../helpers/etcd';
import { Forwarder, startForwarder } from '../helpers/forwarder';
import { pcpPassFile, runProgram, sluicectl } from '../helpers/pcp';
import { groupFormed, HOOK_ARGS, memberConfig, recorded, recordInto } from '../helpers/group';
import { SCRIPTS, waitFor } from '../helpers/sluice';

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
/** Found by the failover test: the instance that led it, and the standby left. */
let leaderIndex = -1;
let standby = -1;
let primaryNode = -1;

const hook = (file: string, script: string) => `${recordInto(join(dir, file))} ${HOOK_ARGS} && ${SCRIPTS}/${script} ${HOOK_ARGS}`;
const lines = (file: string) => recorded(join(dir, file));

t.before(async () => {
  [cluster, etcd] = await Promise.all([createCluster(2), startEtcd(3)]);
  dir = mkdtempSync(join(tmpdir(), 'sluice-wd-failover-'));
  passFile = pcpPassFile();
  cut = await startForwarder(cluster.port(0));
  await runProgram('pgbench', ['-i', '-q', '-s', '1', '-h', '127.0.0.1', '-p', String(cluster.port(0)), '-U', 'postgres', 'postgres']);
  for (let i = 0; i < 3; i++) {
    const work = join(dir, `work${i}`);
    mkdirSync(work);
    const config = memberConfig(cluster, i === 2 ? [etcd.endpoints[2]!] : etcd.endpoints, 'wdfo', i, work, {
      failover_command: hook(`failover-${i}.jsonl`, 'failover.sh'),
      follow_primary_command: hook(`follow-${i}.jsonl`, 'follow_primary.sh'),
      event_command: `${recordInto(join(dir, `events-${i}.jsonl`))} %e %n %s %E`,
      recovery_1st_stage_command: `${SCRIPTS}/recovery_1st_stage.sh`,
      recovery_2nd_stage_command: recordInto(join(dir, `stage2-${i}.jsonl`)),
      remote_start_command: `${SCRIPTS}/remote_start.sh`,
      recovery_timeout: 60,
    }) as { backend: { port: number }[] };
    // Instance 2 knows one etcd member only (stopping it cuts that instance alone off from etcd),
    // and reaches node 0 through the forwarder.
    if (i === 2) config.backend[0]!.port = cut.port;
    sluices.push(await startCli(dir, config, `sluice${i}.toml`));
  }
  await groupFormed(sluices[0]!, passFile, 3);
});

t.teardown(async () => {
  for (const s of sluices) if (s.proc.exitCode === null) s.proc.kill('SIGKILL');
  await cut?.close();
  await etcd?.destroy();
  await cluster?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

/** SHOW POOL_NODES through instance `s`: node `id`'s status column. */
async function poolNodeStatus(s: CliSluice, id: number): Promise<string> {
  const r = await runProgram('psql', ['-X', '-At', '-F', ' ', '-h', '127.0.0.1', '-p', String(s.port), '-U', 'postgres', '-c', 'SHOW POOL_NODES', 'postgres']);
  return r.stdout.split('\n').find((l) => l.startsWith(`${id} `))?.split(' ')[3] ?? '';
}

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

t.test('kill -9 of the primary under pgbench through two instances, the third cut off from etcd: one failover by the leader, then every instance on the new primary', async (t) => {
  await etcd.stop(2);
  await waitFor('instance 2 cut off from etcd', async () => (await sluicectl(sluices[2]!.pcpPort, passFile, 'watchdog-info')).stdout.includes('NETWORK ISOLATION'), 15_000);
  const w = await runProgram('psql', ['-X', '-At', '-h', '127.0.0.1', '-p', String(sluices[2]!.port), '-U', 'postgres', '-c', 'insert into pgbench_history (tid, bid, aid, delta, mtime) values (1, 1, 1, 1, now())', 'postgres']);
  t.match(w.stdout, /^INSERT 0 1$/m, `the isolated instance still writes to the primary it knows ${w.stderr}`);
  // TPC-B through two of the instances while the primary dies (their clients may abort then).
  const load = [0, 1].map((i) => runProgram('pgbench', ['-n', '-c', '2', '-T', '15', '-h', '127.0.0.1', '-p', String(sluices[i]!.port), '-U', 'postgres', 'postgres']));
  await waitFor('writes flow', async () => Number(await cluster.psql(0, 'select count(*) from pgbench_history')) > 50);
  await cluster.sh('kill', '0');
  const killed = Date.now();
  const agreed = (views: string[][]) => {
    const primaries = views.map((v) => v.findIndex((l) => /\bprimary\b/.test(l) && /\bup\b|\bwaiting\b/.test(l)));
    return views.every((v) => /\bdown\b/.test(v[0]!)) && primaries.every((p) => p > 0 && p === primaries[0]) && primaries[0];
  };
  const seenBy = (s: CliSluice) => Promise.all([0, 1, 2].map((n) => nodeSeen(s, n)));
  const primary = await waitFor('the two instances that reach etcd have node 0 down and one new primary', async () => agreed(await Promise.all(sluices.slice(0, 2).map(seenBy))), 60_000);
  t.comment(`instances 0 and 1 on the new primary ${Date.now() - killed} ms after the kill`);
  t.same([lines('failover-2.jsonl').length, lines('follow-2.jsonl').length], [0, 0], 'the isolated instance ran no hook');
  await etcd.start(2);
  const rejoined = Date.now();
  t.equal(await waitFor('instance 2 rejoined and took the group\'s view', async () => agreed([await seenBy(sluices[2]!)]), 30_000), primary, 'the same primary');
  t.comment(`instance 2 on the new primary ${Date.now() - rejoined} ms after its etcd came back`);
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
  // event_command: run by the leader alone, the failover's events in order with their epochs
  // (the last, follow, is reported once follow_primary_command has finished).
  const eventsOf = (i: number) => lines(`events-${i}.jsonl`).filter((e) => e.args[0] !== 'leader_change');
  await waitFor('the follow event reported', () => eventsOf(leader).some((e) => e.args[0] === 'follow'), 30_000);
  const events = [0, 1, 2].map(eventsOf);
  const ran = events.findIndex((e) => e.some((x) => x.args[0] === 'failover'));
  t.same(events.filter((e) => e.some((x) => x.args[0] === 'failover')).length, 1, 'one instance reported the failover');
  const names = events[ran]!.map((e) => e.args[0]);
  t.same(names.slice(names.indexOf('failover')), ['failover', 'new_primary', 'follow'], 'failover, new primary, follow');
  leaderIndex = leader;
  standby = other;
  primaryNode = primary;
});

t.test('node commands sent to any instance are carried out by the leader, for the whole group', async (t) => {
  t.ok(leaderIndex >= 0, 'the failover test found the leader');
  const [b, c] = [0, 1, 2].filter((i) => i !== leaderIndex).map((i) => sluices[i]!);
  await waitFor('the standby serves again after following', async () => (await Promise.all(sluices.map((s) => nodeSeen(s, standby)))).every((l) => / up up standby /.test(l)), 30_000);
  const detached = await runProgram('/usr/sbin/pcp_detach_node', ['-h', '127.0.0.1', '-p', String(b!.pcpPort), '-U', 'admin', '-w', '-n', String(standby)], { PCPPASSFILE: passFile });
  t.equal(detached.code, 0, `pcp_detach_node on a non-leader: ${detached.stderr}`);
  await waitFor('every instance has the standby down in SHOW POOL_NODES', async () => (await Promise.all(sluices.map((s) => poolNodeStatus(s, standby)))).every((st) => st === 'down'), 10_000);
  // The view can reach every instance before the hook's recorder (a node process) has started.
  await waitFor('failover_command for it ran on the leader', () => lines(`failover-${leaderIndex}.jsonl`).length === 2);
  t.equal(lines(`failover-${leaderIndex}.jsonl`).length, 2, 'failover_command for it ran on the leader');
  const attached = await runProgram('/usr/sbin/pcp_attach_node', ['-h', '127.0.0.1', '-p', String(c!.pcpPort), '-U', 'admin', '-w', '-n', String(standby)], { PCPPASSFILE: passFile });
  t.equal(attached.code, 0, `pcp_attach_node on the other non-leader: ${attached.stderr}`);
  await waitFor('every instance has it back in SHOW POOL_NODES', async () => (await Promise.all(sluices.map((s) => poolNodeStatus(s, standby)))).every((st) => st === 'up' || st === 'waiting'), 15_000);
  t.same([0, 1, 2].filter((i) => i !== leaderIndex).map((i) => lines(`failover-${i}.jsonl`).length), [0, 0], 'no hook ran anywhere else');
});

t.test('a switchover sent to a non-leader: every instance holds, the leader switches once, and pgbench through each loses nothing', async (t) => {
  const [from, to] = [primaryNode, standby];
  const asked = [0, 1, 2].find((i) => i !== leaderIndex)!;
  const before = [0, 1, 2].map((i) => lines(`failover-${i}.jsonl`).length);
  const writes = Number(await cluster.psql(from, 'select count(*) from pgbench_history'));
  const startRows = writes;
  const load = sluices.map((s) => runProgram('pgbench', ['-n', '-c', '2', '-T', '15', '-h', '127.0.0.1', '-p', String(s.port), '-U', 'postgres', 'postgres']));
  await waitFor('writes flow through all three', async () => Number(await cluster.psql(from, 'select count(*) from pgbench_history')) > writes + 150);
  const r = await runProgram('/usr/sbin/pcp_promote_node', ['-h', '127.0.0.1', '-p', String(sluices[asked]!.pcpPort), '-U', 'admin', '-w', '-s', '-n', String(to)], { PCPPASSFILE: passFile });
  t.equal(r.stdout, 'pcp_promote_node -- Command Successful\n', `pcp_promote_node -s on a non-leader: ${r.stderr}`);
  // Answered once every instance routes writes to the new primary.
  for (const s of sluices) t.match(await nodeSeen(s, to), / primary /, `${s.port} has node ${to} as the primary`);
  t.equal(await cluster.psql(to, 'select pg_is_in_recovery()'), 'f', `node ${to} was promoted`);
  const ran = await Promise.all(load);
  ran.forEach((x, i) => {
    t.equal(x.code, 0, `pgbench through instance ${i}: ${x.stderr.trim().split('\n').pop()}`);
    t.match(x.stdout, /number of failed transactions: 0 /, `no failed transaction through instance ${i}`);
  });
  // Nothing written to the old primary after the catch-up and lost: every transaction pgbench
  // counts (each inserts one history row) is on the new primary.
  const processed = ran.reduce((n, x) => n + Number(/number of transactions actually processed: (\d+)/.exec(x.stdout)?.[1] ?? -1), 0);
  t.equal(Number(await cluster.psql(to, 'select count(*) from pgbench_history')) - startRows, processed, `all ${processed} transactions are on node ${to}`);
  for (const i of [0, 1, 2].filter((x) => x !== leaderIndex)) {
    t.ok(sluices[i]!.logs.some((l) => l.msg === 'paused: statements are held at transaction boundaries' && typeof l.expiresMs === 'number'), `instance ${i} was paused for the switchover`);
  }
  t.same([0, 1, 2].map((i) => lines(`failover-${i}.jsonl`).length - before[i]!), [0, 1, 2].map((i) => (i === leaderIndex ? 1 : 0)), 'failover_command once, on the leader');
  await waitFor(`node ${from} follows as a standby`, async () => (await cluster.psql(from, 'select pg_is_in_recovery()').catch(() => '')) === 't', 60_000);
  [primaryNode, standby] = [to, from];
});

t.test('online recovery sent to a non-leader: the leader runs it, its second stage waits for the sessions of every instance, and every instance has the node back', async (t) => {
  const [asked, other] = [0, 1, 2].filter((i) => i !== leaderIndex) as [number, number];
  // A session open on a third instance: stage 2 must wait for it to end.
  const c = new Client({ host: '127.0.0.1', port: sluices[other]!.port, user: 'postgres', database: 'postgres' });
  // Should a check fail before it ends, the instances' stop later must not kill this process.
  c.on('error', () => undefined);
  t.teardown(() => c.end().catch(() => undefined));
  await c.connect();
  await c.query('begin');
  const from = sluices[other]!.logs.length;
  const recovery = runProgram('/usr/sbin/pcp_recovery_node', ['-h', '127.0.0.1', '-p', String(sluices[asked]!.pcpPort), '-U', 'admin', '-w', '-n', '0'], { PCPPASSFILE: passFile });
  let answered = false;
  void recovery.then(() => (answered = true));
  await sluices[leaderIndex]!.logged('recovery of node 0: second stage, new sessions are held while open ones finish');
  await sluices[other]!.logged('online recovery of the group: new sessions held here, waiting for the open ones to end', from);
  // The leader is in its second stage and the other instance holds: the open session keeps both waiting.
  await c.query('select 1');
  t.same([0, 1, 2].map((i) => lines(`stage2-${i}.jsonl`).length), [0, 0, 0], 'no second stage command while a session of another instance is open');
  t.notOk(answered, 'pcp_recovery_node still waits');
  await c.query('commit');
  await c.end();
  const r = await recovery;
  t.equal(r.stdout, 'pcp_recovery_node -- Command Successful\n', `pcp_recovery_node on a non-leader: ${r.stderr}`);
  t.same([0, 1, 2].map((i) => lines(`stage2-${i}.jsonl`).length), [0, 1, 2].map((i) => (i === leaderIndex ? 1 : 0)), 'recovery_2nd_stage_command once, on the leader');
  await waitFor('every instance has node 0 back', async () => (await Promise.all(sluices.map((s) => nodeSeen(s, 0)))).every((l) => / (up|waiting) \S+ standby /.test(l)), 30_000);
  // Released everywhere: a new session through the third instance.
  const q = await runProgram('psql', ['-X', '-At', '-h', '127.0.0.1', '-p', String(sluices[other]!.port), '-U', 'postgres', '-c', 'select 7', 'postgres']);
  t.match(q.stdout, /^7$/m, 'new sessions admitted again');
});

t.test('reload (-s c), pause and resume sent to one instance act on every instance', async (t) => {
  const from = sluices.map((s) => s.logs.length);
  const r = await runProgram('/usr/sbin/pcp_reload_config', ['-h', '127.0.0.1', '-p', String(sluices[0]!.pcpPort), '-U', 'admin', '-w', '-s', 'c'], { PCPPASSFILE: passFile });
  // pgpool's client exits 0 even on an ERROR: its message is the proof.
  t.equal(r.stdout, 'pcp_reload_config -- Command Successful\n', `pcp_reload_config -s c: ${r.stderr}`);
  await Promise.all(sluices.map((s, i) => s.logged('config reloaded', from[i])));
  t.pass('every instance reloaded its config');
  const paused = await sluicectl(sluices[1]!.pcpPort, passFile, 'pause');
  t.equal(paused.code, 0, `sluicectl pause: ${paused.stderr}`);
  // Through another instance, a new statement now waits for the resume.
  let done = false;
  const q = runProgram('psql', ['-X', '-At', '-h', '127.0.0.1', '-p', String(sluices[2]!.port), '-U', 'postgres', '-c', 'select 42', 'postgres']).then((x) => {
    done = true;
    return x;
  });
  const deadline = Date.now() + 1500;
  while (Date.now() < deadline && !done) await new Promise((resolve) => setTimeout(resolve, 50));
  t.notOk(done, 'held while the group is paused');
  const resumed = await sluicectl(sluices[0]!.pcpPort, passFile, 'resume');
  t.equal(resumed.code, 0, `sluicectl resume on a third instance: ${resumed.stderr}`);
  t.match((await q).stdout, /^42$/m, 'and it runs once the group is resumed');
});

t.test('pcp_stop_pgpool -s c sent to one instance stops every instance', async (t) => {
  const r = await runProgram('/usr/sbin/pcp_stop_pgpool', ['-h', '127.0.0.1', '-p', String(sluices[1]!.pcpPort), '-U', 'admin', '-w', '-m', 'fast', '-s', 'c'], { PCPPASSFILE: passFile });
  t.equal(r.stdout, 'pcp_stop_pgpool -- Command Successful\n', `pcp_stop_pgpool -s c: ${r.stderr}`);
  await waitFor('every instance exited', () => sluices.every((s) => s.proc.exitCode !== null || s.proc.signalCode !== null), 15_000);
  t.same(await Promise.all(sluices.map((s) => s.exited)), [0, 0, 0], 'all three, cleanly');
});
