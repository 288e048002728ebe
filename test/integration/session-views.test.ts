import t from 'tap';
import { RawClient, serialize } from '../helpers/raw-client';
import { clusterWithSluice } from '../helpers/sluice';

// pg_prepared_statements and pg_cursors show the session's own objects, which exist only on the
// server connection that made them. Through Sluice with reads on a standby, a read's Parse
// prepares its statement there; the view must still show it, as one server would (JDBC checks
// that its server-side statements exist this way). Statements are brought to the primary before
// the view is read there; cursors cannot move, so the view is read where the open portals are.

const env = clusterWithSluice(1, { weights: [0, 1] });

t.test('pg_prepared_statements lists statements prepared on a standby', async (t) => {
  const c = await env.sluice.client();
  const before = env.sluice.server.selectCount[1]!;
  await c.query({ name: 'on_standby', text: 'select 1 as one' });
  t.equal(env.sluice.server.selectCount[1], before + 1, 'the statement was prepared and run on the standby');
  await c.query('prepare sql_level as select 1');
  const listed = (await c.query('select name, from_sql from pg_prepared_statements order by name')).rows;
  t.same(listed, [
    { name: 'on_standby', from_sql: false },
    { name: 'sql_level', from_sql: true },
  ]);
  // The same read in the extended protocol (a Parse of its own), and after a Close.
  const ext = (await c.query({ text: 'select name from pg_prepared_statements where not from_sql', values: [] })).rows;
  t.same(ext, [{ name: 'on_standby' }], 'through the extended protocol too');
  const d = await env.sluice.client({ port: env.cluster.port(0) });
  await d.query({ name: 'on_standby', text: 'select 1 as one' });
  await d.query('prepare sql_level as select 1');
  t.same((await d.query('select name, from_sql from pg_prepared_statements order by name')).rows, listed, 'what a direct connection lists');
  await d.end();
});

t.test('pg_cursors lists the portals a transaction opened on a standby', async (t) => {
  const c = await RawClient.startup(env.sluice.port);
  try {
    c.send(serialize.query('begin'));
    await c.until(() => c.readyCount() === 2);
    c.send(
      serialize.parse({ name: 'series', text: 'select g from generate_series(1, 10) g' }),
      serialize.bind({ portal: 'open_portal', statement: 'series' }),
      serialize.execute({ portal: 'open_portal', rows: 2 }),
      serialize.sync(),
    );
    await c.until(() => c.readyCount() === 3);
    t.ok(c.frames.some((f) => f.type === 's'), 'the portal is suspended, still open');
    c.send(serialize.query('select name from pg_cursors'));
    await c.until(() => c.readyCount() === 4);
    const rows = c.frames.filter((f) => f.type === 'D').map((f) => f.body.subarray(6).toString());
    t.ok(rows.includes('open_portal'), `pg_cursors shows the portal (rows: ${JSON.stringify(rows.slice(-3))})`);
    t.equal(env.sluice.server.selectCount[1]! > 0, true, 'the reads ran on the standby');
  } finally {
    c.close();
  }
});
