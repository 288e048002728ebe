import t from 'tap';
import { LiveMap, LiveSet } from '../../src/util/live-set';

t.test('LiveSet: members in order of adding, a deleted one gone at once and its entry emptied', async (t) => {
  const s = new LiveSet<{ id: number }>();
  const a = { id: 1 };
  const b = { id: 2 };
  const ea = s.add(a);
  s.add(b);
  t.same([...s].map((m) => m.id), [1, 2]);
  t.equal(s.size, 2);
  s.delete(ea);
  t.equal(ea.member, null, 'the entry no longer refers to the member (a stale table keeps only the entry)');
  t.same([...s].map((m) => m.id), [2]);
  t.equal(s.size, 1);
  s.delete(ea);
  t.equal(s.size, 1, 'deleting twice is harmless (a TLS session reports its close twice)');
});

t.test('LiveMap: get, has, set again, delete', async (t) => {
  const m = new LiveMap<number, { id: number }>();
  const v = { id: 7 };
  m.set(1, v);
  t.equal(m.get(1), v);
  t.ok(m.has(1));
  m.set(1, { id: 8 });
  t.equal(m.get(1)?.id, 8, 'set replaces the value');
  m.delete(1);
  t.equal(m.get(1), undefined);
  t.notOk(m.has(1));
  m.delete(1);
  t.equal(m.get(1), undefined, 'deleting twice is harmless');
});
