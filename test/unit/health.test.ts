import t from 'tap';
import { averageDuration, averageRetries, HealthCheck, HealthHost, HealthSettings } from '../../src/cluster/health';
import { conninfoTarget } from '../../src/cluster/discover';
import { createLogger } from '../../src/log/logger';
import { Writable } from 'node:stream';
import { FakeClock } from '../helpers/fake-clock';

// The health check's retry and statistics rules, with a scripted probe (no server, no sleeps:
// retry_delay is 0).

const log = createLogger('error', new Writable({ write: (_c, _e, cb) => cb() }));
const settings: HealthSettings = { periodMs: 0, timeoutMs: 0, user: 'u', password: '', database: 'd', maxRetries: 2, retryDelayMs: 0 };

function host(results: boolean[], skipped = false) {
  const events: string[] = [];
  const h: HealthHost = {
    probe: async () => {
      const ok = results.shift();
      if (!ok) throw new Error('refused');
    },
    skipped: () => skipped,
    failed: (reason) => events.push(`failed: ${reason}`),
    succeeded: () => events.push('succeeded'),
  };
  return { h, events };
}

t.test('a failure is retried max_retries times before the node is reported', async (t) => {
  const { h, events } = host([false, false, false]);
  const c = new HealthCheck(0, settings, h, log);
  t.equal(await c.checkNow(), false);
  t.same(events, ['failed: refused']);
  t.match(c.stats, { total: 1, success: 0, fail: 1, retry: 2, maxRetry: 2 });
  t.ok(c.stats.lastFailure instanceof Date);
});

t.test('a retry that succeeds is a success; durations span the attempts (a fake clock: exact)', async (t) => {
  const { h, events } = host([false, true, true]);
  const clock = new FakeClock();
  // Each attempt takes 7 ms.
  const timed: HealthHost = { ...h, probe: async (s) => (clock.tick(7), h.probe(s)) };
  const c = new HealthCheck(0, settings, timed, log, clock);
  t.equal(await c.checkNow(), true);
  t.equal(await c.checkNow(), true);
  t.same(events, ['succeeded', 'succeeded']);
  t.match(c.stats, { total: 2, success: 2, fail: 0, retry: 1, maxRetry: 1 });
  t.equal(averageRetries(c.stats), 0.5);
  t.match(c.stats, { minDurationMs: 7, maxDurationMs: 14, totalDurationMs: 21 }, 'a check that retried lasted both attempts');
  t.equal(averageDuration(c.stats), 10.5);
});

t.test('a down node is skipped and counted', async (t) => {
  const { h, events } = host([], true);
  const c = new HealthCheck(0, settings, h, log);
  t.equal(await c.checkNow(), false);
  t.same(events, [], 'no verdict for a node that is not checked');
  t.match(c.stats, { total: 1, skip: 1, fail: 0 });
  t.ok(c.stats.lastSkip instanceof Date);
  t.equal(averageRetries(c.stats), 0);
});

t.test('concurrent requests share one check', async (t) => {
  const { h } = host([true]);
  const c = new HealthCheck(0, settings, h, log);
  const [a, b] = await Promise.all([c.checkNow(), c.checkNow()]);
  t.same([a, b], [true, true]);
  t.equal(c.stats.total, 1);
});

t.test("a standby's primary_conninfo names the node it follows", async (t) => {
  t.same(conninfoTarget("user=postgres host=127.0.0.1 port=5433 application_name=node1"), { host: '127.0.0.1', port: '5433' });
  t.same(conninfoTarget("host='db.example' sslmode=prefer"), { host: 'db.example', port: '5432' });
});
