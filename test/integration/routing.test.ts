import t from 'tap';
import type { Client } from 'pg';
import { createCluster, TestCluster } from '../helpers/cluster';
import { RawClient, serialize } from '../helpers/raw-client';
import { startSluice, TestSluice, waitFor } from '../helpers/sluice';

// The routing table, in the manner of pgpool's 001.load_balance: every statement echoes
// "DB node id: N statement: ..." (notice_per_node_statement), and each must reach the node its
// class allows. Weights 0:1:0 make node 1 the load-balance node of every session, so "S" means
// node 1 and "P" the primary, node 0.

let cluster: TestCluster;

t.before(async () => {
  cluster = await createCluster(2);
  await cluster.psql(
    0,
    `create table t (a int);
     insert into t select generate_series(1, 10);
     create sequence s;
     create unlogged table u (a int);
     create function f_vol() returns int volatile language sql as 'select 1';
     create function f_stable() returns int stable language sql as 'select 2';
     create function f_listed() returns int stable language sql as 'select 3';`,
  );
  // Both standbys must have replayed the setup before reads go there.
  for (const n of [1, 2]) await waitFor(`node ${n} has the setup`, async () => (await cluster.psql(n, "select count(*) from pg_proc where proname = 'f_listed'")) === '1', 20_000);
});
t.teardown(() => cluster?.destroy());

interface Traced {
  c: Client;
  nodes: number[];
  /** Runs a statement and returns the nodes it was sent to (from the notices). */
  run(sql: string, values?: unknown[]): Promise<string>;
}

async function traced(s: TestSluice): Promise<Traced> {
  const c = await s.client();
  const nodes: number[] = [];
  c.on('notice', (n) => {
    const m = /^DB node id: (\d+) statement:/.exec(n.message ?? '');
    if (m) nodes.push(Number(m[1]));
  });
  return {
    c,
    nodes,
    async run(sql, values) {
      nodes.length = 0;
      await c.query(sql, values);
      return nodes.map((n) => (n === 0 ? 'P' : 'S')).join('');
    },
  };
}

async function withSluice(overrides: Record<string, unknown>, f: (s: TestSluice) => Promise<void>): Promise<void> {
  const s = await startSluice(cluster, { notice_per_node_statement: true, weights: [0, 1, 0], ...overrides });
  try {
    await f(s);
  } finally {
    await s.stop();
  }
}

/** [statement, where it must go] run in order in one session; '' means not traced (setup). */
const table: [string, string][] = [
  ['select * from t', 'S'],
  ['SELECT count(*) FROM t WHERE a > 1', 'S'],
  ["select nextval('s')", 'P'],
  ["select currval('s')", 'P'],
  ["select setval('s', 10)", 'P'],
  ['select random()', 'P'],
  ['select lo_creat(-1)', 'P'],
  ['select pg_advisory_lock(1)', 'P'],
  ['select pg_advisory_unlock(1)', 'P'],
  ['select pg_is_in_recovery()', 'P'],
  ['select pg_backend_pid()', 'P'],
  ['select now()', 'S'],
  ["select upper('x'), length('abc')", 'S'],
  ['select f_vol()', 'P'],
  ['select f_stable()', 'S'],
  ['select * from t for update', 'P'],
  ['select * from t for share', 'P'],
  ['select * from t for update nowait', 'P'],
  ['select * from t for no key update', 'P'],
  ['select * from t for key share', 'P'],
  ['with x as (insert into t values (100) returning *) select * from x', 'P'],
  ['with x as (select 1) select * from x', 'S'],
  ['/*NO LOAD BALANCE*/ select * from t', 'P'],
  ['-- a comment\nselect 1', 'P'],
  ["set datestyle = 'ISO, DMY'", 'P'],
  ['show datestyle', 'S'],
  ['select * into temp tx from t', 'P'],
  ['select * from tx', 'P'],
  ['create temp table tt (a int)', 'P'],
  ['select * from tt', 'P'],
  ["select has_column_privilege('tt', 'a', 'select')", 'P'],
  ["select 'tt'::regclass::text", 'P'],
  ['show transaction_isolation', 'S'],
  ['explain select 1', 'S'],
  ['explain analyze select 1', 'S'],
  ['select count(*) from pg_class', 'P'],
  ['select * from information_schema.tables limit 1', 'P'],
  ['select * from u', 'P'],
  ['select 1; select 2', 'P'],
  ['values (1)', 'S'],
  ['table t', 'S'],
  ['prepare p1 as select a from t where a = 1', 'P'],
  ['execute p1', 'S'],
  ['prepare p2 (int) as insert into t values ($1)', 'P'],
  ['execute p2 (5)', 'P'],
  ['deallocate p1', 'P'],
  ['begin', 'P'],
  ['select * from t', 'S'],
  ['insert into t values (11)', 'P'],
  ['select * from t', 'P'],
  ['commit', 'P'],
  ['begin read only', 'P'],
  ['select * from t', 'S'],
  ['commit', 'P'],
  ['begin isolation level serializable', 'P'],
  ['select * from t', 'P'],
  ['commit', 'P'],
  ['begin', 'P'],
  ['set local statement_timeout = 0', 'P'],
  ['select * from t', 'P'],
  ['rollback', 'P'],
  ['begin', 'P'],
  ['lock table t in access share mode', 'P'],
  ['select * from t', 'P'],
  ['commit', 'P'],
  ['begin', 'P'],
  ['select 1', 'S'],
  ['savepoint a', 'P'],
  ['select 2', 'S'],
  ['rollback to a', 'P'],
  ['select 3', 'S'],
  ['commit', 'P'],
  ['begin', 'P'],
  ['explain analyze insert into t values (1)', 'P'],
  ['rollback', 'P'],
  ['listen ch', 'P'],
  ['unlisten ch', 'P'],
  ['update t set a = a where a = 1', 'P'],
  ['delete from t where a = 100', 'P'],
  ['select * from t', 'S'],
  // A temporary child's rows are part of every read of its permanent parent: only here.
  ['create temp table t_child () inherits (t)', 'P'],
  ['select * from t', 'P'],
];

t.test('routing table: simple protocol, one session', async (t) => {
  t.ok(table.length >= 60, `${table.length} statements`);
  await withSluice({}, async (s) => {
    const x = await traced(s);
    for (const [sql, where] of table) t.equal(await x.run(sql), where, sql.replace(/\n/g, ' '));
  });
});

t.test('session state is replayed on the standby before it serves the session', async (t) => {
  await withSluice({}, async (s) => {
    const x = await traced(s);
    await x.run("set datestyle = 'SQL, DMY'");
    await x.run('set search_path = pg_catalog, public');
    t.equal(await x.run('show datestyle'), 'S');
    t.same((await x.c.query('show datestyle')).rows, [{ DateStyle: 'SQL, DMY' }], 'the standby has the SET');
    t.same((await x.c.query('show search_path')).rows, [{ search_path: 'pg_catalog, public' }]);
    await x.run('prepare q as select count(*)::int as n from t');
    t.equal(await x.run('execute q'), 'S');
    t.ok((await x.c.query('execute q')).rows[0].n > 0, 'the standby has the prepared statement');
    await x.run('begin');
    await x.run("set datestyle = 'German'");
    await x.run('rollback');
    t.same((await x.c.query('show datestyle')).rows, [{ DateStyle: 'SQL, DMY' }], 'a rolled-back SET is not replayed');
    await x.run('discard all');
    t.same((await x.c.query('show datestyle')).rows, [{ DateStyle: 'ISO, MDY' }], 'DISCARD ALL reaches the standby too');
  });
});

t.test('extended protocol: Parse routes, Bind/Execute follow, statements re-prepared where needed', async (t) => {
  await withSluice({}, async (s) => {
    const x = await traced(s);
    t.equal(await x.run('select a from t where a = $1', [1]), 'S', 'a read with parameters');
    t.equal(await x.run('insert into t values ($1)', [12]), 'P', 'a write with parameters');
    const named = { name: 'rd', text: 'select count(*)::int as n from t where a > $1' };
    x.nodes.length = 0;
    await x.c.query({ ...named, values: [0] });
    t.same(x.nodes, [1], 'named statement prepared and run on the standby');
    await x.c.query('begin');
    await x.c.query('insert into t values (13)');
    x.nodes.length = 0;
    const r = await x.c.query({ ...named, values: [12] });
    t.same(x.nodes, [0], 'after a write in the transaction the same statement runs on the primary');
    t.equal(r.rows[0].n, 1, 'and sees the transaction\'s own write (re-prepared there)');
    await x.c.query('commit');
    t.equal(await x.run("select nextval('s') + $1", [1]), 'P');
  });
});

t.test('functions: write_function_list, read_only_function_list, pattern list, comments allowed', async (t) => {
  await withSluice({ write_function_list: 'f_listed,public\\.f_listed' }, async (s) => {
    const x = await traced(s);
    t.equal(await x.run('select f_listed()'), 'P', 'listed as writing');
    t.equal(await x.run('select f_vol()'), 'S', 'not listed: balanced, whatever pg_proc says');
  });
  await withSluice({ read_only_function_list: 'f_stable,now' }, async (s) => {
    const x = await traced(s);
    t.equal(await x.run('select f_stable(), now()'), 'S', 'only read-only functions');
    t.equal(await x.run('select f_listed()'), 'P', 'any other function');
  });
  await withSluice({ primary_routing_query_pattern_list: '.*from t where a = 7.*;.*DO NOT BALANCE.*', allow_sql_comments: true }, async (s) => {
    const x = await traced(s);
    t.equal(await x.run('select * from t where a = 7'), 'P');
    t.equal(await x.run('select * from t where a = 8'), 'S');
    t.equal(await x.run('select 1 /* DO NOT BALANCE */'), 'P');
    t.equal(await x.run('/*NO LOAD BALANCE*/ select 1'), 'S', 'allow_sql_comments: a leading comment does not matter');
  });
});

t.test('disable_load_balance_on_write modes', async (t) => {
  const seq = async (mode: string) => {
    let out = '';
    await withSluice({ disable_load_balance_on_write: mode }, async (s) => {
      const x = await traced(s);
      for (const q of ['begin', 'select 1', 'insert into t values (1)', 'select 1', 'commit', 'select 1', 'begin', 'select 1', 'commit', 'insert into t values (2)', 'select 1']) {
        out += await x.run(q);
      }
    });
    return out;
  };
  t.equal(await seq('off'), 'PSPSPSPSPPS', 'off: reads always balanced');
  t.equal(await seq('transaction'), 'PSPPPSPSPPS', 'transaction: the rest of a writing transaction');
  t.equal(await seq('trans_transaction'), 'PSPPPSPPPPS', 'trans_transaction: and later transactions');
  t.equal(await seq('always'), 'PSPPPPPPPPP', 'always: every read after a write');
  await withSluice({ disable_load_balance_on_write: 'dml_adaptive' }, async (s) => {
    const x = await traced(s);
    await x.c.query('create table if not exists t2 (a int)');
    await waitFor('t2 on node 1', async () => (await cluster.psql(1, "select count(*) from pg_class where relname = 't2'")) === '1');
    let out = '';
    for (const q of ['begin', 'insert into t2 values (1)', 'select * from t2', 'select * from t', 'commit']) out += await x.run(q);
    t.equal(out, 'PPPSP', 'dml_adaptive: only reads of the written table stay on the primary');
  });
});

t.test('a failed read on a standby fails the whole transaction, as on one server', async (t) => {
  await withSluice({}, async (s) => {
    const x = await traced(s);
    await x.c.query('begin');
    await x.c.query('insert into t values (500)');
    await x.c.query('commit');
    await x.c.query('begin');
    t.equal(await x.run('select 1'), 'S');
    await t.rejects(x.c.query('select 1/0'), { code: '22012' });
    await t.rejects(x.c.query('insert into t values (501)'), { code: '25P02' }, 'the primary refuses too');
    const r = await x.c.query('commit');
    t.equal(r.command, 'ROLLBACK', 'COMMIT of a failed transaction rolls back');
    t.equal(await cluster.psql(0, 'select count(*) from t where a = 501'), '0');
  });
});

t.test('statement_level_load_balance spreads one session\'s reads', async (t) => {
  await withSluice({ statement_level_load_balance: true, weights: [0, 1, 1] }, async (s) => {
    const c = await s.client({ application_name: 'spread' });
    const seen = new Set<number>();
    c.on('notice', (n) => {
      const m = /^DB node id: (\d+)/.exec(n.message ?? '');
      if (m) seen.add(Number(m[1]));
    });
    for (let i = 0; i < 60 && seen.size < 2; i++) await c.query('select 1');
    t.same([...seen].sort(), [1, 2], 'both standbys served reads');
  });
});

t.test('weights 0:1:3 over 4,000 sessions', async (t) => {
  await withSluice({ weights: [0, 1, 3], notice_per_node_statement: false }, async (s) => {
    const before = [...s.server.selectCount];
    const N = 4000;
    const { Client } = await import('pg');
    for (let i = 0; i < N; i += 16) {
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          const c = new Client({ host: '127.0.0.1', port: s.port, user: 'postgres', database: 'postgres' });
          await c.connect();
          await c.query('select 1');
          await c.end();
        }),
      );
    }
    const got = s.server.selectCount.map((n, i) => n - before[i]!);
    const pct = got.map((n) => (100 * n) / N);
    t.equal(got[0], 0, 'weight 0: no reads');
    t.ok(Math.abs(pct[1]! - 25) <= 3, `node 1: ${pct[1]!.toFixed(1)}% (25 ± 3)`);
    t.ok(Math.abs(pct[2]! - 75) <= 3, `node 2: ${pct[2]!.toFixed(1)}% (75 ± 3)`);
  });
});

t.test('redirect preference lists', async (t) => {
  await withSluice({ weights: [1, 1, 1], app_name_redirect_preference_list: 'batch.*:2,oltp:primary', database_redirect_preference_list: 'postgres:1' }, async (s) => {
    const run = async (app: string) => {
      const c = await s.client({ application_name: app });
      const seen: number[] = [];
      c.on('notice', (n) => seen.push(Number(/^DB node id: (\d+)/.exec(n.message ?? '')?.[1])));
      await c.query('select 1');
      await c.end();
      return seen[0];
    };
    t.equal(await run('batch-nightly'), 2, 'application_name rule wins');
    t.equal(await run('oltp'), 0, 'primary target');
    t.equal(await run('other'), 1, 'then the database rule');
  });
});

t.test('pipelines that mix reads and writes behave as on one server', async (t) => {
  await withSluice({ notice_per_node_statement: false }, async (s) => {
    const c = await RawClient.startup(s.port);
    const ready = async (n: number) => waitFor(`${n} ReadyForQuery`, () => c.readyCount() >= n);
    const dataRows = (from: number) => c.frames.slice(from).filter((f) => f.type === 'D').map((f) => f.body.subarray(6).toString());
    // One Sync around a read, a write and a read that sees it: all on the primary, in order.
    let mark = c.frames.length;
    let n = c.readyCount();
    c.send(
      serialize.parse({ text: 'select count(*) from t where a = 900' }), serialize.bind({}), serialize.execute({}),
      serialize.parse({ text: 'insert into t values (900)' }), serialize.bind({}), serialize.execute({}),
      serialize.parse({ text: 'select count(*) from t where a = 900' }), serialize.bind({}), serialize.execute({}),
      serialize.sync(),
    );
    await ready(n + 1);
    t.same(dataRows(mark), ['0', '1'], 'results in order; the second read sees the write');
    t.equal(s.server.selectCount[1], 0, 'nothing of that batch went to the standby');
    // An error skips to Sync: the insert after it never runs.
    mark = c.frames.length;
    n = c.readyCount();
    c.send(
      serialize.parse({ text: 'select 1/0' }), serialize.bind({}), serialize.execute({}),
      serialize.parse({ text: 'insert into t values (901)' }), serialize.bind({}), serialize.execute({}),
      serialize.sync(),
      serialize.query('select count(*) from t where a = 901'),
    );
    await ready(n + 2);
    const kinds = c.frames.slice(mark).map((f) => f.type).join('');
    t.equal(kinds, '1EZTDCZ', 'ParseComplete, the error, ReadyForQuery, then the next query: as PostgreSQL sends them');
    t.same(dataRows(mark), ['0'], 'the insert after the error did not run');
    // Pipelined simple queries alternating nodes: replies stay in order.
    mark = c.frames.length;
    n = c.readyCount();
    const qs = [];
    for (let i = 0; i < 20; i++) qs.push(serialize.query(i % 3 === 0 ? `select ${i}` : `select ${i}, nextval('s') > 0`));
    c.send(...qs);
    await ready(n + 20);
    t.same(dataRows(mark).map((r) => Number.parseInt(r, 10)), Array.from({ length: 20 }, (_, i) => i), 'twenty replies in order');
    c.close();
  });
});
