import t from 'tap';
import { serialize } from 'pg-protocol';
import { createCluster, TestCluster } from '../helpers/cluster';
import { RawClient } from '../helpers/raw-client';
import { startSluice, TestSluice, waitFor } from '../helpers/sluice';

// backend_hostname as pgpool reads it: a value starting with '/' is the directory of the node's
// Unix-domain socket. This test cluster's nodes have their sockets in the cluster's folder.

let cluster: TestCluster;
let sluice: TestSluice;

t.before(async () => {
  cluster = await createCluster(1, { sockets: true });
  // Every node at its socket instead of 127.0.0.1; reads balanced to the standby only.
  sluice = await startSluice(cluster, {
    health_check_period: 1,
    sr_check_period: 1,
    backend: [0, 1].map((i) => ({ hostname: cluster.dir, port: cluster.port(i), application_name: `node${i}`, weight: i })),
  });
});
t.teardown(async () => {
  await sluice?.stop();
  await cluster?.destroy();
});

t.test('health checks and replication checks use the sockets: both nodes stay up, with a replay position', async (t) => {
  const nodes = sluice.server.cluster.topology.nodes;
  await waitFor('a replication check of the standby', () => sluice.server.replication.info[1]!.state === 'streaming', 15_000);
  t.same(nodes.map((n) => n.status), ['up', 'up']);
  t.same(nodes.map((n) => n.role), ['primary', 'standby']);
});

t.test('sessions reach both nodes through their sockets', async (t) => {
  const c = await sluice.client();
  // inet_client_addr() is null only on a connection that came through the Unix-domain socket.
  // (Both functions are stable: a read. pg_is_in_recovery() is volatile, so it would not balance.)
  const viaSocket = "select inet_client_addr() is null as local, current_setting('port') as port";
  t.same((await c.query(viaSocket)).rows, [{ local: true, port: String(cluster.port(1)) }], 'a read ran on the standby, over its socket');
  await c.query('create temp table t as select 1 as x');
  t.same((await c.query(viaSocket + ' from t')).rows, [{ local: true, port: String(cluster.port(0)) }], 'a read of a temp table ran on the primary, over its socket');
});

t.test('a cancel reaches the statement through the socket', async (t) => {
  const c = await sluice.client();
  const { processID, secretKey } = c as unknown as { processID: number; secretKey: number };
  const sleeper = c.query('select pg_sleep(30) from pg_class limit 1');
  const other = await sluice.client();
  await waitFor('the statement running', async () => (await other.query("select 1 from pg_stat_activity where query like 'select pg_sleep(30)%' and state = 'active'")).rowCount);
  const raw = await RawClient.open(sluice.port);
  raw.send(serialize.cancel(processID, secretKey));
  await raw.waitClosed();
  await t.rejects(sleeper, { code: '57014' });
});
