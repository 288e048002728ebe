import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { CliSluice, startCli } from '../helpers/cli';
import { createCluster, TestCluster } from '../helpers/cluster';
import { startEtcd, TestEtcd } from '../helpers/etcd';
import { pcpPassFile, sluicectl } from '../helpers/pcp';
import { groupFormed, HOOK_ARGS, memberConfig, recorded, recordInto } from '../helpers/group';
import { SCRIPTS, waitFor } from '../helpers/sluice';

// The leader of three instances dies (kill -9, and its running hook with it, as when its machine
// goes) in the middle of a primary failover, after failover_command started and before it
// promoted anything: another instance becomes leader within the lease's TTL and completes the
// failover; exactly one standby is promoted.

let cluster: TestCluster;
let etcd: TestEtcd;
let dir: string;
let passFile: string;
const sluices: CliSluice[] = [];

const lines = (file: string) => recorded(join(dir, file));

t.before(async () => {
  [cluster, etcd] = await Promise.all([createCluster(2), startEtcd(3)]);
  dir = mkdtempSync(join(tmpdir(), 'sluice-wd-crash-'));
  passFile = pcpPassFile();
  for (let i = 0; i < 3; i++) {
    const work = join(dir, `work${i}`);
    mkdirSync(work);
    const hold = join(dir, 'hold');
    sluices.push(
      await startCli(
        dir,
        memberConfig(cluster, etcd.endpoints, 'wdcrash', i, work, {
          // Recorded, then held while the file `hold` exists, then the real script.
          failover_command: `${recordInto(join(dir, `failover-${i}.jsonl`))} ${HOOK_ARGS} && while [ -e ${hold} ]; do sleep 0.05; done && ${SCRIPTS}/failover.sh ${HOOK_ARGS}`,
          follow_primary_command: `${recordInto(join(dir, `follow-${i}.jsonl`))} ${HOOK_ARGS} && ${SCRIPTS}/follow_primary.sh ${HOOK_ARGS}`,
        }),
        `sluice${i}.toml`,
      ),
    );
  }
  await groupFormed(sluices[0]!, passFile, 3);
});

t.teardown(async () => {
  for (const s of sluices) if (s.proc.exitCode === null) s.proc.kill('SIGKILL');
  await etcd?.destroy();
  await cluster?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

t.test('the leader killed in the middle of a failover: another completes it, one standby promoted', async (t) => {
  writeFileSync(join(dir, 'hold'), '');
  await cluster.sh('kill', '0');
  const { leader } = await waitFor(
    'the leader runs failover_command (held)',
    () => {
      const i = [0, 1, 2].findIndex((x) => lines(`failover-${x}.jsonl`).length > 0);
      return i >= 0 && { leader: i };
    },
    30_000,
  );
  const hook = lines(`failover-${leader}.jsonl`)[0]!;
  // The leader's machine goes: Sluice and the hook it runs.
  sluices[leader]!.proc.kill('SIGKILL');
  process.kill(-hook.shell, 'SIGKILL');
  await sluices[leader]!.exited;
  rmSync(join(dir, 'hold'));
  const rest = [0, 1, 2].filter((i) => i !== leader);
  const primary = await waitFor(
    'the two left agree on a new primary',
    async () => {
      const seen = await Promise.all(rest.map((i) => sluicectl(sluices[i]!.pcpPort, passFile, 'node-info')));
      const primaries = seen.map((r) => r.stdout.trim().split('\n').findIndex((l) => / (up|waiting) \S+ primary /.test(l)));
      return primaries.every((p) => p > 0 && p === primaries[0]) && primaries[0];
    },
    60_000,
  );
  const promoted = [];
  for (const n of [1, 2]) if ((await cluster.psql(n, 'select pg_is_in_recovery()')) === 'f') promoted.push(n);
  t.same(promoted, [primary], 'exactly one standby was promoted, the one every instance uses');
  const next = rest.find((i) => lines(`failover-${i}.jsonl`).length > 0);
  t.ok(next !== undefined, 'the new leader ran failover_command');
  t.same(rest.map((i) => lines(`failover-${i}.jsonl`).length).sort(), [0, 1], 'once, on the new leader alone');
  const other = primary === 1 ? 2 : 1;
  await waitFor('the other standby followed', () => lines(`follow-${next}.jsonl`).some((l) => l.args[0] === String(other)), 30_000);
  t.pass('the failover completed');
});
