import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';
import type { Client } from 'pg';
import { fieldsOf, RawClient, serialize } from '../helpers/raw-client';
import { clusterWithSluice, startSluice, waitFor } from '../helpers/sluice';
import { parseExposition, sampleValue } from '../helpers/prometheus';

// Transaction mode: twenty clients on a pool of two server connections, each borrowing one per
// transaction. What a session did must follow it to every connection it borrows (its settings,
// SQL and protocol prepared statements), never leak to another client, and what cannot move
// (temporary tables, advisory locks, LISTEN) keeps the session on its connection.

const run = promisify(execFile);
const POOL = 2;
const env = clusterWithSluice(1, { weights: [1, 0], pool_mode: 'transaction', default_pool_size: POOL, query_wait_timeout: 30 });

/** The server connections Sluice holds to the primary for the test's (database, user): not its health checks' ('sluice'). */
const serverConnections = () => env.cluster.psql(0, "select count(*) from pg_stat_activity where backend_type = 'client backend' and usename = 'postgres' and application_name <> 'sluice' and pid <> pg_backend_pid()");

/** Runs a simple Query on a raw client: the first column of each row, up to its ReadyForQuery. */
async function rawValues(c: RawClient, sql: string): Promise<string[]> {
  const from = c.frames.length;
  c.send(serialize.query(sql));
  await c.until((f) => f.type === 'Z', 10_000, from);
  const got = c.frames.slice(from);
  const error = got.find((f) => f.type === 'E');
  if (error) throw new Error(`${sql}: ${fieldsOf(error).get('M')}`);
  return got.filter((f) => f.type === 'D').map((f) => f.body.subarray(6, 6 + f.body.readInt32BE(2)).toString());
}

/** A ParameterStatus frame as name=value. */
function statusOf(f: { body: Buffer }): string {
  const [name, value] = f.body.toString().split('\0');
  return `${name}=${value}`;
}

/** A DataRow's columns, joined with '|'. */
function rowText(f: { body: Buffer }): string {
  const n = f.body.readInt16BE(0);
  const out: string[] = [];
  let at = 2;
  for (let i = 0; i < n; i++) {
    const len = f.body.readInt32BE(at);
    out.push(len < 0 ? 'NULL' : f.body.subarray(at + 4, at + 4 + len).toString());
    at += 4 + Math.max(0, len);
  }
  return out.join('|');
}

async function clients(n: number): Promise<Client[]> {
  const out: Client[] = [];
  for (let i = 0; i < n; i++) out.push(await env.sluice.client());
  return out;
}

t.test('twenty clients on two connections each keep their own settings and prepared statements', async (t) => {
  const cs = await clients(20);
  const pids = new Set<number>();
  await Promise.all(cs.map((c, i) => c.query(`set work_mem = '${i + 1}MB'`)));
  await Promise.all(cs.map((c, i) => c.query(`prepare own_${i} as select $1::int * ${i + 1} as v`)));
  for (let round = 0; round < 5; round++) {
    const rows = await Promise.all(
      cs.map(async (c, i) => {
        const wm = (await c.query('show work_mem')).rows[0].work_mem as string;
        const sqlPrepared = (await c.query(`execute own_${i}(${round})`)).rows[0].v as number;
        const protocol = (await c.query({ name: 'shared_name', text: `select $1::int + ${i} as v`, values: [round] })).rows[0].v as number;
        pids.add((await c.query('select pg_backend_pid() as p')).rows[0].p as number);
        return [wm, sqlPrepared, protocol];
      }),
    );
    t.same(
      rows,
      cs.map((_, i) => [`${i + 1}MB`, round * (i + 1), round + i]),
      `round ${round}: every client sees its own setting and statements`,
    );
  }
  t.ok(pids.size <= POOL, `the statements ran on ${pids.size} server connections`);
  t.ok(Number(await serverConnections()) <= POOL, 'the primary holds at most default_pool_size connections for them');
  await Promise.all(cs.map((c) => c.end()));
});

t.test('a rolled-back SET, RESET ALL and DISCARD ALL behave as on one server, and never leak', async (t) => {
  const [a, b] = await clients(2);
  await a!.query("set statement_timeout = '7s'");
  await a!.query('begin');
  await a!.query("set statement_timeout = '9s'");
  await a!.query('rollback');
  t.equal((await b!.query('show statement_timeout')).rows[0].statement_timeout, '0', 'the other client never sees it');
  t.equal((await a!.query('show statement_timeout')).rows[0].statement_timeout, '7s', 'the rolled-back SET is undone');
  await a!.query('reset all');
  t.equal((await a!.query('show statement_timeout')).rows[0].statement_timeout, '0', 'RESET ALL');
  await a!.query("set search_path = 'nowhere'");
  await a!.query('prepare gone as select 1');
  await a!.query('discard all');
  t.equal((await a!.query('show search_path')).rows[0].search_path, '"$user", public', 'DISCARD ALL resets settings');
  await t.rejects(a!.query('execute gone'), /prepared statement "gone" does not exist/, 'and prepared statements');
  await a!.end();
  await b!.end();
});

t.test('set_config() is carried as SET is and never leaks; a call that cannot be replayed keeps the session on its connection', async (t) => {
  const [a, b, c] = await clients(3);
  // PostgreSQL's namespace.sql does this; another client once got the empty search_path.
  await a!.query("select pg_catalog.set_config('search_path', ' ', false)");
  await a!.query("set myapp.a = 'one'");
  await a!.query("set myapp.b = 'two'");
  // A custom setting once defined stays on its server process, empty after DISCARD ALL ('' not NULL).
  const read = async (x: Client) => (await x.query("select current_setting('search_path') as p, nullif(current_setting('myapp.a', true), '') as a, nullif(current_setting('myapp.b', true), '') as b")).rows[0];
  // Two transactions at once hold both connections, the one a used among them.
  await Promise.all([b!.query('begin'), c!.query('begin')]);
  for (const x of [b!, c!]) t.same(await read(x), { p: '"$user", public', a: null, b: null }, 'another client sees none of it');
  await Promise.all([b!.query('commit'), c!.query('commit')]);
  t.same(await read(a!), { p: ' ', a: 'one', b: 'two' }, 'the session has all of it on the connection it borrows next');
  await a!.query('reset all');
  // A value the statement computes (a parameter here) cannot be replayed: the session keeps its connection.
  await a!.query("select set_config('myapp.user', $1, false)", ['alice']);
  const pid = (await a!.query('select pg_backend_pid() as p')).rows[0].p as number;
  // The other clients, many times over, run on the connection left (the pool has two).
  for (let i = 0; i < 3; i++) {
    const seen = await Promise.all([b!, c!].map(async (x) => (await x.query("select pg_backend_pid() as p, nullif(current_setting('myapp.user', true), '') as u")).rows[0]));
    t.ok(seen.every((r) => r.p !== pid && r.u === null), `round ${i}: on another connection, without the setting`);
  }
  t.same((await a!.query("select pg_backend_pid() as p, current_setting('myapp.user') as u")).rows[0], { p: pid, u: 'alice' }, 'the session stays on its connection, with its setting');
  t.ok((await b!.query('show pool_processes')).rows.some((r) => r.status === 'Idle (pinned: set_config())'), 'SHOW POOL_PROCESSES says why');
  await a!.query('discard all');
  await Promise.all([a!, b!, c!].map((x) => x.end()));
});

t.test('a temporary table and a session advisory lock keep the session on its connection, shown by the admin views, until DISCARD ALL or pg_advisory_unlock_all', async (t) => {
  // One pinned client at a time: a pool of two, and the other clients need the second one.
  for (const pin of ['temporary table', 'advisory lock'] as const) {
    const [held, other] = await clients(2);
    t.teardown(() => Promise.all([held!.end(), other!.end()]).then(() => undefined, () => undefined));
    if (pin === 'temporary table') {
      await held!.query('create temp table mine (x int)');
      await held!.query('insert into mine values (1)');
    } else {
      await held!.query('select pg_advisory_lock(4242)');
    }
    const pid = (await held!.query('select pg_backend_pid() as p')).rows[0].p as number;
    // Other clients run meanwhile on the connection left, many times over.
    const others = await clients(5);
    for (let i = 0; i < 3; i++) await Promise.all([other!, ...others].map((c) => c.query('select 1')));
    await Promise.all(others.map((c) => c.end()));
    t.equal((await held!.query('select pg_backend_pid() as p')).rows[0].p, pid, `${pin}: the session stays on its connection`);
    if (pin === 'temporary table') t.same((await held!.query('select x from mine')).rows, [{ x: 1 }], 'its temporary table is still there');
    else t.same((await held!.query('select pg_advisory_unlock(4242) as u')).rows, [{ u: true }], 'it can unlock what it locked');
    const metrics = parseExposition((await env.sluice.server.metrics.scrape()).body);
    t.equal(sampleValue(metrics, 'sluice_session_pins_total', { reason: pin }), 1, `${pin}: counted`);
    t.ok(env.sluice.logs.some((l) => l.msg === 'session pinned to its server connection' && l.reason === pin), `${pin}: logged with its reason`);
    const statuses = async (show: string, column: string) => (await other!.query(show)).rows.map((r) => r[column] as string);
    t.ok((await statuses('show pool_processes', 'status')).includes(`Idle (pinned: ${pin})`), `${pin}: SHOW POOL_PROCESSES says why the session keeps its connection`);
    t.ok((await statuses('show pool_pools', 'status')).includes(`Idle (pinned: ${pin})`), `${pin}: and SHOW POOL_POOLS (pcp_proc_info's rows)`);
    // What pinned it is gone for certain: the connection is lent again (two clients in
    // transactions at once get both connections, the held one's among them).
    await held!.query(pin === 'temporary table' ? 'discard all' : 'select pg_advisory_unlock_all()');
    t.notOk((await statuses('show pool_processes', 'status')).some((st) => st.includes('pinned')), `${pin}: the pin is lifted`);
    const pair = await clients(2);
    await Promise.all(pair.map((c) => c.query('begin')));
    const pids = await Promise.all(pair.map(async (c) => (await c.query('select pg_backend_pid() as p')).rows[0].p as number));
    await Promise.all(pair.map((c) => c.query('commit').then(() => c.end())));
    t.ok(pids.includes(pid), `${pin}: its connection serves other clients again (${pids.join(', ')}; it was ${pid})`);
    await held!.end();
    await other!.end();
  }
});

t.test('LISTEN/NOTIFY: twenty listeners on two pooled connections hold none; each hears every notification as directly, a NOTIFY in a transaction at its commit', async (t) => {
  const listeners = await clients(20);
  const [notifier, other] = await clients(2);
  const heard = listeners.map(() => [] as { channel: string; payload?: string; processId: number }[]);
  listeners.forEach((c, i) => c.on('notification', (n) => heard[i]!.push({ channel: n.channel, payload: n.payload, processId: n.processId })));
  await Promise.all(listeners.map((c) => c.query('listen tx_channel')));
  await listeners[0]!.query('LISTEN "Other Channel"');
  // Nobody is pinned: the two pooled connections serve everyone (a listener's transaction included).
  t.notOk((await other!.query('show pool_processes')).rows.some((r) => String(r.status).includes('pinned')), 'no listener is pinned');
  await Promise.all(listeners.map((c) => c.query('select 1')));
  const pid = async (c: Client) => (await c.query('select pg_backend_pid() as p')).rows[0].p as number;
  await notifier!.query("notify tx_channel, 'one'");
  await notifier!.query('begin');
  const inTx = await pid(notifier!);
  await notifier!.query("notify tx_channel, 'two'");
  // A later transaction's NOTIFY, committed first, is heard first; 'two' waits for its commit.
  await other!.query("notify tx_channel, 'three'");
  await waitFor('every listener hears one and three', () => heard.every((h) => h.length === 2));
  t.same(heard.map((h) => h.map((n) => n.payload)), heard.map(() => ['one', 'three']), 'not before its commit');
  await notifier!.query('commit');
  await waitFor('every listener hears two', () => heard.every((h) => h.length === 3));
  t.same(heard.map((h) => h.map((n) => [n.channel, n.payload])), heard.map(() => [['tx_channel', 'one'], ['tx_channel', 'three'], ['tx_channel', 'two']]), 'every listener: channels and payloads in commit order');
  t.ok(heard.every((h) => h[2]!.processId === inTx), "with the notifying server process's id, as PostgreSQL sends it");
  await other!.query(`notify "Other Channel", 'quoted'`);
  await waitFor('the quoted channel', () => heard[0]!.length === 4);
  t.same([heard[0]![3]!.channel, heard[0]![3]!.payload], ['Other Channel', 'quoted'], 'a quoted channel name keeps its case');
  t.ok(heard.slice(1).every((h) => h.length === 3), 'and reaches only who listens on it');
  // UNLISTEN, UNLISTEN * and DISCARD ALL stop a client's notifications; the others go on.
  await listeners[1]!.query('unlisten tx_channel');
  await listeners[2]!.query('unlisten *');
  await listeners[3]!.query('discard all');
  // An UNLISTEN inside a transaction runs on the server connection: it stops the shared one's too.
  await listeners[4]!.query('begin');
  await listeners[4]!.query('unlisten tx_channel');
  await listeners[4]!.query('commit');
  await other!.query("notify tx_channel, 'four'");
  await waitFor('the rest hear four', () => heard.filter((h) => h.at(-1)?.payload === 'four').length === 16);
  t.same([1, 2, 3, 4].map((i) => heard[i]!.length), [3, 3, 3, 3], 'UNLISTEN, UNLISTEN *, DISCARD ALL, an UNLISTEN in a transaction: nothing more');
  // Two clients LISTEN on a new channel at once: both answers wait until the server listens.
  await Promise.all([listeners[5]!.query('listen race'), listeners[6]!.query('listen race')]);
  await other!.query("notify race, 'both'");
  await waitFor('both hear race', () => [5, 6].every((i) => heard[i]!.at(-1)?.channel === 'race'));
  t.pass('two LISTENs of one new channel at once: both hear its first NOTIFY');
  // A pinned session's LISTEN goes to its own connection, where pg_listening_channels() sees it.
  await listeners[7]!.query('create temp table pinned_here (x int)');
  await listeners[7]!.query('listen own_channel');
  t.same((await listeners[7]!.query('select pg_listening_channels() as c')).rows, [{ c: 'own_channel' }], 'a pinned session lists its channel as directly');
  t.equal(Number(await serverConnections()), POOL + 1, 'the pool and one shared listening connection');
  await Promise.all([...listeners, notifier!, other!].map((c) => c.end()));
});

t.test('sequence values (currval, lastval) stay with their session and never reach another', async (t) => {
  await env.cluster.psql(0, 'create sequence if not exists tx_seq');
  const [a, b, c] = await clients(3);
  const pid = async (x: Client) => (await x.query('select pg_backend_pid() as p')).rows[0].p as number;
  // c holds one of the two connections in a transaction; a's nextval takes the other.
  await c!.query('begin');
  const cPid = await pid(c!);
  const v = (await a!.query("select nextval('tx_seq') as v")).rows[0].v as string;
  const aPid = await pid(a!);
  t.not(aPid, cPid, 'a runs on the other connection');
  await c!.query('commit');
  // Both connections idle now: b takes the one that carries nothing of a's.
  t.equal(await pid(b!), cPid, 'another client borrows the connection a left nothing on');
  t.same((await a!.query("select currval('tx_seq') as c, lastval() as l")).rows, [{ c: v, l: v }], "a's currval and lastval are its own, on the connection it left them on");
  // Now b can only borrow the connection a's value is on: it must not see it.
  await c!.query('begin');
  await t.rejects(b!.query("select currval('tx_seq')"), { code: '55000', message: /currval of sequence "tx_seq" is not yet defined in this session/ }, "b never sees a's value");
  t.equal(await pid(b!), aPid, "b ran on a's connection");
  await c!.query('commit');
  await Promise.all([a!.end(), b!.end(), c!.end()]);
});

t.test('a client that vanishes in a transaction, mid-result, mid-COPY or mid-batch leaves its connection rolled back, drained and pooled', async (t) => {
  await env.cluster.psql(0, 'create table if not exists vanish (x int)');
  const frame = (type: string) => (f: { type: string }) => f.type === type;
  const cases: [string, (c: RawClient) => Promise<void>][] = [
    ['in a transaction', async () => undefined],
    ['mid-result', async (c) => {
      const from = c.frames.length;
      c.send(serialize.query('select g from generate_series(1, 10000000) g'));
      await c.until(frame('D'), 10_000, from);
    }],
    ['mid-COPY from the client', async (c) => {
      const from = c.frames.length;
      c.send(serialize.query('copy vanish from stdin'), serialize.copyData(Buffer.from('2\n')));
      await c.until(frame('G'), 10_000, from);
    }],
    ['mid-batch, its statement running, no Sync', async (c) => {
      c.send(serialize.parse({ text: 'select pg_sleep(30)' }), serialize.bind(), serialize.execute(), serialize.flush());
      await waitFor('the sleep running', async () => (await env.cluster.psql(0, "select count(*) from pg_stat_activity where query = 'select pg_sleep(30)' and state = 'active'")) === '1');
    }],
  ];
  for (const [what, leave] of cases) {
    const c = await RawClient.startup(env.sluice.port);
    const from = c.frames.length;
    c.send(serialize.query('begin; insert into vanish values (1); select pg_backend_pid()'));
    const row = await c.until(frame('D'), 10_000, from);
    await c.until(frame('Z'), 10_000, from);
    const pid = row.body.subarray(6).toString();
    await leave(c);
    c.close();
    await waitFor(`${what}: its server connection idle again`, async () => (await env.cluster.psql(0, `select state from pg_stat_activity where pid = ${pid}`)) === 'idle');
    // Both pooled connections at once (clients with the same startup parameters, so the same
    // pool key): the vanished client's is one of them, and clean.
    const both = await Promise.all([RawClient.startup(env.sluice.port), RawClient.startup(env.sluice.port)]);
    await Promise.all(both.map((b) => rawValues(b, 'begin')));
    const seen = await Promise.all(both.map((b) => rawValues(b, 'select pg_backend_pid(); select count(*) from vanish; show transaction_isolation')));
    await Promise.all(both.map((b) => rawValues(b, 'commit').then(() => b.close())));
    t.ok(seen.some(([p]) => String(p) === pid), `${what}: the connection went back to the pool (pids ${seen.map(([p]) => p).join(', ')}, vanished ${pid})`);
    t.same(seen.map(([, n, iso]) => [n, iso]), [['0', 'read committed'], ['0', 'read committed']], `${what}: rolled back, and nothing of it reaches the next client`);
  }
});

t.test("a cancel stops its client's statement and never another client's on the same connections", async (t) => {
  const [sleeper, busy, watcher] = await clients(3);
  const { processID, secretKey } = sleeper as unknown as { processID: number; secretKey: number };
  const sleeping = sleeper!.query('select pg_sleep(30)');
  await waitFor('the sleep running', async () => (await env.cluster.psql(0, "select count(*) from pg_stat_activity where query = 'select pg_sleep(30)' and state = 'active'")) === '1');
  // The other client keeps borrowing the second connection while the cancel is on its way.
  let stop = false;
  const loop = (async () => {
    let n = 0;
    while (!stop) n += (await busy!.query('select pg_sleep(0.001), 1 as one')).rows.length;
    return n;
  })();
  const raw = await RawClient.open(env.sluice.port);
  raw.send(serialize.cancel(processID, secretKey));
  await raw.waitClosed();
  await t.rejects(sleeping, { code: '57014' }, 'the sleeping client gets 57014');
  // After the cancel, the sleeper's old connection serves others; none of their statements is hit.
  for (let i = 0; i < 20; i++) await watcher!.query('select pg_sleep(0.001)');
  stop = true;
  t.ok((await loop) > 0, 'the other client ran throughout, never cancelled');
  t.same((await sleeper!.query('select 1 as ok')).rows, [{ ok: 1 }], 'the cancelled client goes on');
  await Promise.all([sleeper!.end(), busy!.end(), watcher!.end()]);
});

t.test('ParameterStatus as a direct connection sends it: once for a SET, none for a change of connection', async (t) => {
  const statuses = async (port: number) => {
    const c = await RawClient.startup(port);
    const others = await clients(2);
    try {
      const seen = () => c.frames.filter((f) => f.type === 'S').length;
      const atStart = seen();
      c.send(serialize.query("set application_name = 'seen_once'"));
      await c.until(() => c.readyCount() === 2);
      // The other clients take the connections; this client's next statements borrow again.
      await Promise.all(others.map((o) => o.query("set application_name = 'someone_else'; select pg_sleep(0.05)")));
      for (let i = 0; i < 3; i++) {
        c.send(serialize.query('select 1'));
        await c.until(() => c.readyCount() === 3 + i);
      }
      return { atStart, after: seen() - atStart };
    } finally {
      c.close();
      await Promise.all(others.map((o) => o.end()));
    }
  };
  const direct = await statuses(env.cluster.port(0));
  const through = await statuses(env.sluice.port);
  t.same(through, direct, `ParameterStatus messages: ${JSON.stringify(through)} through Sluice, ${JSON.stringify(direct)} direct`);
});

t.test("startup settings: clients that differ in application_name, TimeZone and DateStyle share the pool's connections, each with its own values", async (t) => {
  const pg = await import('pg');
  const cs: Client[] = [];
  for (let i = 0; i < 8; i++) {
    const c = new pg.default.Client({ port: env.sluice.port, host: '127.0.0.1', user: 'postgres', database: 'postgres', application_name: `app_${i}` });
    await c.connect();
    cs.push(c);
  }
  // TimeZone and DateStyle as libpq sends them at startup for PGTZ and PGDATESTYLE.
  const raw = await Promise.all([0, 1, 2, 3].map((i) => RawClient.startup(env.sluice.port, { application_name: `raw_${i}`, TimeZone: `Etc/GMT-${i + 1}`, DateStyle: i % 2 ? 'SQL, DMY' : 'ISO, YMD' })));
  t.teardown(() => raw.forEach((r) => r.close()));
  const settings = "select current_setting('application_name') || '|' || current_setting('TimeZone') || '|' || current_setting('DateStyle')";
  const opened = async () => sampleValue(parseExposition((await env.sluice.server.metrics.scrape()).body), 'sluice_backend_connections_opened_total', { node: '0' }) ?? 0;
  const openedBefore = await opened();
  for (let round = 0; round < 4; round++) {
    const got = await Promise.all([...cs.map(async (c) => (await c.query('show application_name')).rows[0].application_name as string), ...raw.map(async (r) => (await rawValues(r, settings))[0])]);
    t.same(
      got,
      [...cs.map((_, i) => `app_${i}`), ...raw.map((_, i) => `raw_${i}|Etc/GMT-${i + 1}|${i % 2 ? 'SQL, DMY' : 'ISO, YMD'}`)],
      `round ${round}: each client has its own startup values`,
    );
  }
  // Pooled by startup parameters, each transaction would close a connection of another client's
  // parameters to open one of its own.
  t.ok((await opened()) - openedBefore <= POOL, `${(await opened()) - openedBefore} server connections opened for 4 rounds of 12 clients`);
  await Promise.all(cs.map((c) => c.end()));
});

t.test('RESET, SET TO DEFAULT, RESET ALL and DISCARD ALL return to the startup values, with the ParameterStatus messages a direct connection sends', async (t) => {
  const startup = { application_name: 'started_as', TimeZone: 'Asia/Tokyo', DateStyle: 'SQL, DMY' };
  const steps = [
    "set application_name = 'changed'",
    'reset application_name',
    "set timezone = 'UTC'; set datestyle = 'ISO'",
    'set timezone to default',
    "set application_name = 'again'; set datestyle = 'German'",
    'reset all',
    "set timezone = 'UTC'; set application_name = 'once_more'",
    'discard all',
    "begin; reset all; rollback",
    "set application_name = 'x'; select 1/0; reset all",
  ];
  const transcript = async (port: number) => {
    const c = await RawClient.startup(port, startup);
    const others = await clients(2);
    try {
      const lines: string[] = [c.frames.filter((f) => f.type === 'S').map(statusOf).join(' ')];
      for (const sql of steps) {
        // Other clients borrow the connections between steps.
        await Promise.all(others.map((o) => o.query("set application_name = 'someone_else'; select pg_sleep(0.02)")));
        const from = c.frames.length;
        c.send(serialize.query(sql));
        c.send(serialize.query("select current_setting('application_name') || '|' || current_setting('TimeZone') || '|' || current_setting('DateStyle')"));
        await c.until(() => c.frames.slice(from).filter((f) => f.type === 'Z').length === 2);
        const got = c.frames.slice(from);
        lines.push(`${sql} => ${got.map((f) => (f.type === 'S' ? statusOf(f) : f.type === 'D' ? rowText(f) : f.type)).join(' ')}`);
      }
      return lines;
    } finally {
      c.close();
      await Promise.all(others.map((o) => o.end()));
    }
  };
  const direct = await transcript(env.cluster.port(0));
  const through = await transcript(env.sluice.port);
  t.same(through, direct, 'the same messages, in the same order, with the same values');
});

t.test('a startup setting the server refuses ends the start as a direct connection does', async (t) => {
  const refused = async (port: number) => {
    const c = await RawClient.startup(port, { DateStyle: 'bogus' });
    try {
      const e = c.frames.find((f) => f.type === 'E');
      const f = e ? fieldsOf(e) : new Map<string, string>();
      return [f.get('S'), f.get('C'), f.get('M'), f.get('D')];
    } finally {
      c.close();
    }
  };
  t.same(await refused(env.sluice.port), await refused(env.cluster.port(0)));
});

t.test('max_prepared_statements: a server connection keeps at most that many; a statement closed there is parsed again where it runs', async (t) => {
  const sluice = await startSluice(env.cluster, { weights: [1, 0], pool_mode: 'transaction', default_pool_size: 1, max_prepared_statements: 3 });
  t.teardown(() => sluice.stop());
  const [a, b] = [await sluice.client(), await sluice.client()];
  // Six statements each, on one server connection that keeps three: every round evicts.
  for (let round = 0; round < 3; round++) {
    const got = await Promise.all(
      [a, b].map(async (c, who) => {
        const out: number[] = [];
        for (let i = 0; i < 6; i++) out.push((await c.query({ name: `s${i}`, text: `select $1::int + ${i} + ${who * 100} as v`, values: [round] })).rows[0].v as number);
        return out;
      }),
    );
    t.same(got, [0, 1].map((who) => [0, 1, 2, 3, 4, 5].map((i) => round + i + who * 100)), `round ${round}: every statement answers as its own client prepared it`);
  }
  // A session with no statements of its own reads the connection's (Sluice adds none to the view).
  const c = await sluice.client();
  const held = Number((await c.query('select count(*) as n from pg_prepared_statements')).rows[0].n);
  t.ok(held <= 3, `the server connection holds ${held} prepared statements`);
  await Promise.all([a.end(), b.end(), c.end()]);
  const conn = ['-h', '127.0.0.1', '-p', String(sluice.port), '-U', 'postgres', 'postgres'];
  await run('pgbench', ['-i', '-q', '-h', '127.0.0.1', '-p', String(env.cluster.port(0)), '-U', 'postgres', 'postgres']);
  const { stdout } = await run('pgbench', ['-n', '-c', '8', '-j', '2', '-t', '20', '-M', 'prepared', ...conn], { maxBuffer: 1 << 24 });
  t.equal(Number(/number of failed transactions: (\d+)/.exec(stdout)?.[1]), 0, 'pgbench TPC-B -M prepared (seven statements) on a connection that keeps three: none failed');
});

t.test('[[pool]]: transaction mode for one user, session mode (the global pool_mode) for another', async (t) => {
  await env.cluster.psql(0, "do $$ begin if not exists (select from pg_roles where rolname = 'tx_user') then create role tx_user login; end if; end $$");
  const sluice = await startSluice(env.cluster, { weights: [1, 0], pool_mode: 'session', default_pool_size: 1, pool: [{ user: 'tx_user', pool_mode: 'transaction' }] });
  t.teardown(() => sluice.stop());
  const pid = async (c: Client) => (await c.query('select pg_backend_pid() as p')).rows[0].p as number;
  const lending = await Promise.all([1, 2, 3].map(() => sluice.client({ user: 'tx_user' })));
  const lent = new Set<number>();
  for (const c of lending) lent.add(await pid(c));
  t.equal(lent.size, 1, 'three tx_user clients take turns on one server connection (default_pool_size 1)');
  const keeping = await Promise.all([1, 2].map(() => sluice.client()));
  const kept = await Promise.all(keeping.map(pid));
  t.equal(new Set(kept).size, 2, 'two postgres clients hold a connection each, as pgpool does');
  t.same(await Promise.all(keeping.map(pid)), kept, 'and keep it');
  t.notOk(kept.some((p) => lent.has(p)), 'the pools are apart');
  await Promise.all([...lending, ...keeping].map((c) => c.end()));
});

t.test('pgbench with 100 clients on 10 server connections: zero failed transactions', async (t) => {
  const sluice = await startSluice(env.cluster, { weights: [1, 0], pool_mode: 'transaction', default_pool_size: 10 });
  t.teardown(() => sluice.stop());
  const conn = ['-h', '127.0.0.1', '-p', String(sluice.port), '-U', 'postgres', 'postgres'];
  await run('pgbench', ['-i', '-q', '-h', '127.0.0.1', '-p', String(env.cluster.port(0)), '-U', 'postgres', 'postgres']);
  for (const args of [['-M', 'simple'], ['-M', 'extended'], ['-M', 'prepared'], ['-S', '-M', 'simple'], ['-S', '-M', 'prepared']]) {
    const { stdout } = await run('pgbench', ['-n', '-c', '100', '-j', '2', '-t', '20', ...args, ...conn], { maxBuffer: 1 << 24 });
    t.equal(Number(/number of failed transactions: (\d+)/.exec(stdout)?.[1]), 0, `pgbench ${args.join(' ')}: none failed`);
    t.match(stdout, /number of transactions actually processed: 2000\/2000/);
  }
  const opened = sluice.server.poolCounts()[0]!.opened;
  t.ok(opened <= 10, `${opened} server connections opened for 10,000 transactions of 100 clients`);
});
