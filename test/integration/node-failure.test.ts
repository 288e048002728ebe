import t from 'tap';
import { clusterWithSluice, startSluice, waitFor } from '../helpers/sluice';

// A node that dies mid-statement: the client gets an ErrorResponse with a real SQLSTATE, never a
// silent close; new sessions get a clear error while it is down and work again once it is back.

// Failover off: what a node's death looks like without it (test/integration/failover*.test.ts
// cover failover).
const env = clusterWithSluice(1, { failover_on_backend_error: false, health_check_period: 0 });

t.test('primary killed with -9 mid-query', async (t) => {
  const c = await env.sluice.client();
  const idle = await env.sluice.client();
  // Caught at once: the rejection arrives while the kill is still being awaited.
  const running = c.query('select pg_sleep(20)').catch((e: unknown) => e);
  await waitFor('statement running', async () => Number(await env.cluster.psql(0, "select count(*) from pg_stat_activity where query = 'select pg_sleep(20)'")) > 0);
  await env.cluster.sh('kill', '0');
  const err = (await running) as { code?: string; message: string };
  t.ok(err instanceof Error, 'the query failed');
  t.match(err.code, /^(08006|57P01|57P02|57P03)$/, `an ErrorResponse with a real SQLSTATE (${err.code}: ${err.message})`);
  const idleErr = (await idle.query('select 1').catch((e: unknown) => e)) as { code?: string; message: string };
  t.ok(idleErr instanceof Error, 'an idle session on the dead node fails too');

  await t.rejects(env.sluice.client(), { code: '08006' }, 'a new session while the node is down: 08006');
  await env.cluster.sh('start', '0');
  const again = await env.sluice.client();
  t.same((await again.query('select 1 as back')).rows, [{ back: 1 }], 'works again when the node is back');
});

t.test('primary shut down (fast): sessions get the server\'s own 57P01', async (t) => {
  const c = await env.sluice.client();
  await c.query('select 1');
  const gone = new Promise<{ code?: string }>((resolve) => c.once('error', resolve));
  await env.cluster.sh('stop', '0');
  t.equal((await gone).code, '57P01');
  await env.cluster.sh('start', '0');
});

t.test('no primary at start-up: Sluice listens, sessions wait for one, then work once it is found', async (t) => {
  await env.cluster.sh('stop', '0');
  const s = await startSluice(env.cluster, { failover_hold_timeout: 1, health_check_period: 0, search_primary_node_timeout: 0 });
  try {
    await t.rejects(s.client(), { code: '57P03', message: 'no primary node is available' }, 'after failover_hold_timeout: 57P03');
    await env.cluster.sh('start', '0');
    await waitFor('the primary found', () => s.server.cluster.topology.primaryId === 0, 15_000);
    const c = await s.client();
    t.same((await c.query('select pg_is_in_recovery() as r')).rows, [{ r: false }], 'sessions run on the primary found later');
  } finally {
    await s.stop();
  }
});
