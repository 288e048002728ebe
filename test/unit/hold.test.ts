import t from 'tap';
import { describeHold, Hold, HELD_TOO_LONG_MS, HoldReason } from '../../src/session/hold';

t.test('a hold is stuck only past the limit, for a reason of Sluice\'s own, with no node owing a reply', async (t) => {
  const at = 1_000;
  const h = new Hold({ kind: 'answering', command: 'SHOW POOL_NODES' }, at);
  t.notOk(h.stuck(at + HELD_TOO_LONG_MS - 1, false), 'not before the limit');
  t.ok(h.stuck(at + HELD_TOO_LONG_MS, false), 'at the limit');
  t.notOk(h.stuck(at + 60_000, true), 'a node owing a reply will wake it: not stuck');
  for (const reason of [{ kind: 'paused' }, { kind: 'newPrimary' }, { kind: 'connecting', node: 1 }] as HoldReason[]) {
    t.notOk(new Hold(reason, at).stuck(at + 60_000, false), `${reason.kind} waits on something outside Sluice, with a bound of its own`);
  }
  for (const reason of [
    { kind: 'replaying', node: 1 },
    { kind: 'checkingLag', node: 2 },
    { kind: 'nodeAnswering', node: 0 },
    { kind: 'functionLookup', names: ['f'] },
  ] as HoldReason[]) {
    t.ok(new Hold(reason, at).stuck(at + HELD_TOO_LONG_MS, false), `${reason.kind} with no node owing anything is stuck`);
  }
});

t.test('every reason reads as what the message waits for', async (t) => {
  t.equal(describeHold({ kind: 'checkingLag', node: 2 }), "node 2's replay position");
  t.equal(describeHold({ kind: 'nodeAnswering', node: 0 }), 'node 0 to finish answering');
  t.equal(describeHold({ kind: 'functionLookup', names: ['f', 'g'] }), 'the volatility of f, g');
  t.equal(describeHold({ kind: 'answering', command: 'PGPOOL SHOW' }), "Sluice's answer to PGPOOL SHOW");
});
