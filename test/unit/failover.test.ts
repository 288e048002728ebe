import { Writable } from 'node:stream';
import t from 'tap';
import { findPrimary, NodeQuery } from '../../src/cluster/discover';
import { Failover } from '../../src/cluster/failover';
import { Topology } from '../../src/cluster/topology';
import type { BackendConfig } from '../../src/config/load';
import { createLogger } from '../../src/log/logger';

// Primary discovery and the promotion candidate, against scripted node answers.

const log = createLogger('error', new Writable({ write: (_c, _e, cb) => cb() }));
const backend = (port: number, flag = 'ALLOW_TO_FAILOVER'): BackendConfig =>
  ({ hostname: '10.0.0.1', port, weight: 1, data_directory: `/d${port}`, flag, application_name: `n${port}` }) as BackendConfig;

/** Answers per node: pg_is_in_recovery(), its WAL receiver, its LSNs; undefined = unreachable. */
function scripted(answers: Record<number, { recovery?: 't' | 'f'; receiver?: [string, string]; lsn?: [string | null, string | null] } | undefined>): NodeQuery {
  return async (node, sqls) => {
    const a = answers[node.id];
    if (!a) throw new Error('connection refused');
    return sqls.map((sql) => {
      if (sql.includes('pg_is_in_recovery')) return [[a.recovery ?? 't']];
      if (sql.includes('pg_stat_wal_receiver')) return a.receiver ? [a.receiver] : [];
      return [a.lsn ?? [null, null]];
    });
  };
}

t.test('the primary is the node not in recovery; unreachable nodes are skipped', async (t) => {
  const topo = new Topology([backend(5432), backend(5433), backend(5434)], null, () => undefined);
  t.equal(await findPrimary(topo.nodes, scripted({ 0: undefined, 1: { recovery: 'f' }, 2: { recovery: 't' } }), log), 1);
  t.same(topo.nodes.map((n) => n.role), ['unknown', 'primary', 'standby']);
  t.equal(await findPrimary(topo.nodes, scripted({ 0: { recovery: 't' }, 1: { recovery: 't' }, 2: undefined }), log), null, 'none');
});

t.test('ALWAYS_PRIMARY wins without asking', async (t) => {
  const topo = new Topology([backend(5432), backend(5433, 'ALWAYS_PRIMARY')], null, () => undefined);
  t.equal(await findPrimary(topo.nodes, scripted({}), log), 1);
});

t.test('of two primaries, the true one is the one the standbys stream from', async (t) => {
  const topo = new Topology([backend(5432), backend(5433), backend(5434)], null, () => undefined);
  const q = scripted({ 0: { recovery: 'f' }, 1: { recovery: 'f' }, 2: { recovery: 't', receiver: ['streaming', 'host=10.0.0.1 port=5433 user=postgres'] } });
  t.equal(await findPrimary(topo.nodes, q, log), 1, 'node 0 is a false primary');
  t.equal(topo.nodes[0]!.role, 'unknown');
});

t.test('the promotion candidate is the most advanced live standby, ties to the lowest id', async (t) => {
  const topo = new Topology([backend(5432), backend(5433), backend(5434), backend(5435)], null, () => undefined);
  topo.setPrimary(0);
  topo.setStatus(0, 'down');
  const failover = (q: NodeQuery) =>
    new Failover(topo, { failoverCommand: '', failbackCommand: '', followPrimaryCommand: '', searchPrimaryTimeoutMs: 1, searchIntervalMs: 1, hookTimeoutMs: 0, cwd: '/' }, { query: q, nodeDown: () => undefined, primaryFound: () => undefined, recheck: () => undefined, event: () => undefined }, log);
  const lsns = { 1: { lsn: ['0/3000000', '0/2000000'] as [string, string] }, 2: { lsn: ['0/5000000', '0/1000000'] as [string, string] }, 3: { lsn: [null, '0/4000000'] as [null, string] } };
  t.equal(await failover(scripted(lsns)).mostAdvancedStandby(), 2, 'received WAL counts');
  t.equal(await failover(scripted({ ...lsns, 2: { lsn: ['0/4000000', null] } })).mostAdvancedStandby(), 2, 'a tie goes to the lowest id');
  t.equal(await failover(scripted({ ...lsns, 2: undefined })).mostAdvancedStandby(), 3, 'an unreachable standby is no candidate');
});

t.test('a former watchdog leader runs no more hooks and stops looking for the primary; the new one completes the failover without a second promotion', async (t) => {
  const { mkdtempSync, readFileSync, existsSync, rmSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(join(tmpdir(), 'sluice-failover-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const ran = join(dir, 'ran');
  const hooks = { failoverCommand: `echo %d %m >> ${ran}`, failbackCommand: '', followPrimaryCommand: '', searchPrimaryTimeoutMs: 1, searchIntervalMs: 1, hookTimeoutMs: 10_000, cwd: dir };
  let leads = false;
  const topo = new Topology([backend(5432), backend(5433), backend(5434)], null, () => undefined);
  topo.setPrimary(0);
  const host = (q: NodeQuery) => ({ query: q, nodeDown: () => undefined, primaryFound: () => undefined, recheck: () => undefined, event: () => undefined, mayAct: () => leads });
  await new Failover(topo, hooks, host(scripted({ 1: { recovery: 't' }, 2: { recovery: 't' } })), log).degenerate(0, 'test');
  t.equal(topo.nodes[0]!.status, 'down', 'detached');
  t.notOk(existsSync(ran), 'not the leader: failover_command not run');
  t.equal(topo.primaryId, null);
  // The new leader: node 2 was promoted meanwhile (by the last leader's hook): found, not promoted again.
  leads = true;
  await new Failover(topo, hooks, host(scripted({ 1: { recovery: 't' }, 2: { recovery: 'f' } })), log).resumePrimaryFailover(0);
  t.equal(topo.primaryId, 2, 'the promoted standby is the primary');
  t.notOk(existsSync(ran), 'and no failover_command ran for a second promotion');
  // Nothing promoted yet: the new leader runs failover_command itself (which "promotes" node 1).
  topo.setPrimary(null);
  const promotedByHook: NodeQuery = async (node, sqls) =>
    sqls.map((sql) => {
      if (sql.includes('pg_is_in_recovery')) return [[node.id === 1 && existsSync(ran) ? 'f' : 't']];
      if (sql.includes('pg_stat_wal_receiver')) return [];
      return [[node.id === 1 ? '0/5000000' : '0/1000000', null]];
    });
  await new Failover(topo, hooks, host(promotedByHook), log).resumePrimaryFailover(0);
  t.equal(readFileSync(ran, 'utf8'), '0 1\n', 'failover_command for node 0, the most advanced standby as %m');
  t.equal(topo.primaryId, 1, 'and the node it promoted is found');
});
