import t from 'tap';
import { fakeCluster } from '../helpers/fake-backend';
import { RawClient, serialize } from '../helpers/raw-client';

t.test('a read balanced to a standby: the standby gets it, the client its rows', async (t) => {
  const f = await fakeCluster(2, { weights: [0, 1] });
  t.teardown(() => f.stop());
  const c = await RawClient.startup(f.sluice.port);
  c.send(serialize.query('select 1'));
  await c.until(() => c.readyCount() === 2);
  const rows = c.frames.filter((x) => x.type === 'D').map((x) => x.body.subarray(6).toString());
  t.same(rows, ['node1']);
  t.same(f.nodes[1]!.transcript(), ['Q select 1']);
  t.same(f.nodes[0]!.transcript(), []);
  c.close();
});
