import t from 'tap';
import { Client } from 'pg';
import { createCluster, TestCluster } from '../helpers/cluster';
import { startSluice, TestSluice, waitFor } from '../helpers/sluice';

// A primary whose max_connections is below what the pool may hold: every application_name is a
// pool key of its own, so idle connections of finished sessions fill the server. Sluice must make
// room (close an idle pooled connection and retry), and its health check must not take a full
// server for a dead one (pgpool fails such a node over).

const MAX = 8;
let cluster: TestCluster;
let sluice: TestSluice;

t.before(async () => {
  cluster = await createCluster(1, { maxConnections: MAX });
  sluice = await startSluice(cluster, { load_balance_mode: false, health_check_period: 1, health_check_timeout: 2, connect_timeout: 2000 });
});
t.teardown(async () => {
  await sluice?.stop();
  await cluster?.destroy();
});

async function session(app: string): Promise<string> {
  const c = new Client({ host: '127.0.0.1', port: sluice.port, user: 'postgres', database: 'postgres', application_name: app });
  await c.connect();
  try {
    return (await c.query('select current_setting($1) as v', ['application_name'])).rows[0].v as string;
  } finally {
    await c.end();
  }
}

t.test('idle connections under many keys fill the server: every new session still gets one', async (t) => {
  // Three times more keys than the server has connections: without making room, the ninth fails.
  for (let i = 0; i < 3 * MAX; i++) t.equal(await session(`app${i}`), `app${i}`);
  const direct = new Client({ host: '127.0.0.1', port: cluster.port(0), user: 'postgres', database: 'postgres' });
  await t.rejects(direct.connect(), { code: '53300' }, 'the server is full of idle pooled connections');
  await direct.end().catch(() => undefined);
  t.ok(
    sluice.logs.some((l) => String(l.msg).includes('to make room')),
    'idle pooled connections were closed to make room',
  );
});

t.test('a health check refused for too many connections leaves the node up', async (t) => {
  // The server is still full of idle pooled connections from the test before.
  await waitFor('a health check against the full server', () => sluice.logs.some((l) => String(l.msg).includes('refused for too many connections; it is up')), 15_000);
  t.equal(sluice.server.cluster.topology.nodes[0]!.status, 'up', 'node 0 is still up');
  t.notOk(
    sluice.logs.some((l) => l.msg === 'health check failed'),
    'no health check failed',
  );
  t.equal(await session('after'), 'after', 'and serves new sessions');
});
