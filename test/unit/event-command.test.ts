import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ClusterEvent, EventCommand, eventEnvironment, eventName, expandEventPlaceholders } from '../../src/cluster/event-command';
import { createLogger } from '../../src/log/logger';

// event_command: repmgr's placeholders (and the epoch), each one shell word; the events run one
// at a time, in the order they happened, even when the first one's command is the slower.

const e: ClusterEvent = { event: 'failover', node: 0, epoch: 42, time: new Date('2026-12-05T10:00:00.000Z'), ok: true, detail: "node 0 detached: it's $(gone)" };

t.test('placeholders and environment', async (t) => {
  t.equal(expandEventPlaceholders('x %e %n %s %E %t %d %% %q', e), `x 'failover' '0' '1' '42' '2026-12-05T10:00:00.000Z' 'node 0 detached: it'\\''s $(gone)' % %q`);
  t.same(eventEnvironment({ ...e, ok: false }), {
    SLUICE_EVENT: 'failover',
    SLUICE_EVENT_NODE_ID: '0',
    SLUICE_EVENT_SUCCESS: '0',
    SLUICE_EVENT_TIME: '2026-12-05T10:00:00.000Z',
    SLUICE_EVENT_DETAIL: e.detail,
    SLUICE_EPOCH: '42',
  });
});

t.test('event names', async (t) => {
  t.equal(eventName('failover', 'node 0 detached (was primary): health check failed'), 'failover');
  t.equal(eventName('failover', 'node 0 detached: promote node 1 (switchover)'), 'switchover');
  t.equal(eventName('primary', 'node 1 is the primary'), 'new_primary');
  t.equal(eventName('follow', 'node 2 follows the new primary 1'), 'follow');
  t.equal(eventName('failback', 'node 0 attached'), 'failback');
  t.equal(eventName('recovery', 'node 0 recovered and attached'), 'recovery');
});

t.test('one at a time, in order; nothing without a command', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-event-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, 'events');
  let command = `if [ %n = 0 ]; then sleep 0.3; fi; echo %e %n %E >> ${out}`;
  const ec = new EventCommand({ command: () => command, cwd: () => dir, timeoutMs: () => 10_000 }, createLogger('error'));
  ec.notify(e);
  ec.notify({ ...e, event: 'new_primary', node: 1, epoch: 43 });
  await ec.drained();
  t.equal(readFileSync(out, 'utf8'), 'failover 0 42\nnew_primary 1 43\n', 'the slow first event is still first');
  command = '';
  ec.notify(e);
  await ec.drained();
  t.equal(readFileSync(out, 'utf8').split('\n').length, 3, 'event_command "" runs nothing');
});
