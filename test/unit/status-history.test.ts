import t from 'tap';
import { StatusHistory } from '../../src/http/history';
import type { HttpHost } from '../../src/http/host';

// The status page's history: rates from the cumulative counters Sluice keeps, over the time
// between two samples (a fake clock), with no value where a node had none.

function host() {
  const state = {
    selects: [0, 0],
    latency: [
      { sum: 0, count: 0 },
      { sum: 0, count: 0 },
    ],
    delayBytes: null as number | null,
    sessions: 3,
    primary: 0,
    status1: 'up',
  };
  const h = {
    selectCount: state.selects,
    backendStats: { nodes: [{ insert: 0, update: 0, delete: 0, ddl: 0, other: 0 }, { insert: 0, update: 0, delete: 0, ddl: 0, other: 0 }] },
    metrics: { statementDuration: { totals: (n: number) => ({ ...state.latency[n]! }) } },
    cluster: {
      get topology() {
        return { primaryId: state.primary, nodes: [{ id: 0, status: 'up' }, { id: 1, status: state.status1 }] };
      },
      replication: { info: [undefined, { get delayBytes() { return state.delayBytes; } }] },
    },
    get sessionCount() {
      return state.sessions;
    },
  } as unknown as HttpHost;
  return { h, state };
}

t.test('statements per second, mean latency and lag between two samples', async (t) => {
  const { h, state } = host();
  let now = 1_000_000;
  const history = new StatusHistory(h, () => now);
  history.start();
  history.stop();
  now += 2000;
  state.selects[0] = 100;
  state.selects[1] = 40;
  (h.backendStats.nodes[0] as { insert: number }).insert = 20;
  state.latency[0] = { sum: 0.3, count: 120 };
  state.delayBytes = 1500;
  history.sample();
  now += 2000;
  state.sessions = 5;
  history.sample();
  const [a, b] = history.list();
  t.same(a!.statementsPerSecond, [60, 20], '(100 reads + 20 writes) / 2 s on node 0, 40 / 2 s on node 1');
  t.equal(a!.latencyMs[0]!.toFixed(3), '2.500', '0.3 s over 120 exchanges');
  t.equal(a!.latencyMs[1], null, 'no exchange on node 1: no latency, not zero');
  t.same(a!.lagBytes, [null, 1500], 'the primary has no lag; the standby 1,500 bytes');
  t.same(b!.statementsPerSecond, [0, 0], 'nothing ran in the second interval');
  t.equal(b!.sessions, 5);
  state.status1 = 'down';
  now += 2000;
  history.sample();
  state.status1 = 'up';
  now += 2000;
  history.sample();
  now += 2000;
  history.sample();
  const [, , down, back, again] = history.list();
  t.same([down!.statementsPerSecond[1], down!.lagBytes[1]], [null, null], 'a node down: a gap in its lines, not a zero');
  t.equal(back!.statementsPerSecond[1], null, 'its line starts again at the next sample');
  t.equal(again!.statementsPerSecond[1], 0);
});

t.test('ten minutes kept, the oldest samples go', async (t) => {
  const { h } = host();
  let now = 0;
  const history = new StatusHistory(h, () => now);
  history.start();
  history.stop();
  for (let i = 0; i < 400; i++) {
    now += 2000;
    history.sample();
  }
  t.equal(history.list().length, 300);
  t.equal(history.list()[0]!.t, 101 * 2000);
});
