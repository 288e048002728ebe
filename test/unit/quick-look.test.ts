import t from 'tap';
import { serialize } from 'pg-protocol';
import { isPlainQuery, mayUseSequences, queryMayUseSequences } from '../../src/router/quick-look';

// The first look transaction mode takes at a Query: anything it clears must leave nothing on its
// connection; anything it cannot clear goes to the classifier.

const plain = (sql: string) => {
  const q = serialize.query(sql);
  // Inside a larger chunk, as the framer hands frames over.
  const chunk = Buffer.concat([Buffer.from('xxxx'), q, Buffer.from('yy')]);
  return isPlainQuery(chunk, 4, 4 + q.length);
};

t.test('statements that change nothing a connection keeps are cleared', async (t) => {
  for (const sql of [
    'SELECT abalance FROM pgbench_accounts WHERE aid = 42',
    '  update pgbench_accounts set abalance = abalance + 1 where aid = 7;',
    'INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 2, 3, 4, CURRENT_TIMESTAMP)',
    'END',
    'commit',
    'with x as (select 1) select * from x',
    'explain select 1',
  ]) {
    t.ok(plain(sql), sql);
  }
});

t.test('anything that may set, prepare, pin or span statements is left to the classifier', async (t) => {
  for (const sql of [
    'set work_mem = 1',
    'RESET ALL',
    'begin',
    'rollback',
    'savepoint a',
    'release a',
    'prepare p as select 1',
    'listen ch',
    'create temp table t (x int)',
    'select * into TEMPORARY t from x',
    'select 1 into TeMp t',
    'select pg_advisory_lock(1)',
    'SELECT PG_TRY_ADVISORY_LOCK(1)',
    "select pg_catalog.set_config('search_path', ' ', false)",
    "SELECT SET_CONFIG('a.b', 'c', false)",
    'select 1; set x = 1',
    '/* comment */ select 1',
    'discard all',
    'declare c cursor with hold for select 1',
    "select 'é'",
    '',
    'selectx 1',
  ]) {
    t.notOk(plain(sql), sql || '(empty)');
  }
});

t.test('statements that may leave sequence values (currval, lastval) on their connection', async (t) => {
  const bytes = (sql: string) => {
    const q = serialize.query(sql);
    return queryMayUseSequences(Buffer.concat([Buffer.from('xx'), q]), 2, 2 + q.length);
  };
  for (const [sql, may] of [
    ["select nextval('s')", true],
    ["SELECT setval('s', 3)", true],
    ['insert into t (x) values (1)', true],
    ['with x as (insert into t default values returning id) select * from x', true],
    ['execute p(1)', true],
    ['call proc()', true],
    ["select currval('s'), lastval()", false],
    ['select abalance from pgbench_accounts where aid = 1', false],
    ['  commit', false],
    ['set work_mem = 1', false],
    ['', true],
  ] as const) {
    t.equal(mayUseSequences(sql), may, `text: ${sql || '(empty)'}`);
    t.equal(bytes(sql), may, `bytes: ${sql || '(empty)'}`);
  }
});
