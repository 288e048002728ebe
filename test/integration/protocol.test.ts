import t, { Test } from 'tap';
import { once } from 'node:events';
import { connect } from 'node:net';
import { createCluster, TestCluster } from '../helpers/cluster';
import { RawClient, serialize, fieldsOf, startupMessage } from '../helpers/raw-client';
import { startSluice, TestSluice, waitFor } from '../helpers/sluice';

// Simple and extended query, pipelines, transaction status, NOTIFY and cancel, through Sluice
// to a real primary, with node-postgres and with exact protocol bytes.

let cluster: TestCluster;
t.before(async () => {
  cluster = await createCluster(2);
});
t.teardown(() => cluster?.destroy());

async function withSluice(t: Test, overrides: Record<string, unknown> = {}): Promise<TestSluice> {
  const s = await startSluice(cluster, overrides);
  t.teardown(() => s.stop());
  return s;
}

t.test('simple and extended queries with node-postgres', async (t) => {
  const s = await withSluice(t);
  const c = await s.client();
  const r1 = await c.query('select 1 as one, $$text$$ as t');
  t.same(r1.rows, [{ one: 1, t: 'text' }]);
  const r2 = await c.query('select $1::int + $2::int as sum', [40, 2]);
  t.same(r2.rows, [{ sum: 42 }], 'unnamed prepared statement');
  const r3 = await c.query({ name: 'named', text: 'select $1::text || $2::text as s', values: ['a', 'b'] });
  const r4 = await c.query({ name: 'named', text: 'select $1::text || $2::text as s', values: ['c', 'd'] });
  t.same([r3.rows, r4.rows], [[{ s: 'ab' }], [{ s: 'cd' }]], 'named prepared statement reused');
  await t.rejects(c.query('select * from no_such_table'), { code: '42P01' });
  t.same((await c.query('select 2 as two')).rows, [{ two: 2 }], 'session goes on after an error');
});

t.test('a pipeline of extended queries in one write', async (t) => {
  const s = await withSluice(t);
  const c = await RawClient.startup(s.port);
  const before = c.readyCount();
  const msgs = [];
  for (let i = 0; i < 5; i++) {
    msgs.push(serialize.parse({ text: `select ${i} as n` }), serialize.bind({}), serialize.describe({ type: 'P' }), serialize.execute({}));
  }
  msgs.push(serialize.sync());
  msgs.push(serialize.parse({ name: 'p2', text: 'select $1::int * 2' }), serialize.bind({ statement: 'p2', values: ['21'] }), serialize.execute({}), serialize.sync());
  c.send(...msgs);
  await waitReady(c, before + 2);
  const rows = c.frames.filter((f) => f.type === 'D').map((f) => f.body.subarray(6).toString());
  t.same(rows, ['0', '1', '2', '3', '4', '42']);
  t.equal(c.frames.filter((f) => f.type === '1').length, 6, 'six ParseComplete');
  c.close();
});

t.test('a StartupMessage with queries behind it in one write: the queries run once the session started, in order', async (t) => {
  const s = await withSluice(t);
  // The first start opens its server connection (it waits); the second takes the pooled one at once.
  for (const round of ['a new server connection', 'a pooled one']) {
    const c = await RawClient.open(s.port);
    c.send(startupMessage({ user: 'postgres', database: 'postgres' }), serialize.query('select 1 as n'), serialize.query("select 'two'"), serialize.parse({ text: 'select $1::int + 1' }), serialize.bind({ values: ['2'] }), serialize.execute({}), serialize.sync());
    await waitReady(c, 4);
    const types = c.frames.map((f) => f.type).join('');
    t.match(types, /^R(S)+KZ/, `${round}: the welcome first`);
    const rows = c.frames.filter((f) => f.type === 'D').map((f) => f.body.subarray(6).toString());
    t.same(rows, ['1', 'two', '3'], `${round}: every query answered, in order`);
    t.notOk(c.frames.some((f) => f.type === 'E'), `${round}: no error`);
    c.close();
    await c.until(() => c.closed);
    await waitFor('the primary connection back in the pool', () => s.server.pool.counts(2)[0]!.idle === 1);
  }
  t.equal(s.server.pool.counts(2)[0]!.opened, 1, 'the second start took the pooled primary connection');
});

/** Waits until the client has seen n ReadyForQuery messages in all. */
async function waitReady(c: RawClient, n: number): Promise<void> {
  await c.until(() => c.readyCount() >= n);
}

t.test('transaction status in ReadyForQuery, error inside a transaction, ROLLBACK', async (t) => {
  const s = await withSluice(t);
  const c = await RawClient.startup(s.port);
  t.equal(c.lastStatus(), 'I');
  const step = async (sql: string) => {
    const n = c.readyCount();
    c.send(serialize.query(sql));
    await waitReady(c, n + 1);
    return c.lastStatus();
  };
  t.equal(await step('begin'), 'T');
  t.equal(await step('select 1/0'), 'E');
  t.equal(fieldsOf(c.frames.filter((f) => f.type === 'E').pop()!).get('C'), '22012');
  t.equal(await step('select 1'), 'E', 'still failed');
  t.equal(fieldsOf(c.frames.filter((f) => f.type === 'E').pop()!).get('C'), '25P02');
  t.equal(await step('rollback'), 'I');
  c.close();
});

t.test('LISTEN/NOTIFY reaches an idle client with the notifier pid it was given', async (t) => {
  const s = await withSluice(t);
  const listener = await s.client();
  const notifier = await s.client();
  await listener.query('listen chan');
  const got = new Promise<{ channel: string; payload?: string; processId: number }>((resolve) => listener.once('notification', resolve));
  await notifier.query("notify chan, 'hello'");
  const n = await got;
  t.equal(n.payload, 'hello');
  const notifierPid = (notifier as unknown as { processID: number }).processID;
  t.equal(n.processId, notifierPid, 'NOTIFY pid is the pid the notifier got in BackendKeyData');
  const { rows } = await notifier.query('select pg_backend_pid() as pid');
  t.equal(rows[0].pid, notifierPid, 'pg_backend_pid() agrees with BackendKeyData');
});

t.test('cancel of pg_sleep(30) returns 57014 within a second; a wrong key cancels nothing', async (t) => {
  const s = await withSluice(t);
  const c = await s.client();
  const { processID, secretKey } = c as unknown as { processID: number; secretKey: number };
  const sendCancel = async (pid: number, key: number) => {
    const raw = await RawClient.open(s.port);
    raw.send(serialize.cancel(pid, key));
    await raw.waitClosed();
  };
  // A cancel can only hit a statement the server is running: wait for it to be, then send.
  const other = await s.client();
  const running = (sql: string) =>
    waitFor(`${sql} running`, async () => (await other.query('select count(*)::int as n from pg_stat_activity where query = $1 and state = $2', [sql, 'active'])).rows[0].n > 0);
  const slow = c.query('select pg_sleep(2) as slept');
  await running('select pg_sleep(2) as slept');
  await sendCancel(processID, secretKey ^ 0x5a5a);
  await sendCancel(processID + 1, secretKey);
  t.same((await slow).rows, [{ slept: '' }], 'wrong keys, sent while it ran, cancelled nothing');

  const sleeper = c.query('select pg_sleep(30)');
  await running('select pg_sleep(30)');
  const cancelSent = Date.now();
  await sendCancel(processID, secretKey);
  await t.rejects(sleeper, { code: '57014' });
  const took = Date.now() - cancelSent;
  t.ok(took < 1000, `57014 arrived ${took} ms after the cancel`);
  t.same((await c.query('select 1 as ok')).rows, [{ ok: 1 }], 'session usable after cancel');
});

t.test('unsupported protocol, SSLRequest and GSSENCRequest answers', async (t) => {
  const s = await withSluice(t);
  const c = await RawClient.open(s.port);
  const ssl = Buffer.alloc(8);
  ssl.writeInt32BE(8, 0);
  ssl.writeInt32BE(80877103, 4);
  const got = new Promise<Buffer>((resolve) => c.socket.once('data', resolve));
  c.socket.write(ssl);
  t.equal((await got).toString(), 'N');
  c.close();

  // A 2.0 client gets the error as PostgreSQL sends it to one: in 2.0's own framing (a type
  // byte and a line of text), which the v3 framer here cannot cut; startup-refusals.test.ts
  // compares the bytes with the server's.
  const { startupMessage } = await import('../helpers/raw-client');
  const v2 = connect({ host: '127.0.0.1', port: s.port });
  const v2reply: Buffer[] = [];
  v2.on('data', (d: Buffer) => v2reply.push(d));
  await once(v2, 'connect');
  v2.write(startupMessage({ user: 'postgres' }, 0x00020000));
  await once(v2, 'close');
  t.match(Buffer.concat(v2reply).toString('latin1'), /^EFATAL: {2}unsupported frontend protocol 2\.0/);

  const newer = await RawClient.startup(s.port, { '_pq_.test': '1' });
  t.ok(newer.frames.find((f) => f.type === 'v'), 'NegotiateProtocolVersion for _pq_ options');
  t.equal(newer.lastStatus(), 'I');
  newer.close();
});

t.test('unknown database gives the server own 3D000', async (t) => {
  const s = await withSluice(t);
  await t.rejects(s.client({ database: 'no_such_db' }), { code: '3D000', message: 'database "no_such_db" does not exist' });
});
