import t from 'tap';
import { Client } from 'pg';
import { clusterWithSluice, waitFor } from '../helpers/sluice';

// A function made after Sluice read the catalog is looked up on the primary when a statement
// first calls it (pgpool does the same), once per database, and DDL that passes through Sluice
// refreshes what is kept. The look-up never holds a statement long: when the primary does not
// answer in time, the statement goes to the primary.

const env = clusterWithSluice(1, { weights: [0, 1] });

const direct = () => {
  const c = new Client({ host: '127.0.0.1', port: env.cluster.port(0), user: 'postgres', database: 'postgres' });
  return c.connect().then(() => c);
};
const onStandby = async (c: Client, sql: string): Promise<boolean> => (await c.query(sql)).rows[0].s as boolean;
const replicated = (name: string) =>
  waitFor(`${name} on the standby`, async () => (await env.cluster.psql(1, `select count(*) from pg_proc where proname = '${name}'`)) !== '0', 20_000);

t.before(async () => {
  // The catalog is read by the first session.
  const c = await env.sluice.client();
  await c.query('create table lookup_calls (n int)');
  await c.end();
});

t.test('a STABLE function made after the catalog was read is looked up and balanced; a writing one is not', async (t) => {
  const d = await direct();
  await d.query("create function made_later() returns bool stable language sql as 'select pg_is_in_recovery()'");
  await d.query('create function writes_later() returns bool language plpgsql as $$begin insert into lookup_calls values (1); return pg_is_in_recovery(); end$$');
  await d.end();
  await replicated('writes_later');
  const c = await env.sluice.client();
  t.equal(await onStandby(c, 'select made_later() as s'), true, 'the stable function ran on the standby');
  t.equal(await onStandby(c, 'select writes_later() as s'), false, 'the writing one ran on the primary');
  const other = await env.sluice.client();
  t.equal(await onStandby(other, 'select made_later() as s'), true, 'another session uses what was looked up');
  t.ok(env.sluice.logs.some((l) => l.msg === 'functions looked up' && (l.names as string[]).includes('made_later')), 'looked up once, logged');
  t.equal(env.sluice.logs.filter((l) => l.msg === 'functions looked up' && (l.names as string[]).includes('made_later')).length, 1, 'and only once');
});

t.test('CREATE OR REPLACE through Sluice refreshes what is kept for that name', async (t) => {
  const c = await env.sluice.client();
  await c.query("create function flips() returns bool stable language sql as 'select pg_is_in_recovery()'");
  await replicated('flips');
  t.equal(await onStandby(c, 'select flips() as s'), true, 'stable: balanced');
  await c.query('create or replace function flips() returns bool volatile language plpgsql as $$begin insert into lookup_calls values (2); return pg_is_in_recovery(); end$$');
  await waitFor('the new body on the standby', async () => (await env.cluster.psql(1, "select provolatile from pg_proc where proname = 'flips'")) === 'v', 20_000);
  t.equal(await onStandby(c, 'select flips() as s'), false, 'volatile now: on the primary, and no read-only error');
  // ... and in a transaction: forgotten again at COMMIT (a look-up in between saw the old body).
  await c.query('begin');
  await c.query("create or replace function flips() returns bool stable language sql as 'select pg_is_in_recovery()'");
  await c.query('commit');
  await waitFor('the stable body on the standby', async () => (await env.cluster.psql(1, "select provolatile from pg_proc where proname = 'flips'")) === 's', 20_000);
  t.equal(await onStandby(c, 'select flips() as s'), true, 'stable again after the commit: balanced');
  await c.query('drop function flips()');
  await t.rejects(c.query('select flips() as s'), { code: '42883' }, 'dropped: the server says so');
});

t.test('a look-up the primary does not answer in time leaves the statement to the primary', async (t) => {
  const d = await direct();
  await d.query("create function slow_lookup() returns bool stable language sql as 'select pg_is_in_recovery()'");
  await replicated('slow_lookup');
  const c = await env.sluice.client();
  // Nobody can read pg_proc on the primary while this lock is held: the look-up waits for it.
  await d.query('begin; lock table pg_catalog.pg_proc in access exclusive mode');
  const answer = onStandby(c, 'select slow_lookup() as s');
  // Inside the locking transaction pg_stat_activity is a snapshot: cleared before each look.
  const waiting = async (like: string) => {
    await d.query('select pg_stat_clear_snapshot()');
    return (await d.query("select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and query like $1", [like])).rows[0].n > 0;
  };
  // The look-up's own connection waits (to start, or in its query); the statement does not wait
  // for it beyond the time limit: it is sent to the primary, and waits there for the lock.
  await waitFor('the statement sent to the primary after the time limit', () => waiting('select slow_lookup()%'));
  await d.query('commit');
  t.equal(await answer, false, 'it ran on the primary');
  await waitFor('the look-up answered', () => env.sluice.logs.some((l) => l.msg === 'functions looked up' && (l.names as string[]).includes('slow_lookup')));
  t.equal(await onStandby(c, 'select slow_lookup() as s'), true, 'the look-up answered later: the next call is balanced');
  await d.end();
});
