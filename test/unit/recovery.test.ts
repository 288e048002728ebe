import { mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { OnlineRecovery, RecoveryError, RecoveryHost, RecoveryOptions } from '../../src/cluster/recovery';
import { Topology } from '../../src/cluster/topology';
import { createLogger } from '../../src/log/logger';
import { Writable } from 'node:stream';

// The recovery sequence with shell scripts that record what they were given, and a host whose
// node becomes a standby when the test says so: no PostgreSQL needed.

const dir = mkdtempSync(join(tmpdir(), 'sluice-recovery-unit-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const trace = join(dir, 'trace');
const script = (name: string, body = '') => {
  const f = join(dir, name);
  writeFileSync(f, `#!/bin/sh\necho "${name} $*" >>${trace}\n${body}\n`);
  chmodSync(f, 0o755);
  return f;
};
const log = createLogger('error', new Writable({ write: (_c, _e, cb) => cb() }));
const backends = ['/data/p', '/data/s1', '/data/s2'].map((d, i) => ({ hostname: i === 2 ? '' : `h${i}`, port: 5000 + i, weight: 1, data_directory: d, flag: 'ALLOW_TO_FAILOVER', application_name: `node${i}` }));

function setup(opts: Partial<RecoveryOptions>, standby: () => boolean = () => true) {
  writeFileSync(trace, '');
  const topology = new Topology(backends as never, null, () => undefined);
  topology.setPrimary(0);
  const calls: string[] = [];
  const host: RecoveryHost = {
    onPrimary: async (sqls) => {
      calls.push(...sqls);
      return sqls.map(() => [['t']]);
    },
    isStandby: async () => standby(),
    failback: async (id) => {
      calls.push(`failback ${id}`);
    },
    event: (kind, node, _message, ok) => calls.push(`${kind} ${node} ${ok ? 'ok' : 'failed'}`),
  };
  const r = new OnlineRecovery(topology, { firstStageCommand: '', secondStageCommand: '', remoteStartCommand: '', timeoutMs: 2000, cwd: dir, viaExtension: false, ...opts }, host, log);
  const progress: string[] = [];
  const events: string[] = [];
  const caller = {
    holdSessions: async () => {
      events.push(`hold at ${topology.nodes[2]!.recovery}`);
      return () => events.push('release');
    },
    progress: (m: string) => progress.push(m),
  };
  return { r, topology, calls, progress, events, caller };
}

t.test("stages, remote start and failback in order, with pgpool's arguments", async (t) => {
  const { r, topology, calls, progress, events, caller } = setup({
    firstStageCommand: script('first'),
    secondStageCommand: script('second'),
    remoteStartCommand: script('start'),
  });
  await r.recover(2, caller);
  t.same(readFileSync(trace, 'utf8').trim().split('\n'), [
    'first /data/p localhost /data/s2 5000 2 5002 h0',
    'second /data/p localhost /data/s2 5000 2 5002 h0',
    'start localhost /data/s2',
  ], "an empty host is passed as localhost, as pgpool does");
  t.same(events, ['hold at stage 2', 'release'], 'sessions held for stage 2 and released at the end');
  t.same(calls, ['failback 2', 'recovery 2 ok'], 'attached, then reported as an event');
  t.equal(progress.length, 4);
  t.equal(topology.nodes[2]!.recovery, null, 'the step is cleared');
  t.equal(r.inProgress, null);
});

t.test('through the pgpool_recovery extension: the same arguments as SQL on the primary', async (t) => {
  const { r, calls, caller } = setup({ firstStageCommand: "stage'1", viaExtension: true });
  await r.recover(1, caller);
  t.same(calls, [
    'SET statement_timeout TO 0',
    "SELECT pgpool_recovery('stage''1', 'h1', '/data/s1', '5000', 1, '5001', 'h0')",
    "SELECT pgpool_remote_start('h1', '/data/s1')",
    'failback 1',
    'recovery 1 ok',
  ]);
});

t.test('a failing stage stops the recovery with its exit code and last error lines', async (t) => {
  const { r, calls, events, caller, topology } = setup({ firstStageCommand: script('first', 'echo "disk full" >&2; exit 4'), secondStageCommand: script('second') });
  await t.rejects(r.recover(2, caller), new RecoveryError('node recovery failed', 'recovery_1st_stage_command exited with code 4: disk full'));
  t.same(calls, ['recovery 2 failed'], 'no failback; the failure is reported as an event');
  t.same(events, [], 'no session was held');
  t.equal(topology.nodes[2]!.recovery, null);
});

t.test('a node that never becomes a standby fails after recovery_timeout; sessions are released', async (t) => {
  const { r, calls, events, caller } = setup({ secondStageCommand: script('second'), timeoutMs: 600 }, () => false);
  await t.rejects(r.recover(2, caller), { message: 'recovery is checking if postmaster is started' });
  t.same(events, ['hold at stage 2', 'release']);
  t.same(calls, ['recovery 2 failed']);
});

t.test('no primary: the stage cannot run', async (t) => {
  const { r, topology, caller } = setup({ firstStageCommand: script('first') });
  topology.setPrimary(null);
  await t.rejects(r.recover(2, caller), new RecoveryError('node recovery failed', 'no primary node is known'));
});
