import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import t from 'tap';
import { createCluster, TestCluster } from '../helpers/cluster';
import { startSluice, TestSluice, waitFor } from '../helpers/sluice';

// kill -9 of the primary under a write load, with a synchronous standby: the real failover.sh
// promotes the most up-to-date standby, follow_primary.sh points the other at it, writes resume,
// no acknowledged write is lost, and idle sessions carry on with their state on the new primary.

const scripts = join(__dirname, '..', '..', 'scripts');
const ARGS = '%d %h %p %D %m %H %M %P %r %R %N %S';
/** Each hook first records its placeholder values and environment verbatim, then runs the real script. */
const recorded = (hook: string, script: string) => `node ${join(__dirname, '..', 'fixtures', 'record-hook.mjs')} ${join(cluster.dir, `${hook}.jsonl`)} ${ARGS} && ${scripts}/${script} ${ARGS}`;
const calls = (hook: string) =>
  readFileSync(join(cluster.dir, `${hook}.jsonl`), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { args: string[]; env: Record<string, string> });

let cluster: TestCluster;
let sluice: TestSluice;

t.before(async () => {
  cluster = await createCluster(2);
  // PG_FAST turns synchronous_commit off; a commit must wait for one standby here.
  await cluster.psql(0, "ALTER SYSTEM SET synchronous_standby_names = 'ANY 1 (node1, node2)'");
  await cluster.psql(0, 'ALTER SYSTEM SET synchronous_commit = on');
  await cluster.psql(0, 'SELECT pg_reload_conf()');
  await waitFor('a synchronous standby', async () => (await cluster.psql(0, "select count(*) from pg_stat_replication where sync_state = 'quorum'")) === '2');
  sluice = await startSluice(cluster, {
    work_dir: cluster.dir,
    health_check_period: 1,
    health_check_timeout: 2,
    connect_timeout: 2000,
    sr_check_period: 1,
    search_primary_node_timeout: 60,
    failover_command: recorded('failover', 'failover.sh'),
    follow_primary_command: recorded('follow', 'follow_primary.sh'),
    event_command: `node ${join(__dirname, '..', 'fixtures', 'record-hook.mjs')} ${join(cluster.dir, 'events.jsonl')} %e %n %s %E %t %d`,
  });
});

t.teardown(async () => {
  await sluice?.stop();
  await cluster?.destroy();
});

interface Idle {
  c: Client;
  timeout: string;
}

/** Writes one row every 50 ms through Sluice, reconnecting after a lost session; records acks. */
function probeWriter(port: number) {
  const acked: number[] = [];
  const errors: string[] = [];
  const ackTimes: number[] = [];
  let stop = false;
  let sessionsLost = 0;
  const run = (async () => {
    let c: Client | null = null;
    let ended = false;
    for (let id = 1; !stop; id++) {
      try {
        if (!c) {
          const fresh = new Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
          c = fresh;
          ended = false;
          fresh.on('error', () => undefined);
          fresh.once('end', () => (ended = true));
          await fresh.connect();
        }
        await c.query('insert into probe values ($1)', [id]);
        acked.push(id);
        ackTimes.push(Date.now());
      } catch (e) {
        errors.push(`${(e as { code?: string }).code}: ${(e as Error).message}`);
        if (ended) {
          sessionsLost++;
          c = null;
        }
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    await c?.end().catch(() => undefined);
  })();
  return {
    acked,
    errors,
    ackTimes,
    get sessionsLost() {
      return sessionsLost;
    },
    finish: async () => {
      stop = true;
      await run;
    },
  };
}

t.test('primary killed under writes: promoted, followed, nothing acknowledged lost, idle sessions carry on', async (t) => {
  const admin = await sluice.client();
  await admin.query('create table probe (id int primary key)');

  const idle: Idle[] = [];
  for (let i = 0; i < 20; i++) {
    const c = await sluice.client();
    const timeout = `${1001 + i}ms`;
    await c.query(`set statement_timeout = '${timeout}'`);
    await c.query(`prepare twice as select $1::int * 2 + ${i}`);
    t.same((await c.query({ name: 'plus', text: 'select $1::int + 1 as v', values: [i] })).rows, [{ v: i + 1 }]);
    idle.push({ c, timeout });
  }

  const writer = probeWriter(sluice.port);
  await waitFor('writes flowing', () => writer.acked.length >= 10);
  const killedAt = Date.now();
  const ackedBefore = writer.acked.length;
  await cluster.sh('kill', '0');

  await waitFor('a write acknowledged after the kill', () => writer.ackTimes.some((at) => at > killedAt), 60_000);
  const outageMs = writer.ackTimes.find((at) => at > killedAt)! - killedAt;
  await waitFor('more writes after the failover', () => writer.acked.length >= ackedBefore + 20, 30_000);
  await writer.finish();
  t.comment(`write outage ${outageMs} ms; ${writer.errors.length} failed writes; ${writer.sessionsLost} writer sessions lost`);

  const topo = sluice.server.cluster.topology;
  const primary = topo.primaryId!;
  t.not(primary, 0, 'a standby became the primary');
  t.equal(topo.nodes[0]!.status, 'down', 'the dead primary is detached');
  const candidate = sluice.logs.find((l) => l.msg === 'promotion candidate');
  t.equal(candidate?.candidate, primary, 'the promoted node is the candidate Sluice named (the most advanced standby)');
  t.equal(await cluster.psql(primary, 'select pg_is_in_recovery()'), 'f', 'failover.sh really promoted it');

  const other = primary === 1 ? 2 : 1;
  await waitFor(
    'the other standby follows the new primary',
    async () => (await cluster.psql(other, 'select sender_port from pg_stat_wal_receiver where status = \'streaming\'').catch(() => '')) === String(cluster.port(primary)),
    60_000,
  );
  await waitFor('the follower serves again', () => topo.nodes[other]!.status === 'up' && !topo.nodes[other]!.following, 30_000);

  const present = await cluster.psql(primary, `select count(*) from probe where id in (${writer.acked.join(',')})`);
  t.equal(Number(present), writer.acked.length, `all ${writer.acked.length} acknowledged writes are on the new primary`);

  for (const [i, s] of idle.entries()) {
    t.same((await s.c.query('show statement_timeout')).rows, [{ statement_timeout: s.timeout }], `session ${i}: its SET survived`);
    t.same((await s.c.query('execute twice(5)')).rows, [{ '?column?': 10 + i }], `session ${i}: its PREPARE survived`);
    t.same((await s.c.query({ name: 'plus', text: 'select $1::int + 1 as v', values: [i] })).rows, [{ v: i + 1 }], `session ${i}: its protocol-level statement works`);
  }
  // An idle session that survived writes on the new primary.
  await idle[0]!.c.query('insert into probe values (-1)');
  t.equal(await cluster.psql(primary, 'select count(*) from probe where id = -1'), '1', 'a surviving idle session writes, and the write is on the new primary');

  // The hooks' placeholders, verbatim: failed node, new main, old main, old primary.
  const p = (n: number) => String(cluster.port(n));
  const dir = (n: number) => join(cluster.dir, `node${n}`);
  const failover = calls('failover');
  t.equal(failover.length, 1, 'failover_command ran once');
  t.same(failover[0]!.args, ['0', '127.0.0.1', p(0), dir(0), String(primary), '127.0.0.1', '0', '0', p(primary), dir(primary), '127.0.0.1', p(0)], 'failover_command: every placeholder verbatim');
  t.match(failover[0]!.env, { SLUICE_FAILED_NODE_ID: '0', SLUICE_NEW_MAIN_NODE_ID: String(primary), SLUICE_OLD_PRIMARY_NODE_ID: '0', SLUICE_OLD_PRIMARY_PORT: p(0) });
  const follow = calls('follow');
  t.same(follow.map((c) => c.args[0]), [String(other)], 'follow_primary_command ran once, for the other standby');
  t.same(follow[0]!.args.slice(4, 10), [String(primary), '127.0.0.1', '0', '0', p(primary), dir(primary)], 'follow_primary_command: the new primary, the old one');
  t.equal((await admin.query('select count(*)::int as n from probe')).rows[0].n >= writer.acked.length, true, 'the admin session carries on too');

  // event_command: the failover's events, in order, each with the epoch its change made.
  await sluice.server.eventCommand.drained();
  const all = calls('events');
  const start = all.findIndex((e) => e.args[0] === 'failover');
  t.same(all.slice(0, start).map((e) => e.args.slice(0, 2)), [['new_primary', '0']], 'before it, only the primary found at start-up');
  const events = all.slice(start);
  t.same(events.map((e) => e.args.slice(0, 3)), [['failover', '0', '1'], ['new_primary', String(primary), '1'], ['follow', String(other), '1']], 'failover, new primary, follow: in order, all succeeded');
  const epochs = events.map((e) => Number(e.args[3]));
  t.ok(epochs[0]! > 0 && epochs[1]! > epochs[0]! && epochs[2]! >= epochs[1]!, `the epoch grows with the changes (${epochs.join(', ')})`);
  t.equal(failover[0]!.env.SLUICE_EPOCH, String(epochs[0]), 'failover_command had the same epoch');
  t.match(events[0]!.env, { SLUICE_EVENT: 'failover', SLUICE_EVENT_NODE_ID: '0', SLUICE_EPOCH: String(epochs[0]) });
  t.match(events[0]!.args[5], /^node 0 detached \(was primary\)/, 'the detail');
  t.ok(!Number.isNaN(Date.parse(events[0]!.args[4]!)), 'the time');
});
