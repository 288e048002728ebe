import t from 'tap';
import { classify as classifyStatement } from '../../src/router/classify';
import { loadParser } from '../../src/router/parse-tree';
import type { BeginStatement, EndStatement, ExecuteStatement, ReadStatement, SessionStatement, Statement, StatementKind, TxLocalStatement, WriteStatement } from '../../src/router/statement';

/** Every kind's fields, optional: these tests read any field of any statement (undefined when its kind has none). */
type AnyFields = Partial<
  Omit<ReadStatement, 'kind'> & Omit<WriteStatement, 'kind'> & Omit<SessionStatement, 'kind'> & Omit<BeginStatement, 'kind'> &
    Omit<EndStatement, 'kind'> & Omit<TxLocalStatement, 'kind'> & Omit<ExecuteStatement, 'kind'>
>;
const classify = (sql: string): Statement & AnyFields => classifyStatement(sql);

// The routing class of each statement shape pgpool's docs and regression tests name, plus the
// ones where Sluice deliberately differs (docs/routing.md: "Differences from pgpool-II").
const cases: [string, StatementKind, string?][] = [
  ['SELECT abalance FROM pgbench_accounts WHERE aid = 1', 'read'],
  ['select 1', 'read'],
  ['  \n select 1;', 'read'],
  ['(select 1) union (select 2)', 'read'],
  ['values (1), (2)', 'read'],
  ['table t', 'read'],
  ['with x as (select 1) select * from x', 'read'],
  ['with x as (insert into t values (1) returning *) select * from x', 'write', 'data-modifying WITH'],
  ['with x as (select 1), y as (delete from t returning *) select 1', 'write'],
  ['with x as (select 1 as update) select * from x', 'read'],
  ['with recursive x(n) as (select 1 union all select n+1 from x where n < 3) select * from x', 'read'],
  ['select * from t for update', 'write', 'locking clause'],
  ['select * from t for share', 'write'],
  ['select * from t for no key update', 'write'],
  ['select * from t for key share nowait', 'write'],
  ['select substring(a for 2) from t', 'read'],
  ['select * into temp tx from t', 'write', 'select into'],
  ["select 'into', \"into\" from t", 'read'],
  ['select $$ for update $$', 'read'],
  ["select e'it\\'s for update'", 'read'],
  ['select 1 /* for update */', 'read'],
  ['select 1 -- for update\n', 'read'],
  ['select 1; select 2', 'write', 'multi-statement query'],
  ['insert into t values (1)', 'write'],
  ['update t set a = 1', 'write'],
  ['delete from t', 'write'],
  ['merge into t using s on t.a = s.a when matched then delete', 'write'],
  ['create table t (a int)', 'write'],
  ['create temp table tt (a int)', 'write'],
  ['drop table t', 'write'],
  ['vacuum', 'write'],
  ['copy t from stdin', 'write', 'copy from'],
  ['copy t to stdout', 'read'],
  ['copy (select * from t) to stdout', 'read'],
  ['copy (select * from t for update) to stdout', 'write'],
  ["copy t to '/tmp/x'", 'write'],
  ['lock t', 'write'],
  ['lock table t in access exclusive mode', 'write'],
  ['lock table t in row exclusive mode', 'write'],
  ['lock table t in access share mode', 'txLocal'],
  ['explain select 1', 'read'],
  ['explain analyze select 1', 'read'],
  ['explain analyze insert into t values (1)', 'write', 'explain analyze executes'],
  ['explain (analyze, buffers) delete from t', 'write'],
  ['explain (analyze false) delete from t', 'read'],
  ['explain insert into t values (1)', 'read'],
  ['show transaction_isolation', 'read'],
  ['begin', 'txBegin'],
  ['start transaction read only', 'txBegin'],
  ['begin isolation level serializable', 'txBegin'],
  ['commit', 'txEnd'],
  ['end', 'txEnd'],
  ['rollback', 'txEnd'],
  ['abort', 'txEnd'],
  ['rollback to savepoint s', 'txLocal'],
  ['savepoint s', 'txLocal'],
  ['release savepoint s', 'txLocal'],
  ['commit prepared \'x\'', 'write'],
  ['prepare transaction \'x\'', 'write'],
  ["set datestyle = 'ISO'", 'session'],
  ['set local statement_timeout = 0', 'txLocal'],
  ['set transaction isolation level serializable', 'txLocal'],
  ['set transaction_read_only = off', 'txLocal'],
  ['set session characteristics as transaction isolation level serializable', 'session'],
  ['reset all', 'session'],
  ['discard all', 'session'],
  ['prepare p as select 1', 'session'],
  ['prepare p (int) as insert into t values ($1)', 'session'],
  ['execute p', 'execute'],
  ['deallocate p', 'session'],
  ['listen ch', 'write'],
  ["load 'plpgsql'", 'session'],
  ['unlisten *', 'write'],
  ['notify ch', 'write'],
  ['declare c cursor for select 1', 'write'],
  ['fetch 1 from c', 'write'],
  ["select 'unterminated", 'write', 'unterminated string or comment'],
  ['/* hint */ select 1', 'read'],
];

t.before(loadParser);

t.test('statement kinds', async (t) => {
  for (const [sql, kind, reason] of cases) {
    const c = classify(sql);
    t.equal(c.kind, kind, `${sql} -> ${kind} (${c.reason})`);
    if (reason) t.equal(c.reason, reason, `${sql}: reason`);
  }
});

t.test('functions, relations and catalogs are found for reads', async (t) => {
  const c = classify("select nextval('s'), now(), public.f(1), \"Odd\"(2) from t join pg_catalog.pg_class c on true where a in (1)");
  t.same(c.functions, ['nextval', 'now', 'public.f', 'Odd']);
  t.ok(c.relations.includes('t'));
  t.ok(c.catalog);
  t.notOk(classify('select count(*) from t').catalog);
  t.ok(classify('select count(*) from pg_class').catalog);
  t.notOk(classify('select pg_backend_pid()').catalog, 'a pg_ function is not a catalog');
  t.ok(classify('select * from information_schema.tables').catalog);
});

t.test('a call is seen whatever the name: keywords PostgreSQL accepts as function names, quoted, qualified', async (t) => {
  // integration/keyword-functions.test.ts checks every keyword the server lists, end to end.
  const calls: [string, string[]][] = [
    ["select set('t')", ['set']],
    ["select SET ('t')", ['set']],
    ["select \"set\"('t'), public.set('t'), \"public\".\"set\"('t')", ['set', 'public.set', 'public.set']],
    ["select left('abc', 1), right('abc', 1), replace('a', 'b', 'c')", ['left', 'right', 'replace']],
    ['select x from t where filter(x) and window_fn(1) > 0', ['filter', 'window_fn']],
    ['select 1 where not like(true)', ['like']],
    ['select join(1), full(2), a.join(3)', ['join', 'full', 'a.join']],
    ['select * from left(\'abc\', 2) as l(x)', ['left']],
    ['select x from t order by position2(x), by(x)', ['position2', 'by']],
    ["select 'a' similar to second('x')", ['second']],
    ['select current_schema(), public.coalesce(1), public.position(2)', ['current_schema', 'public.coalesce', 'public.position']],
    ['select cube(1, 2), f(x) over (partition by g(y))', ['cube', 'f', 'g']],
    ['select operator(1)', ['operator']],
    ["select substring('abc', 1), overlay('abc', 'x', 1)", ['substring', 'overlay']],
  ];
  for (const [sql, fns] of calls) t.same(classify(sql).functions, fns, sql);
});

t.test('what only looks like a call is not one: syntax, type modifiers, aliases\' and CTEs\' column lists', async (t) => {
  const none = [
    'select coalesce(a, 1), greatest(a, b), nullif(a, 1), position(\'a\' in b), extract(epoch from b), trim(both from b) from t',
    'select a::numeric(10, 2), cast(b as varchar(3)), c::character varying(4), d::bit varying(5), e::mytype(2) from t',
    "select interval '1' day to second(3), timestamp(3) '2020-01-01', a at time zone ('UTC') from t",
    'select * from t where a in (1) and exists (select 1) and b = any (array[1]) and (a, b) overlaps (c, d)',
    "select * from t where a like ('x') and b not ilike ('y') and c is distinct from (1)",
    'select * from t join (select 1) s on true left join (select 2) u on true natural join (select 3) v cross join (select 4) w',
    'with w(a, b) as (select 1, 2), v(c) as not materialized (select 3) select * from w, v',
    'with recursive r(n) as (select 1 union all select n + 1 from r where n < 3) select * from r',
    'select * from t as x(a, b), u as y(c) group by cube (a, b), rollup (c), grouping sets ((a), (b))',
    'select * from t tablesample system (10) repeatable (42) order by (a) fetch first (5) rows only',
    'select a operator(pg_catalog.+) b, row(1, 2), values (1) from t window w as (partition by a)',
    'select distinct on (a) a from t',
  ];
  for (const sql of none) t.same(classify(sql).functions, [], sql);
  const aggregate = 'select count(a) filter (where a > 1) over (partition by b order by c rows between unbounded preceding and current row) from t';
  t.same(classify(aggregate).functions, ['count'], 'FILTER and OVER after an aggregate are clauses');
});

t.test('reads of the session\'s own objects are marked', async (t) => {
  t.equal(classify('select name from pg_prepared_statements').sessionView, 'statements');
  t.equal(classify('select * from pg_catalog.pg_cursors c join pg_prepared_statements p on true').sessionView, 'statements', 'statements win: they can be moved');
  t.equal(classify('select * from pg_cursor()').sessionView, 'cursors');
  t.equal(classify('select * from myschema.pg_cursors').sessionView, undefined, 'only the catalog\'s');
  t.equal(classify('select 1').sessionView, undefined);
});

t.test('DDL that makes sequences, indexes on temporary tables, renames', async (t) => {
  t.same(classify('create sequence s1').createsSequences, ['s1']);
  t.same(classify('create table t1 (id serial primary key, n bigserial, x int generated always as identity, y int)').createsSequences, ['t1_id_seq', 't1_n_seq', 't1_x_seq']);
  t.equal(classify('create table t2 (a int)').createsSequences, undefined);
  t.same(classify('create unique index concurrently if not exists ti on only tt (a)').tempIf, { name: 'ti', from: ['tt'] });
  t.equal(classify('create index on tt (a)').tempIf, undefined, 'an unnamed index');
  t.same(classify('alter sequence s1 rename to s2').renamed, { from: 's1', to: 's2' });
});

t.test('DDL of functions names what it changes', async (t) => {
  const changed = (sql: string) => classify(sql).functionsChanged;
  t.same(changed("create or replace function public.f(int) returns int language sql as 'select 1'"), ['f']);
  t.same(changed('create procedure "P"() language sql as $$ $$'), ['P']);
  t.same(changed('alter function f(int) rename to g'), ['f', 'g']);
  t.same(changed('alter routine s.f stable'), ['f']);
  t.same(changed('drop function if exists a(int), s.b(text, int) cascade'), ['a', 'b']);
  t.same(changed('drop aggregate agg(int)'), ['agg']);
  t.equal(changed('create extension pgcrypto'), '*');
  t.equal(changed('do $$begin end$$'), '*');
  t.same(changed("create function f() returns int language sql as 'select 1'; select 1"), ['f'], 'in a multi-statement query');
  t.equal(changed('drop table t'), undefined);
  t.equal(classify('drop table t').reason, 'drop');
});

t.test('details that drive routing', async (t) => {
  t.equal(classify('create temp table tt (a int)').createsTemp, 'tt');
  t.equal(classify('create temporary table if not exists tt2 as select 1').createsTemp, 'tt2');
  t.equal(classify('select 1 into temporary table tt3').createsTemp, 'tt3');
  t.same(classify('create temp table c () inherits (p, s.q) on commit drop').tempParents, ['p', 's', 'q'], 'the parents of a temporary child');
  t.same(classify('create table x (a int); create temp table c () inherits (p)').tempParents, ['p'], 'in a multi-statement query');
  t.equal(classify('create temp table c (a int)').tempParents, undefined);
  t.equal(classify('create unlogged table u (a int)').createsUnlogged, 'u');
  t.same(classify('insert into public.t values (1)').writeTables, ['t']);
  t.same(classify('update only t set a = 1').writeTables, ['t']);
  t.same(classify('delete from t where a = 1').writeTables, ['t']);
  t.equal(classify('begin isolation level serializable').pinTransaction, true);
  t.equal(classify('begin isolation level repeatable read').standbyBegin, 'BEGIN ISOLATION LEVEL REPEATABLE READ');
  t.equal(classify('begin').standbyBegin, 'BEGIN');
  t.equal(classify('commit').commit, true);
  t.equal(classify('rollback').commit, false);
  t.equal(classify("set default_transaction_isolation = 'serializable'").pinSession, true);
  t.equal(classify("set default_transaction_isolation = 'read committed'").pinSession, undefined);
  t.equal(classify('set session characteristics as transaction isolation level serializable').pinSession, true);
  const p = classify('prepare p (int) as select * from t where a = $1');
  t.equal(p.name, 'p');
  t.equal(p.inner?.kind, 'read');
  t.equal(classify('execute p (1)').name, 'p');
  t.equal(classify('deallocate all').discards, 'plans');
  t.equal(classify('discard temp').discards, 'temp');
  const multi = classify("set search_path = a; select 1; SET datestyle='ISO'");
  t.same(multi.replay, ['set search_path = a', "SET datestyle='ISO'"]);
  t.equal(classify('begin; select 1').pinTransaction, true);
});

// Each case below was a difference between PostgreSQL's regression suite run directly and run
// through Sluice with reads balanced to standbys.
t.test('what the regression suite showed: temporary relations, keyword names, savepoints, DateStyle', async (t) => {
  t.equal(classify('create temp view voo as select 1').createsTemp, 'voo', 'a temporary view');
  t.equal(classify('create temporary recursive view rv (n) as select 1').createsTemp, 'rv');
  t.equal(classify('create temp sequence ts').createsTemp, 'ts');
  t.equal(classify('create table pg_temp.pt (a int)').createsTemp, 'pt', 'a table made in pg_temp');
  t.equal(classify('create view v as select 1').createsTemp, undefined);
  t.equal(classify('create unlogged view v as select 1').createsUnlogged, undefined, 'no such thing');
  t.ok(classify('select jsonb_agg(q) from rows q').relations.includes('rows'), 'a table named with a keyword, after FROM');
  t.ok(classify('select * from t join rows on true').relations.includes('rows'), 'after JOIN');
  t.notOk(classify('select 1 from t join lateral f() on true').relations.includes('lateral'));
  t.notOk(classify('select * from t order by a rows').relations.includes('rows'), 'elsewhere a keyword is not a name');
  t.same(classify('savepoint first_sp').savepoint, { op: 'define', name: 'first_sp' });
  t.same(classify('release savepoint first_sp').savepoint, { op: 'release', name: 'first_sp' });
  t.equal(classify('release first_sp').reason, 'release savepoint');
  const back = classify('rollback to savepoint first_sp');
  t.equal(back.reason, 'rollback to savepoint');
  t.same(back.savepoint, { op: 'rollbackTo', name: 'first_sp' });
  t.equal(classify('set datestyle to ymd').replayKey, undefined, 'a DateStyle SET composes with the one before');
  t.equal(classify('set search_path to a').replayKey, 'set search_path');
  t.equal(classify("set search_path to 'pg_temp'").pinSession, true, 'pg_temp first in the path: only the primary has it');
  t.equal(classify('set search_path to public').pinSession, undefined);
  t.same(classify('alter table attmp rename to attmp_new').tempIf, { name: 'attmp_new', from: ['attmp'] }, 'a renamed temp table stays temp');
  t.same(classify('create view v as select * from tt').tempIf, { name: 'v', from: ['tt'] }, 'a view over a temp table is temp');
  t.equal(classify('alter table a add column b int').tempIf, undefined);
  t.equal(classify('alter system set work_mem = 1').kind, 'write');
});

t.test('a text without constants, or one again but for its numbers, is classified once and the result shared; one with strings is not kept', async (t) => {
  const parse = 'select abalance from pgbench_accounts where aid = $1';
  const first = classify(parse);
  t.equal(classify(parse), first, 'the same Statement for the same text');
  t.equal(first.kind, 'read');
  t.not(classify("select 1 from t where a = 'x'"), classify("select 1 from t where a = 'x'"), 'strings: classified each time');
  const numbered = classify('SELECT abalance FROM pgbench_accounts WHERE aid = 12;');
  t.equal(classify('SELECT abalance FROM pgbench_accounts WHERE aid = 345;'), numbered, 'another number, the same Statement');
  t.equal(classify('SELECT abalance FROM pgbench_accounts WHERE aid = 6.5e3;'), numbered);
  t.same(numbered.relations, ['abalance', 'pgbench_accounts', 'aid']);
  t.not(classify('SELECT abalance FROM pgbench_accounts WHERE aid = a12;'), numbered, 'a name with digits is not a number');
  t.equal(classify('update t set a = a + 1 where id = 7').kind, 'write');
  t.equal(classify('update t set a = a + 2 where id = 8'), classify('update t set a = a + 1 where id = 7'), 'a write: shared too');
  // The parser reads the numbers too (1x is a syntax error): its verdict is not shared by shape.
  t.equal(classify('with c as (select 1x as update) select * from c').kind, 'write', 'rejected by the parser');
  t.equal(classify('with c as (select 1 as update) select * from c').kind, 'read', 'the same shape, accepted');
  // What a statement carries of its own text is not shared: a multi-statement query's SETs are replayed as written.
  t.same(classify('set statement_timeout = 1000; select 1').replay, ['set statement_timeout = 1000']);
  t.same(classify('set statement_timeout = 2000; select 1').replay, ['set statement_timeout = 2000']);
  const commented = '/* app */ select * from t where a = $1';
  t.equal(classify(commented).leadingComment, true, 'a remembered text keeps its leading-comment mark');
  t.equal(classify(commented).leadingComment, true);
  t.equal(classify('with d as (delete from q returning *) select * from d'), classify('with d as (delete from q returning *) select * from d'), 'remembered: the same object');
  t.equal(classify('with d as (delete from q returning *) select * from d').kind, 'write', 'a remembered parser verdict');
});

t.test('a string that reads as a name counts as a relation (regclass arguments)', async (t) => {
  t.same(classify("select has_column_privilege('mytable', 'f2', 'select')").relations, ['mytable', 'f2', 'select']);
  t.same(classify(`select 'pg_temp."MyT"'::regclass`).relations, ['MyT', 'regclass']);
  t.same(classify("select 'Pg_Temp.Tab'::regclass").relations, ['pg_temp.tab', 'regclass']);
  t.same(classify("select * from t where note = 'two words' and n = 42").relations, ['t', 'note', 'n'], 'other strings are not names');
  t.equal(classify("select has_table_privilege('pg_authid', 'select')").catalog, false, 'a string never makes a catalog read');
});

t.test('settings a statement resets (transaction mode puts the client startup values back after it)', async (t) => {
  const resets: [string, { names: string[]; local: boolean } | undefined][] = [
    ['RESET application_name', { names: ['application_name'], local: false }],
    ['reset "DateStyle"', { names: ['datestyle'], local: false }],
    ['RESET myapp.mode', { names: ['myapp.mode'], local: false }],
    ['RESET ALL', { names: ['*'], local: false }],
    ['DISCARD ALL', { names: ['*'], local: false }],
    ['DISCARD TEMP', undefined],
    ['RESET TIME ZONE', { names: ['timezone'], local: false }],
    ['SET TimeZone TO DEFAULT', { names: ['timezone'], local: false }],
    ['set session search_path = default', { names: ['search_path'], local: false }],
    ['SET LOCAL statement_timeout TO DEFAULT', { names: ['statement_timeout'], local: true }],
    ['SET TIME ZONE LOCAL', { names: ['timezone'], local: false }],
    ['SET TIME ZONE DEFAULT', { names: ['timezone'], local: false }],
    ["SET TIME ZONE 'UTC'", undefined],
    ['SET NAMES DEFAULT', { names: ['client_encoding'], local: false }],
    ["SET application_name = 'default'", undefined],
    ['SET application_name = x', undefined],
    ["set datestyle = 'ISO'; reset timezone; select 1", { names: ['timezone'], local: false }],
    ['reset timezone; set local work_mem to default', { names: ['timezone', 'work_mem'], local: false }],
  ];
  for (const [sql, want] of resets) t.same(classify(sql).resets, want, sql);
});

t.test('set_config() is SET from inside a query: logged when it can be replayed as written, else the session keeps its connection', async (t) => {
  const bare = classify("SELECT pg_catalog.set_config('search_path', ' ', false)");
  t.equal(bare.kind, 'session', 'the bare call, as namespace.sql makes it');
  t.equal(bare.replayKey, 'set search_path', 'keyed as SET search_path is');
  t.equal(classify("select set_config('MyApp.Mode', 'x', 'off') as old").replayKey, 'set myapp.mode', 'a custom setting, an alias, a string boolean');
  for (const sql of [
    "select set_config('request.jwt', $1, true)",
    "SELECT set_config('a.b', 'c', 't'), now()",
    "select * from t where set_config('a.b', 'c', true) <> ''",
    "select set_config('app.u', lower('A'), true)",
    "select set_config('app.u', coalesce($1, ''), 'yes')",
  ]) {
    const s = classify(sql);
    t.same([s.kind, s.pinTransaction], ['txLocal', true], `${sql}: is_local true, as SET LOCAL`);
  }
  for (const sql of [
    "select set_config('app.user', $1, false)",
    "select set_config('a.b', 'c', false), 1",
    "select set_config('a.b', 'c' || 'd', false)",
    "select set_config('a.b', 'c', is_local) from t",
    "select set_config('a.b', 'c', false), set_config('a.c', 'd', false)",
    "select 1 from t where set_config('a.b', 'c', false) is not null",
    "select set_config(E'search_path', 'x', false)",
    "update t set c = 1 where set_config('search_path', 'x', false) is not null",
    "select set_config('search_path', 'x', false) from t for update",
    "copy (select set_config('search_path', 'x', false)) to stdout",
    "create table c as select set_config('search_path', 'x', false)",
    "with w as (insert into t values (1) returning 1) select set_config('search_path', 'x', false) from w",
  ]) {
    const s = classify(sql);
    t.same([s.kind, s.pinSession, s.pinsConnection], ['write', true, 'set_config()'], `${sql}: cannot be replayed`);
  }
  const prepared = classify("prepare p as select set_config('app.u', $1, false)");
  t.same([prepared.kind, prepared.pinsConnection], ['session', 'set_config()'], 'a PREPARE of what cannot be replayed pins at once (its EXECUTE is routed as the statement)');
  t.equal(classify("explain select set_config('a.b', 'c', false)").kind, 'read', 'EXPLAIN without ANALYZE runs nothing');
  const lockToo = classify("select set_config('app.u', 'a', true), pg_advisory_lock(42)");
  t.same([lockToo.kind, lockToo.functions.includes('pg_advisory_lock')], ['txLocal', true], 'the functions it calls are kept (a session advisory lock still pins)');
  const special: [string, Record<string, unknown>][] = [
    ["select set_config('default_transaction_isolation', 'serializable', false)", { kind: 'session', pinSession: true, replayKey: undefined }],
    ["select set_config('search_path', 'pg_temp, public', false)", { kind: 'session', pinSession: true }],
    ["select set_config('role', 'r', false)", { kind: 'session', pinsConnection: 'SET ROLE' }],
    ["select set_config('session_authorization', 'u', false)", { kind: 'session', pinsConnection: 'SET SESSION AUTHORIZATION' }],
    ["select set_config('DateStyle', 'SQL', false)", { kind: 'session', replayKey: undefined }],
    ["select set_config('transaction_read_only', 'on', false)", { kind: 'txLocal', pinTransaction: true }],
  ];
  for (const [sql, want] of special) t.match(classify(sql), want, `${sql}: as SET of the same setting`);
  t.equal(classify("explain analyze select set_config('a.b', 'c', false)").kind, 'session', 'EXPLAIN ANALYZE runs it too');
  const multi = classify("select set_config('a.b', 'c', false); select 1");
  t.same(multi.replay, ["select set_config('a.b', 'c', false)"], 'in a multi-statement query: replayed');
  t.equal(classify("select myschema.set_config_x('a')").kind, 'read', 'another function');
});

t.test('a SET is keyed by its whole setting name: a SET of another setting of the same prefix leaves it in the log', async (t) => {
  t.equal(classify('SET myapp.a = 1').replayKey, 'set myapp.a');
  t.equal(classify('SET SESSION myapp.b TO 2').replayKey, 'set myapp.b');
  t.equal(classify('RESET myapp.a').replayKey, 'set myapp.a');
  t.equal(classify('SET "Search_Path" = a').replayKey, 'set search_path', 'names are case-insensitive');
});
