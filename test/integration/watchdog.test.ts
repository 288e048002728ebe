import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { join } from 'node:path';
import { serialize } from 'pg-protocol';
import { Client } from 'pg';
import t from 'tap';
import { CliSluice, startCli } from '../helpers/cli';
import { createCluster, TestCluster } from '../helpers/cluster';
import { enableEtcdAuth, etcdPost, startEtcd, TestEtcd } from '../helpers/etcd';
import { startForwarder } from '../helpers/forwarder';
import { recorded, recordInto } from '../helpers/group';
import { pcp, pcpPassFile, sluicectl } from '../helpers/pcp';
import { freePortRun } from '../helpers/ports';
import { parseExposition, sampleValue } from '../helpers/prometheus';
import { clusterConfig, waitFor } from '../helpers/sluice';
import { clientCert, makePki } from '../helpers/tls';

// Several Sluice instances, one etcd (three real members): they see one another, exactly one
// leads (and runs wd_escalation_command), a leader that dies is replaced within its lease's
// TTL, one that leaves gives its keys up at once, and without etcd every instance keeps
// serving, says it is degraded and none leads (unless failover_when_quorum_exists = false lets
// it act alone). etcd over TLS with client certificates and a password works the same.

let cluster: TestCluster;
let etcd: TestEtcd;
let dir: string;
let passFile: string;
const running: CliSluice[] = [];

t.before(async () => {
  [cluster, etcd] = await Promise.all([createCluster(0), startEtcd(3)]);
  dir = mkdtempSync(join(tmpdir(), 'sluice-watchdog-'));
  passFile = pcpPassFile();
});

t.teardown(async () => {
  for (const s of running) if (s.proc.exitCode === null) s.proc.kill('SIGKILL');
  await etcd?.destroy();
  await cluster?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

/** Instance i: escalation and de-escalation append to a file of its own. */
async function instance(i: number): Promise<CliSluice> {
  const http = await freePortRun(1);
  const config = clusterConfig(cluster, {
    // Each instance its own work_dir, as in production.
    work_dir: mkdtempSync(join(dir, `work${i}-`)),
    http_port: http,
    use_watchdog: true,
    etcd_endpoints: etcd.endpoints,
    watchdog_cluster_name: 'wdtest',
    wd_name: `sluice${i}`,
    wd_hostname: '127.0.0.1',
    // Patroni's rule at its tightest: 3 s ≥ 1 + 2 × 1.
    wd_lease_ttl: 3,
    wd_loop_wait: 1,
    wd_retry_timeout: 1,
    wd_escalation_command: `echo up >> ${join(dir, `escalated-${i}`)}`,
    wd_de_escalation_command: `echo down >> ${join(dir, `escalated-${i}`)}`,
  });
  const s = await startCli(dir, config, `sluice${i}.toml`);
  running.push(s);
  return s;
}

interface Info {
  total: number;
  escalated: boolean;
  leader: string;
  members: string[];
}

/** pgpool's own pcp_watchdog_info against an instance, its brief form read. */
async function watchdogInfo(s: CliSluice): Promise<Info> {
  const r = await pcp('pcp_watchdog_info', s.pcpPort, passFile);
  if (r.code !== 0) throw new Error(`pcp_watchdog_info: ${r.stderr}`);
  const [head = '', , ...nodes] = r.stdout.trim().split('\n');
  const [total, , escalated, leader] = head.split(' ');
  return { total: Number(total), escalated: escalated === 'YES', leader: leader!, members: nodes.map((l) => l.split(' ')[0]!).sort() };
}

/** One sample of an instance's /metrics. */
async function metric(s: CliSluice, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  return sampleValue(parseExposition(await (await fetch(`http://127.0.0.1:${s.httpPort}/metrics`)).text()), name, labels);
}

const escalations = (i: number) => (existsSync(join(dir, `escalated-${i}`)) ? readFileSync(join(dir, `escalated-${i}`), 'utf8').split('\n').filter(Boolean) : []);

t.test('three instances: one view of the group, one leader, which escalated', async (t) => {
  const all = await Promise.all([0, 1, 2].map(instance));
  const names = ['sluice0', 'sluice1', 'sluice2'];
  const views = await waitFor('every instance sees three members and the same leader', async () => {
    const v = await Promise.all(all.map(watchdogInfo));
    return v.every((x) => x.total === 3 && x.leader === v[0]!.leader && x.leader !== 'Not') && v;
  });
  for (const v of views) t.same(v.members, names, 'members listed by pcp_watchdog_info');
  const leader = names.indexOf(views[0]!.leader);
  t.ok(leader >= 0, `the leader is one of them (${views[0]!.leader})`);
  t.same(views.map((v) => v.escalated), names.map((_, i) => i === leader), 'only the leader says it escalated');
  await waitFor('the leader ran wd_escalation_command', () => escalations(leader).length === 1);
  t.same([0, 1, 2].map((i) => escalations(i).length), [0, 1, 2].map((i) => (i === leader ? 1 : 0)), 'no one else escalated');

  // sluicectl prints pgpool's verbose form.
  const v = await sluicectl(all[0]!.pcpPort, passFile, 'watchdog-info', '-v');
  t.equal(v.code, 0, v.stderr);
  t.match(v.stdout, /Total Nodes\s+: 3\n/);
  t.match(v.stdout, /Quorum state\s+: QUORUM EXIST\n/);
  t.match(v.stdout, new RegExp(`Leader Node Name\\s+: ${views[0]!.leader}\\n`));

  // /metrics and /health of each instance.
  for (let i = 0; i < 3; i++) {
    const member = { member: names[i]! };
    t.equal(await metric(all[i]!, 'sluice_watchdog_members', member), 3, `${names[i]} counts three members`);
    t.equal(await metric(all[i]!, 'sluice_watchdog_leader', member), i === leader ? 1 : 0, `${names[i]} leader gauge`);
    t.equal(await metric(all[i]!, 'sluice_watchdog_etcd_reachable', member), 1);
  }

  // A CancelRequest sent to another instance for a session on this one cancels it: the secret's
  // top byte is the instance's slot, and the receiving instance sends the request on.
  const target = all[(leader + 1) % 3]!;
  const elsewhere = all[(leader + 2) % 3]!;
  const c = new Client({ host: '127.0.0.1', port: target.port, user: 'postgres', database: 'postgres' });
  await c.connect();
  const key = c as unknown as { processID: number; secretKey: number };
  const slow = c.query('select pg_sleep(60)').then(
    () => null,
    (e: { code?: string }) => e,
  );
  await waitFor('the statement runs', async () => (await cluster.psql(0, "select count(*) from pg_stat_activity where query = 'select pg_sleep(60)' and state = 'active'")) === '1');
  await new Promise<void>((resolve, reject) => {
    const s = connect(elsewhere.port, '127.0.0.1', () => s.end(serialize.cancel(key.processID, key.secretKey)));
    s.on('error', reject).on('close', () => resolve());
  });
  t.equal((await slow)?.code, '57014', 'cancelled through the other instance');
  t.not(key.secretKey >>> 24, 0, 'the secret carries the slot');
  await c.end();

  // kill -9 of the leader: another takes over once its lease expires (3 s), and escalates.
  const dead = all[leader]!;
  dead.proc.kill('SIGKILL');
  await dead.exited;
  const rest = all.filter((_, i) => i !== leader);
  const after = await waitFor(
    'a new leader among the two left',
    async () => {
      const v = await Promise.all(rest.map(watchdogInfo));
      return v.every((x) => x.total === 2 && x.leader === v[0]!.leader && names.includes(x.leader) && x.leader !== names[leader]) && v;
    },
    15_000,
  );
  const next = names.indexOf(after[0]!.leader);
  await waitFor('the new leader escalated', () => escalations(next).length === 1);
  t.same(after.map((v) => v.escalated).filter(Boolean).length, 1, 'one of the two says it escalated');

  // A graceful stop leaves at once (its lease revoked), well before a TTL would have.
  const leaving = rest.find((s) => s !== all[next])!;
  const name = names[all.indexOf(leaving)]!;
  leaving.proc.kill('SIGINT');
  await leaving.exited;
  // Its lease was renewed at most a loop (1 s) ago with a TTL of 3 s: a key gone now was revoked.
  const left = await etcdPost(etcd.endpoints[0]!, '/v3/kv/range', { key: Buffer.from(`/wdtest/members/${name}`).toString('base64') });
  t.notOk(left.kvs, 'its member key is gone with its revoked lease, not left to a TTL');
  await waitFor('the leader sees itself alone', async () => (await watchdogInfo(all[next]!)).total === 1, 5000);
});

t.test('without etcd: instances serve with their last view, say they are degraded, and none leads', async (t) => {
  const s = await instance(3);
  const others = running.filter((r) => r.proc.exitCode === null && r.proc.signalCode === null && r !== s);
  await waitFor('a leader', async () => (await watchdogInfo(s)).leader !== 'Not');
  // Two of three etcd members gone: etcd has no quorum, so it answers nobody.
  await etcd.stop(1);
  await etcd.stop(2);
  const degraded = await waitFor(
    'degraded',
    async () => {
      const h = (await (await fetch(`http://127.0.0.1:${s.httpPort}/health`)).json()) as { status: string; watchdog: { isLeader: boolean } };
      return h.status === 'degraded' && h;
    },
    15_000,
  );
  t.equal(degraded.watchdog.isLeader, false, 'not acting as leader');
  for (const r of [s, ...others]) {
    await waitFor('no instance acts as leader', async () => (await metric(r, 'sluice_watchdog_leader')) === 0 && (await metric(r, 'sluice_watchdog_etcd_reachable')) === 0, 10_000);
  }
  // It still serves reads and writes on the primary it knows.
  const c = new Client({ host: '127.0.0.1', port: s.port, user: 'postgres', database: 'postgres' });
  await c.connect();
  await c.query('create table if not exists wd_probe (x int)');
  await c.query('insert into wd_probe values (1)');
  t.same((await c.query('select count(*)::int as n from wd_probe')).rows, [{ n: 1 }], 'served while etcd is away');
  await c.end();
  // etcd back: a leader again, the instance healthy.
  await etcd.start(1);
  await etcd.start(2);
  await waitFor('healthy and led again', async () => {
    const h = (await (await fetch(`http://127.0.0.1:${s.httpPort}/health`)).json()) as { status: string; watchdog: { leader: string | null } };
    return h.status === 'ok' && h.watchdog.leader !== null;
  }, 20_000);
  t.pass('rejoined');
});

t.test('etcd over TLS with client certificates and a password: the instances with the right ones form a group, a wrong password leaves one degraded', async (t) => {
  const pki = await makePki();
  t.teardown(() => pki.remove());
  const tls = { ca: pki.ca, cert: pki.cert, key: pki.key };
  const secure = await startEtcd(1, tls);
  t.teardown(() => secure.destroy());
  await enableEtcdAuth(secure.endpoints[0]!, 'sluice', 'group-secret', '/secure/', tls);
  // With etcd's auth on, its gateway refuses a client certificate with a Common Name.
  const client = await clientCert(pki, 'sluice-client', '/O=sluice');
  const member = async (i: number, password: string, extra: Record<string, unknown> = {}) => {
    const s = await startCli(dir, clusterConfig(cluster, {
      work_dir: mkdtempSync(join(dir, `secure${i}-`)),
      http_port: await freePortRun(1),
      use_watchdog: true,
      etcd_endpoints: secure.endpoints,
      etcd_cacert: pki.ca,
      etcd_cert: client.cert,
      etcd_key: client.key,
      etcd_username: 'sluice',
      etcd_password: password,
      watchdog_cluster_name: 'secure',
      wd_name: `secure${i}`,
      wd_hostname: '127.0.0.1',
      wd_lease_ttl: 3,
      wd_loop_wait: 1,
      wd_retry_timeout: 1,
      ...extra,
    }), `secure${i}.toml`);
    running.push(s);
    return s;
  };
  const [a, b] = await Promise.all([member(0, 'group-secret'), member(1, 'group-secret')]);
  const views = await waitFor('two members and one leader', async () => {
    const v = await Promise.all([a, b].map(watchdogInfo));
    return v.every((x) => x.total === 2 && x.leader === v[0]!.leader && x.leader !== 'Not') && v;
  });
  t.same(views[0]!.members, ['secure0', 'secure1'], 'both registered through https and a token');
  // A restarted etcd has forgotten every token: the instances take new ones and go on.
  await secure.stop(0);
  await secure.start(0);
  const third = await member(4, 'group-secret');
  await waitFor('the first two see a third member after etcd restarted', async () => (await Promise.all([a, b].map(watchdogInfo))).every((x) => x.total === 3));
  const wrong = await member(2, 'not-the-secret');
  const h = await waitFor('the wrong password is degraded', async () => {
    const x = (await (await fetch(`http://127.0.0.1:${wrong.httpPort}/health`)).json()) as { status: string };
    return x.status === 'degraded' && x;
  });
  t.equal(h.status, 'degraded');
  const refused = await wrong.logged('etcd unreachable: serving with the last view, acting for no one');
  t.match(String(refused.err), /authentication failed/, 'its log says why');
  t.equal((await watchdogInfo(a)).total, 3, 'and it never joined');
  // Without the CA, the certificate of etcd is not trusted: the same.
  const c = await member(3, 'group-secret', { etcd_cacert: '' });
  await waitFor('an instance that does not trust etcd: degraded', async () => ((await (await fetch(`http://127.0.0.1:${c.httpPort}/health`)).json()) as { status: string }).status === 'degraded');
  for (const s of [a, b, third, wrong, c]) s.proc.kill('SIGINT');
  await Promise.all([a, b, third, wrong, c].map((s) => s.exited));
});

t.test('failover_when_quorum_exists = false: an instance cut off from etcd fails a node over on its own checks', async (t) => {
  const cut = await startForwarder(cluster.port(0));
  t.teardown(() => cut.close());
  const work = mkdtempSync(join(dir, 'alone-'));
  // etcd without its quorum (two of three members gone) answers nobody.
  await etcd.stop(1);
  await etcd.stop(2);
  const config = clusterConfig(cluster, {
    work_dir: work,
    health_check_period: 1,
    health_check_timeout: 2,
    connect_timeout: 2000,
    use_watchdog: true,
    etcd_endpoints: etcd.endpoints,
    watchdog_cluster_name: 'wdtest',
    wd_name: 'alone',
    wd_hostname: '127.0.0.1',
    wd_lease_ttl: 3,
    wd_loop_wait: 1,
    wd_retry_timeout: 1,
    failover_when_quorum_exists: false,
    failover_command: `${recordInto(join(work, 'failover.jsonl'))} %d %P`,
  }) as { backend: { port: number }[] };
  config.backend[0]!.port = cut.port;
  const s = await startCli(dir, config, 'alone.toml');
  running.push(s);
  await waitFor('it knows etcd is away', async () => (await sluicectl(s.pcpPort, passFile, 'watchdog-info')).stdout.includes('NETWORK ISOLATION'), 15_000);
  await cut.stop();
  await waitFor('failover_command ran here', () => recorded(join(work, 'failover.jsonl')).length === 1, 30_000);
  t.same(recorded(join(work, 'failover.jsonl'))[0]!.args, ['0', '0'], 'for node 0, the primary');
  t.match((await sluicectl(s.pcpPort, passFile, 'node-info', '0')).stdout, / down /, 'node 0 is down for it');
  s.proc.kill('SIGINT');
  await s.exited;
});
