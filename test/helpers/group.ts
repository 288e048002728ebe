import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CliSluice } from './cli';
import type { TestCluster } from './cluster';
import { sluicectl } from './pcp';
import { clusterConfig, waitFor } from './sluice';

// Several Sluice instances through etcd, as the watchdog tests run them.

/** pgpool's placeholders in its sample scripts' order. */
export const HOOK_ARGS = '%d %h %p %D %m %H %M %P %r %R %N %S';
/** A hook that records its arguments (test/fixtures/record-hook.mjs) into `file` first. */
export const recordInto = (file: string) => `node ${join(__dirname, '..', 'fixtures', 'record-hook.mjs')} ${file}`;

/** The lines a recording hook wrote (none when it never ran). */
export function recorded(file: string): { args: string[]; shell: number }[] {
  return existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { args: string[]; shell: number }) : [];
}

/**
 * Instance `i` of a group: checks every second, Patroni's rule at its tightest (3 s ≥ 1 + 2 × 1),
 * its own work_dir, plus `extra`.
 */
export function memberConfig(cluster: TestCluster, endpoints: string[], group: string, i: number, workDir: string, extra: Record<string, unknown>): Record<string, unknown> {
  return clusterConfig(cluster, {
    work_dir: workDir,
    health_check_period: 1,
    health_check_timeout: 2,
    connect_timeout: 2000,
    sr_check_period: 1,
    search_primary_node_timeout: 60,
    use_watchdog: true,
    etcd_endpoints: endpoints,
    watchdog_cluster_name: group,
    wd_name: `sluice${i}`,
    wd_hostname: '127.0.0.1',
    wd_lease_ttl: 3,
    wd_loop_wait: 1,
    wd_retry_timeout: 1,
    ...extra,
  });
}

/** Until `s` sees a group of `n` members with a leader (sluicectl watchdog-info). */
export function groupFormed(s: CliSluice, passFile: string, n: number): Promise<boolean> {
  return waitFor(`a group of ${n} with a leader`, async () => {
    const r = await sluicectl(s.pcpPort, passFile, 'watchdog-info');
    return r.stdout.startsWith(`${n} ${n} `) && !r.stdout.includes('Not Set');
  });
}
