import t from 'tap';
import { CommitPositions } from '../../src/cluster/commit-positions';

function clock() {
  let now = 1_000;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

t.test('a commit whose position is being asked holds reads on the primary until it is known', async (t) => {
  const c = clock();
  const p = new CommitPositions(c.now);
  t.equal(p.pending(), false);
  const a = p.committing();
  const b = p.committing();
  t.equal(p.pending(), true);
  p.committed(b, 500);
  t.equal(p.pending(), true, 'one still unknown');
  t.equal(p.committedLsn, 500);
  p.committed(a, 300);
  t.equal(p.pending(), false);
  t.equal(p.committedLsn, 500, 'the position only moves forward');
  const lost = p.committing();
  p.committed(lost, null);
  t.equal(p.pending(), false, 'a position the primary did not give stops waiting');
  t.equal(p.committedLsn, 500);
});

t.test('a position that never comes is given up after two seconds', async (t) => {
  const c = clock();
  const p = new CommitPositions(c.now);
  p.committing();
  c.advance(1_999);
  t.equal(p.pending(), true);
  c.advance(1);
  t.equal(p.pending(), false);
});

t.test('a standby found behind is not asked again for 10 ms', async (t) => {
  const c = clock();
  const p = new CommitPositions(c.now);
  t.equal(p.recentlyBehind(1), false);
  p.foundBehind(1);
  t.equal(p.recentlyBehind(1), true);
  t.equal(p.recentlyBehind(2), false, 'per standby');
  c.advance(10);
  t.equal(p.recentlyBehind(1), false);
});

t.test('a new primary restarts the positions on its timeline', async (t) => {
  const p = new CommitPositions(clock().now);
  p.committed(p.committing(), 9_000);
  p.committing();
  p.foundBehind(1);
  p.restart(4_000);
  t.equal(p.committedLsn, 4_000);
  t.equal(p.pending(), false);
  t.equal(p.recentlyBehind(1), false);
});
