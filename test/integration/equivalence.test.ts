import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { Client } from 'pg';
import { createCluster, TestCluster } from '../helpers/cluster';
import { startSluice, TestSluice, waitFor } from '../helpers/sluice';

// The same sessions (SET, temp tables, prepared statements, transactions, errors), once directly
// against the primary and once through Sluice with reads balanced to the standbys: the output
// must be identical.

const run = promisify(execFile);
let cluster: TestCluster;
let sluice: TestSluice;

const SETUP = `create schema eq_schema; create table eq_table (id int, name text); create sequence eq_seq;`;
const RESET = `truncate eq_table; insert into eq_table select g, 'n' || g from generate_series(1, 5) g;`;

t.before(async () => {
  cluster = await createCluster(2);
  await cluster.psql(0, SETUP);
  for (const n of [1, 2]) await waitFor(`node ${n} has the schema`, async () => (await cluster.psql(n, "select count(*) from pg_class where relname = 'eq_seq'")) === '1', 20_000);
  sluice = await startSluice(cluster, { weights: [0, 1, 1] });
});
t.teardown(async () => {
  await sluice?.stop();
  await cluster?.destroy();
});

/** Reset the table, and wait until the standbys have it, so both runs start alike. */
async function reset(): Promise<void> {
  await cluster.psql(0, RESET);
  const lsn = await cluster.psql(0, 'select pg_current_wal_insert_lsn()');
  for (const n of [1, 2]) await waitFor(`node ${n} replayed`, async () => (await cluster.psql(n, `select pg_last_wal_replay_lsn() >= '${lsn}'`)) === 't');
}

t.test('psql: a session script gives the same output through Sluice as directly', async (t) => {
  // Error lines name the script line; they are part of what must match.
  const psql = async (port: number) => {
    await reset();
    return psqlScript(port, 'session.sql');
  };
  const direct = await psql(cluster.port(0));
  const through = await psql(sluice.port);
  t.match(direct, /ERROR: {2}division by zero/, 'the script does exercise errors');
  t.equal(through, direct);
  t.ok(sluice.server.selectCount[1]! + sluice.server.selectCount[2]! > 0, 'some of it ran on standbys');
});

/** psql runs a script against a port; its output and errors are what must match. */
async function psqlScript(port: number, file: string): Promise<string> {
  const script = join(__dirname, '..', 'fixtures', file);
  const r = await run('psql', ['-X', '-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-f', script], { env: { ...process.env, PGOPTIONS: '' } }).catch(
    (e: { stdout: string; stderr: string }) => e,
  );
  return `${r.stdout}\n--- stderr ---\n${r.stderr}`;
}

const replay = (on: boolean) => Promise.all([1, 2].map((n) => cluster.psql(n, on ? 'select pg_wal_replay_resume()' : 'select pg_wal_replay_pause()')));

t.test('psql: what the regression suite found, with read_your_writes, against standbys that do not replay', async (t) => {
  await reset();
  const ryw = await startSluice(cluster, { weights: [0, 1, 1], read_your_writes: true });
  await replay(false);
  try {
    const direct = await psqlScript(cluster.port(0), 'session-regress.sql');
    const through = await psqlScript(ryw.port, 'session-regress.sql');
    t.match(direct, /German, DMY/, 'the script ran');
    t.equal(through, direct);
    t.ok(ryw.server.selectCount[1]! + ryw.server.selectCount[2]! > 0, 'some of it ran on standbys');
  } finally {
    await replay(true);
    await ryw.stop();
  }
});

t.test('node-postgres: the same session state and results through Sluice as directly', async (t) => {
  const session = async (port: number) => {
    await reset();
    const c = new Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
    await c.connect();
    const out: unknown[] = [];
    const q = async (text: string, values?: unknown[]) => {
      try {
        const r = await c.query(text, values);
        out.push([r.command, r.rowCount, r.rows]);
      } catch (e) {
        out.push(['error', (e as { code?: string }).code]);
      }
    };
    await q("set timezone = 'Asia/Tokyo'");
    await q("select to_char(timestamptz '2024-01-01 00:00:00+00', 'YYYY-MM-DD HH24:MI TZ') as t");
    await q('create temp table tt (a int)');
    await q('insert into tt select generate_series(1, 3)');
    await q('select sum(a)::int as s from tt');
    await q('select name from eq_table where id = $1', [3]);
    await c.query({ name: 'by_id', text: 'select name from eq_table where id = $1', values: [2] }).then((r) => out.push(r.rows));
    await q('begin');
    await q('update eq_table set name = $1 where id = $2', ['changed', 2]);
    await c.query({ name: 'by_id', text: 'select name from eq_table where id = $1', values: [2] }).then((r) => out.push(r.rows));
    await q('commit');
    await q('begin isolation level repeatable read');
    await q('select count(*)::int as n from eq_table');
    await q('select current_setting($1) as v', ['transaction_isolation']);
    await q('commit');
    await q('show timezone');
    await q("select current_setting('timezone') as tz");
    await c.end();
    return out;
  };
  const direct = await session(cluster.port(0));
  const through = await session(sluice.port);
  t.same(through, direct);
});
