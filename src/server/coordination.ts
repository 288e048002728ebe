// The watchdog's wiring (use_watchdog): its etcd client, this instance's member record, and
// pgpool's escalation hooks run as leadership comes and goes.
import { hostname } from 'node:os';
import { sendCancel } from '../backend/cancel';
import { readKeyFile } from '../backend/tls';
import { runScript } from '../cluster/hooks';
import type { ClusterCoordination, ClusterManager } from '../cluster/manager';
import type { Config } from '../config/load';
import { EtcdClient, EtcdOptions } from '../coord/etcd';
import { Watchdog } from '../coord/watchdog';
import type { CancelPeers } from '../session/registry';
import type { Logger } from '../log/logger';
import type { RecentEvents } from '../metrics/events';
import type { Clock } from '../util/clock';

export interface InstancePorts {
  port: number;
  pcpPort: number;
  httpPort: number;
}

/** The etcd client's settings: endpoints, the request timeout, TLS files and the etcd user. */
export function etcdOptions(c: Config): EtcdOptions {
  const tls = {
    ...(c.etcd_cacert ? { ca: readKeyFile('etcd_cacert', c.etcd_cacert) } : {}),
    ...(c.etcd_cert ? { cert: readKeyFile('etcd_cert', c.etcd_cert), key: readKeyFile('etcd_key', c.etcd_key) } : {}),
  };
  return {
    endpoints: c.etcd_endpoints,
    requestTimeoutMs: c.wd_retry_timeout * 1000,
    ...(Object.keys(tls).length ? { tls } : {}),
    ...(c.etcd_username ? { auth: { username: c.etcd_username, password: c.etcd_password } } : {}),
  };
}

/** The member name when wd_name is not set: the host and the port clients use. */
export function memberName(c: Config, port: number): string {
  return c.wd_name || `${c.wd_hostname || hostname()}:${port}`;
}

/**
 * The watchdog of this instance, wired to its cluster: what its checks see goes to the group, the
 * leader fails over what the group agrees on and publishes its view, the others apply it.
 * `led`: this instance became the leader (the group's leader_change event is its to report).
 */
export function makeWatchdog(c: Config, cluster: ClusterManager, ports: InstancePorts, version: string, clock: Clock, log: Logger, events: RecentEvents, led: (name: string) => void): Watchdog {
  const etcd = new EtcdClient(etcdOptions(c));
  const self = {
    name: memberName(c, ports.port),
    host: c.wd_hostname || hostname(),
    ...ports,
    version,
    priority: c.wd_priority,
    startedAt: clock.now(),
    slot: 0,
  };
  const hook = (name: 'wd_escalation_command' | 'wd_de_escalation_command') => {
    const line = c[name];
    if (!line) return;
    runScript(name, line, { SLUICE_WD_NAME: self.name }, { cwd: c.configDir, timeoutMs: c.hook_timeout * 1000, log }).catch((err: Error) => log.error({ hook: name, err: err.message }, 'hook could not be run'));
  };
  const w: Watchdog = new Watchdog(etcd, `/${c.watchdog_cluster_name}/`, self, { ttl: c.wd_lease_ttl, loopWaitMs: c.wd_loop_wait * 1000, retryTimeoutMs: c.wd_retry_timeout * 1000 }, clock, log, {
    leadership: (leads) => {
      events.add('watchdog', null, leads ? `${self.name} became the watchdog leader` : `${self.name} is no longer the watchdog leader`);
      hook(leads ? 'wd_escalation_command' : 'wd_de_escalation_command');
      if (leads) {
        led(self.name);
        // The last leader may have died between detaching the primary and finding the new one.
        const t = cluster.topology;
        const orphan = t.primaryId === null ? t.nodes.find((n) => n.status === 'down' && n.wasPrimary) : undefined;
        if (orphan) void cluster.failover.resumePrimaryFailover(orphan.id);
      }
    },
    leaderChanged: (leader) => {
      if (leader !== self.name) events.add('watchdog', null, leader === null ? 'no watchdog leader' : `watchdog leader: ${leader}`);
    },
    reachability: (reachable) => events.add('watchdog', null, reachable ? 'etcd reachable again' : 'etcd unreachable: serving with the last view'),
    seesDown: () => cluster.quarantined(),
    agreedDown: (nodes, members) => {
      for (const { id, votes } of nodes) {
        const n = cluster.topology.nodes[id];
        // Down already, or never failed over: nothing to do (and nothing to log every round).
        if (!n || n.status === 'down' || n.flags.includes('DISALLOW_TO_FAILOVER')) continue;
        void cluster.failover.degenerate(id, `health check failed on ${votes} of ${members} instances`);
      }
    },
    localView: () => ({ epoch: cluster.topology.epoch, primary: cluster.topology.primaryId, statuses: cluster.topology.nodes.map((n) => n.status) }),
    groupView: (v) => cluster.applyGroupView(v.statuses, v.primary, v.epoch),
    // failover_when_quorum_exists = false (pgpool's): no quorum asked for, so one vote is enough.
  }, { requireConsensus: c.failover_require_consensus && c.failover_when_quorum_exists, halfVotes: c.enable_consensus_with_half_votes });
  return w;
}

/**
 * How the cluster of an instance in a group acts: only while its watchdog leads (none before the
 * watchdog exists, at start-up), or alone once cut off (failover_when_quorum_exists = false) for
 * longer than every lease, a leader's included: a leader elsewhere has stopped acting by then,
 * and a short etcd election does not make every instance act.
 */
export function groupCoordination(c: Config, watchdog: () => Watchdog | null): ClusterCoordination {
  return {
    leads: () => watchdog()?.isLeader ?? false,
    alone: () => !c.failover_when_quorum_exists && (watchdog()?.cutOffMs() ?? 0) > c.wd_lease_ttl * 1000,
  };
}

/** Cancel requests for another instance's sessions go to it (the slot in the secret says which). */
export function cancelPeers(w: Watchdog, log: Logger): CancelPeers {
  return {
    slot: () => w.view().self.slot,
    forward: (slot, processId, secret) => {
      const m = w.view().members.find((x) => x.slot === slot && x.name !== w.view().self.name);
      if (!m) return log.info({ slot }, 'cancel request for an instance not in the group: dropped');
      sendCancel(m.host, m.port, processId, secret, (err) => log.warn({ member: m.name, err: err.message }, 'forwarding a cancel request failed'));
    },
  };
}
