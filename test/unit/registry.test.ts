import t from 'tap';
import { SessionRegistry } from '../../src/session/registry';
import { ClientError } from '../../src/protocol/client-error';
import { checkStartup, unsupportedProtocol } from '../../src/session/startup';
import { poolKey } from '../../src/pool/pool-key';

t.test('past num_init_children clients wait in line and get the next free slot', async (t) => {
  const r = new SessionRegistry(2, 0);
  await r.acquireSlot({});
  await r.acquireSlot({});
  const order: string[] = [];
  const a = {};
  const w1 = r.acquireSlot(a).then(() => order.push('a'));
  const w2 = r.acquireSlot({}).then(() => order.push('b'));
  t.equal(r.waitingCount, 2);
  r.releaseSlot();
  await w1;
  t.same(order, ['a']);
  r.releaseSlot();
  await w2;
  t.same(order, ['a', 'b']);
  t.equal(r.activeCount, 2);
});

t.test('reserved_connections refuses with 53300 instead of queueing', async (t) => {
  const r = new SessionRegistry(3, 1);
  await r.acquireSlot({});
  await r.acquireSlot({});
  await t.rejects(r.acquireSlot({}), { code: '53300', message: 'sorry, too many clients already' });
});

t.test('a cancel needs both the process id and the secret', async (t) => {
  const r = new SessionRegistry(5, 0);
  let cancelled = 0;
  const s = { processId: 1234, cancel: () => cancelled++ };
  const secret = r.newSecret(s);
  t.notOk(r.cancel(1234, secret ^ 1), 'wrong secret');
  t.notOk(r.cancel(1235, secret), 'wrong pid');
  t.equal(cancelled, 0);
  t.ok(r.cancel(1234, secret));
  t.equal(cancelled, 1);
  r.forgetSecret(secret);
  t.notOk(r.cancel(1234, secret), 'forgotten after the session ends');
});


t.test('several instances: secrets carry the slot; another slot is forwarded once, this one never', async (t) => {
  const r = new SessionRegistry(5, 0);
  const sent: [number, number, number][] = [];
  r.setPeers({ slot: () => 7, forward: (slot, pid, secret) => sent.push([slot, pid, secret]) });
  for (let i = 0; i < 50; i++) t.equal(r.newSecret({ processId: i, cancel: () => undefined }) >>> 24, 7);
  const other = (9 << 24) | 12345;
  t.notOk(r.cancel(1, other, 1000), 'not a session of this instance');
  t.notOk(r.cancel(1, other, 2000), 'the same request again soon');
  t.same(sent, [[9, 1, other]], 'sent on once, to slot 9');
  r.cancel(1, other, 1000 + 6000);
  t.equal(sent.length, 2, 'again once the quiet time is over');
  r.cancel(1, (7 << 24) | 1, 9000);
  r.cancel(1, 1, 9000);
  t.equal(sent.length, 2, 'its own slot and slot 0 are never sent on');
});
t.test('startup checks', async (t) => {
  const p = (params: [string, string][], minor = 0) => ({ kind: 'startup' as const, major: 3, minor, params: new Map(params), terminated: true });
  const sent: Buffer[] = [];
  const send = (b: Buffer) => sent.push(b);
  t.throws(() => checkStartup(p([['database', 'x']]), send), { code: '28000' });
  const req = checkStartup(p([['user', 'bob'], ['application_name', 'app'], ['_pq_.foo', '1']], 2), send);
  t.equal(req.database, 'bob', 'database defaults to the user');
  t.same([...req.params.keys()], ['user', 'database', 'application_name']);
  // NegotiateProtocolVersion ('v'): version 3.0 (as PostgreSQL sends it), one option not recognised, its name.
  t.same(sent, [Buffer.from('v\0\0\0\x15\0\x03\0\0\0\0\0\x01_pq_.foo\0', 'latin1')], 'NegotiateProtocolVersion sent at once');
  t.throws(() => checkStartup(p([['user', 'u'], ['replication', 'true']]), send), { code: '0A000' });
  t.equal(checkStartup(p([['user', 'u'], ['replication', 'of']]), send).user, 'u', 'replication off (any unique prefix) is a plain session');
  t.throws(() => checkStartup(p([['user', 'u'], ['replication', 'maybe']]), send), { code: '22023', hint: 'Valid values are: "false", 0, "true", 1, "database".' });
  t.throws(() => checkStartup({ ...p([['user', 'u']]), terminated: false }, send), { code: '08P01' });
  t.equal(checkStartup(p([['user', 'u'.repeat(70)]]), send).user, 'u'.repeat(63), 'names cut to 63 bytes, as PostgreSQL does');
  const e = unsupportedProtocol(0x00020000);
  t.ok(e instanceof ClientError);
  t.equal(e.message, 'unsupported frontend protocol 2.0: server supports 3.0 to 3.0');
});

t.test('pool keys separate node, database, user and startup parameters', async (t) => {
  const base = new Map([['user', 'u'], ['database', 'd'], ['application_name', 'a']]);
  t.equal(poolKey(0, base), poolKey(0, new Map([['database', 'd'], ['application_name', 'a'], ['user', 'u']])), 'order does not matter');
  t.not(poolKey(0, base), poolKey(1, base));
  t.not(poolKey(0, base), poolKey(0, new Map([...base, ['user', 'v']])));
  t.not(poolKey(0, base), poolKey(0, new Map([...base, ['application_name', 'b']])));
});
