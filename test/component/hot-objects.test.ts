// The objects a session reads on every statement are fast-mode objects in V8. An object in
// dictionary mode (an object literal with getters was one: the session context) makes every
// read of it a generic property look-up, which profiles show only as "LoadIC" time under the
// caller. V8 answers the question itself through its natives syntax, enabled here at run time.
import t from 'tap';
import { setFlagsFromString } from 'node:v8';
import { fakeCluster } from '../helpers/fake-backend';
import { RawClient, serialize } from '../helpers/raw-client';

setFlagsFromString('--allow-natives-syntax');
const hasFastProperties = new Function('o', 'return %HasFastProperties(o)') as (o: object) => boolean;

/** Every object reachable from `roots` (own enumerable properties, Map and Set values), not into event emitters or buffers. */
function reachable(roots: object[], depth: number): { path: string; o: object }[] {
  const seen = new Set<object>();
  const out: { path: string; o: object }[] = [];
  let level = roots.map((o, i) => ({ path: `session${i}`, o }));
  for (let d = 0; d <= depth && level.length > 0; d++) {
    const next: { path: string; o: object }[] = [];
    for (const { path, o } of level) {
      if (seen.has(o) || ArrayBuffer.isView(o) || o instanceof ArrayBuffer || '_events' in o) continue;
      seen.add(o);
      if (o instanceof Map || o instanceof Set) {
        for (const v of o.values()) if (v !== null && typeof v === 'object') next.push({ path: `${path}{}`, o: v as object });
        continue;
      }
      out.push({ path, o });
      for (const [k, v] of Object.entries(o)) if (v !== null && typeof v === 'object' && k !== 'log' && k !== 'childLog') next.push({ path: `${path}.${k}`, o: v as object });
    }
    level = next;
  }
  return out;
}

t.test("a session's objects, its context among them, are not in dictionary mode", async (t) => {
  const f = await fakeCluster(2);
  t.teardown(() => f.stop());
  const c = await RawClient.startup(f.sluice.port);
  c.send(serialize.query('select 1'));
  await c.until(() => c.readyCount() === 2);
  const sessions = [...(f.sluice.server as unknown as { sessions_: Iterable<object> }).sessions_];
  t.equal(sessions.length, 1);
  const objects = reachable(sessions, 6);
  const names = new Set(objects.map(({ o }) => o.constructor?.name));
  for (const n of ['Session', 'ServerContext', 'Relay', 'NodeLink', 'BackendConnection', 'TcpClient', 'SessionSettings']) t.ok(names.has(n), `reached a ${n}`);
  const slow = objects.filter(({ o }) => !Array.isArray(o) && !hasFastProperties(o)).map(({ path, o }) => `${path} (${o.constructor?.name ?? 'null prototype'})`);
  // prom-client keeps its metrics in an object keyed by name: a dictionary by design, read at scrapes only.
  t.same(slow.filter((p) => !p.includes('registry._metrics')), []);
  c.close();
});
