import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import t, { Test } from 'tap';
import { createCluster, TestCluster } from '../helpers/cluster';
import { RawClient, startupMessage } from '../helpers/raw-client';
import { startSluice, TestSluice, waitFor } from '../helpers/sluice';

// The global pool, startup parameters on reused connections, the client limit, backend
// authentication, and input that must not hurt anyone.

let cluster: TestCluster;
t.before(async () => {
  cluster = await createCluster(1);
  // Users that the primary authenticates with md5 and SCRAM (the hba lines go first: first match wins).
  await cluster.psql(0, "set password_encryption = 'md5'; create user md5_user password 'md5 secret'");
  await cluster.psql(0, "set password_encryption = 'scram-sha-256'; create user scram_user password 'scram secret'");
  await cluster.sh('stop', '0');
  const { readFileSync, writeFileSync } = await import('node:fs');
  const hba = `${cluster.dir}/node0/pg_hba.conf`;
  writeFileSync(hba, 'host all md5_user 127.0.0.1/32 md5\nhost all scram_user 127.0.0.1/32 scram-sha-256\n' + readFileSync(hba, 'utf8'));
  await cluster.sh('start', '0');
});
t.teardown(() => cluster?.destroy());

async function withSluice(t: Test, overrides: Record<string, unknown> = {}): Promise<TestSluice> {
  const s = await startSluice(cluster, overrides);
  t.teardown(() => s.stop());
  return s;
}

const activeFor = async (app: string) =>
  Number(await cluster.psql(0, `select count(*) from pg_stat_activity where application_name = '${app}'`));

t.test('a client that reconnects gets the same backend connection, reset', async (t) => {
  const s = await withSluice(t);
  const pids = new Set<number>();
  for (let i = 0; i < 5; i++) {
    const c = await s.client({ application_name: 'reuse' });
    const { rows } = await c.query('select pg_backend_pid() as pid');
    pids.add(rows[0].pid);
    await c.query('create temp table scratch(x int)');
    await c.query('prepare p as select 1');
    await c.query('set work_mem = 12345');
    await c.end();
    // The backend connection is released after its reset; wait for it to be idle in the pool.
    await waitFor('connection back in the pool', () => s.server.pool.idleCount === 1);
  }
  t.equal(pids.size, 1, 'one backend pid for five sessions');
  t.equal(await activeFor('reuse'), 1, 'pg_stat_activity shows one connection');
  const c = await s.client({ application_name: 'reuse' });
  t.same((await c.query("select current_setting('work_mem') as w")).rows, [{ w: '4MB' }], 'SET was reset');
  await t.rejects(c.query('select * from scratch'), { code: '42P01' }, 'temp table was dropped');
  await t.rejects(c.query('execute p'), { code: '26000' }, 'prepared statement was deallocated');
});

t.test('client connections have TCP keepalive (set once on the listening socket, which Linux copies to each)', async (t) => {
  const s = await withSluice(t);
  const c = await s.client({ application_name: 'keepalive' });
  const { stdout } = await promisify(execFile)('ss', ['-tno', 'state', 'established', `( sport = :${s.port} )`]);
  t.match(stdout, /timer:\(keepalive,/, `the accepted socket probes an idle peer: ${stdout.trim()}`);
  await c.end();
});

t.test('an empty reset_query_list pools connections as they are, at once', async (t) => {
  const s = await withSluice(t, { reset_query_list: '' });
  const a = await s.client({ application_name: 'noreset' });
  const pid = (await a.query('select pg_backend_pid() as p')).rows[0].p;
  await a.query('set work_mem = 12345');
  await a.end();
  // Before, nothing settled an empty reset: the connection was closed after the 10 s reset timeout.
  await waitFor('connection back in the pool', () => s.server.pool.idleCount === 1, 3000);
  const b = await s.client({ application_name: 'noreset' });
  t.same((await b.query("select pg_backend_pid() as p, current_setting('work_mem') as w")).rows, [{ p: pid, w: '12345kB' }], 'the same connection, not reset');
});

t.test('startup parameters are honoured on reused connections, and RESET returns to them', async (t) => {
  const s = await withSluice(t);
  await cluster.psql(0, 'create schema if not exists app_schema');
  const opts = { application_name: 'params', options: '-c search_path=app_schema -c statement_timeout=1234' };
  const a = await s.client(opts);
  const pidA = (await a.query('select pg_backend_pid() as p')).rows[0].p;
  await a.query("set search_path = public; set application_name = 'changed'");
  await a.end();
  await waitFor('pooled', () => s.server.pool.idleCount === 1);

  const b = await s.client(opts);
  t.equal((await b.query('select pg_backend_pid() as p')).rows[0].p, pidA, 'reused');
  const show = async () => (await b.query("select current_setting('search_path') as sp, current_setting('statement_timeout') as st, current_setting('application_name') as an")).rows[0];
  t.same(await show(), { sp: 'app_schema', st: '1234ms', an: 'params' }, 'startup values, not the last session\'s');
  await b.query("set search_path = public; set statement_timeout = 5; set application_name = 'x'");
  await b.query('reset all');
  t.same(await show(), { sp: 'app_schema', st: '1234ms', an: 'params' }, 'RESET ALL returns to the startup values');
  await b.query('set search_path = public');
  await b.query('reset search_path');
  t.equal((await show()).sp, 'app_schema', 'RESET one parameter too');

  const other = await s.client({ application_name: 'params', options: '-c search_path=public' });
  t.not((await other.query('select pg_backend_pid() as p')).rows[0].p, pidA, 'different startup parameters, different connection');

  const raw = await RawClient.startup(s.port, { application_name: 'params', options: '-c search_path=app_schema -c statement_timeout=1234' });
  const status = raw.frames.filter((f) => f.type === 'S').map((f) => f.body.toString().split('\0').slice(0, 2));
  t.same(status.find(([k]) => k === 'application_name'), ['application_name', 'params'], 'ParameterStatus carries the client\'s values');
  t.ok(status.find(([k]) => k === 'server_version'), 'full ParameterStatus set');
  raw.close();
});

t.test('num_init_children: further clients wait; reserved_connections refuses with 53300', async (t) => {
  const s = await withSluice(t, { num_init_children: 2 });
  const a = await s.client();
  await s.client(); // the second session, held open
  let thirdIn = false;
  const third = s.client().then((c) => {
    thirdIn = true;
    return c;
  });
  await waitFor('third client waiting', () => s.server.registry.waitingCount === 1);
  t.notOk(thirdIn, 'third client waits while two sessions are open');
  // A waiting client that gives up leaves the line at once (its connection is still read).
  const quitter = await RawClient.open(s.port);
  quitter.send(startupMessage({ user: 'postgres', database: 'postgres' }));
  await waitFor('a fourth client waiting', () => s.server.registry.waitingCount === 2);
  quitter.close();
  await waitFor('the fourth client out of the line', () => s.server.registry.waitingCount === 1);
  await a.end();
  const c = await third;
  t.same((await c.query('select 1 as x')).rows, [{ x: 1 }], 'then gets in');

  const r = await withSluice(t, { num_init_children: 2, reserved_connections: 1 });
  await r.client();
  await t.rejects(r.client(), { code: '53300', message: 'sorry, too many clients already' });
});

t.test('backend authentication: md5 and SCRAM with the configured password; a wrong one is refused', async (t) => {
  const s = await withSluice(t, {
    user: [
      { name: 'md5_user', password: 'md5 secret' },
      { name: 'scram_user', password: 'scram secret' },
    ],
  });
  // A user Sluice holds a secret for must prove it to Sluice (no [[hba]]: method by the secret).
  await t.rejects(s.client({ user: 'md5_user', password: 'guess' }), { code: '28P01' }, 'a wrong password from the client');
  const m = await s.client({ user: 'md5_user', password: 'md5 secret' });
  t.same((await m.query('select current_user as u')).rows, [{ u: 'md5_user' }]);
  const sc = await s.client({ user: 'scram_user', password: 'scram secret' });
  t.same((await sc.query('select current_user as u')).rows, [{ u: 'scram_user' }]);

  const hashed = await withSluice(t, { user: [{ name: 'md5_user', password: 'md5' + require('node:crypto').createHash('md5').update('md5 secretmd5_user').digest('hex') }] });
  const h = await hashed.client({ user: 'md5_user', password: 'md5 secret' });
  t.same((await h.query('select 1 as one')).rows, [{ one: 1 }], 'an md5 verifier is enough for md5');

  const wrong = await withSluice(t, { user: [{ name: 'scram_user', password: 'nope' }] });
  await t.rejects(wrong.client({ user: 'scram_user', password: 'nope' }), { code: '28P01', message: 'password authentication failed for user "scram_user"' }, 'the node refuses the configured password');
  await t.rejects(wrong.client({ user: 'md5_user' }), { code: '28P01' }, 'no password configured');
});

t.test('malformed input gets 08P01 and a close; other sessions do not notice', async (t) => {
  const s = await withSluice(t, { max_message_size: 4096 });
  const bystander = await s.client();
  const inTx = await s.client();
  await inTx.query('begin');
  await inTx.query('create temp table keep(x int)');

  const huge = await RawClient.startup(s.port);
  const header = Buffer.from([0x51, 0, 0, 0, 0]);
  header.writeUInt32BE(1_000_000, 1);
  huge.send(header);
  await huge.waitClosed();
  const e = huge.errors().pop()!;
  t.equal(e.get('C'), '08P01');
  t.match(e.get('M'), /invalid message length/);

  const tiny = await RawClient.startup(s.port);
  tiny.send(Buffer.from([0x51, 0, 0, 0, 2]));
  await tiny.waitClosed();
  t.equal(tiny.errors().pop()!.get('C'), '08P01');

  // As PostgreSQL: an oversized startup packet is closed without a word, and logged.
  const badStartup = await RawClient.open(s.port);
  badStartup.send(Buffer.from([0, 0, 0xff, 0xff, 0, 3, 0, 0]));
  await badStartup.waitClosed();
  t.same(badStartup.frames, [], 'oversized startup packet: closed without a word');
  t.ok(s.logs.some((l) => l.msg === 'connection refused at startup' && l.reason === 'invalid length of startup packet'), 'and logged');

  const junk = await RawClient.open(s.port);
  junk.send(startupMessage({ user: 'postgres', database: 'postgres' }).subarray(0, 12), Buffer.from('\0\0\0\0garbage'));
  junk.close();

  const noUser = await RawClient.open(s.port);
  noUser.send(startupMessage({ database: 'postgres' }));
  await noUser.waitClosed();
  t.equal(noUser.errors().pop()!.get('C'), '28000');

  t.same((await bystander.query('select 1 as alive')).rows, [{ alive: 1 }], 'bystander unaffected');
  await inTx.query('insert into keep values (1)');
  await inTx.query('commit');
  t.same((await inTx.query('select count(*)::int as n from keep')).rows, [{ n: 1 }], 'open transaction unaffected');
});

t.test('client_idle_limit disconnects an idle client with 57P05', async (t) => {
  const s = await withSluice(t, { client_idle_limit: 1 });
  const c = await RawClient.startup(s.port);
  await c.waitClosed(5000);
  t.equal(c.errors().pop()!.get('C'), '57P05');
});
