import { isLive } from '../cluster/topology';
import type { HttpHost } from './host';

/** A probe's answer: 200 with what it found, or 503 with why not. */
export interface ProbeResult {
  ok: boolean;
  body: Record<string, unknown>;
}

/** /primary: a primary is known and statements may go to it (Patroni's meaning, for HAProxy). */
export function primaryProbe(h: HttpHost): ProbeResult {
  const id = h.cluster.topology.primaryId;
  const n = id === null ? undefined : h.cluster.topology.nodes[id];
  if (!n) return { ok: false, body: { primary: null, reason: 'no primary node is known' } };
  if (!isLive(n)) return { ok: false, body: { primary: n.id, reason: `the primary is ${n.following ? 'being re-pointed' : n.status}` } };
  return { ok: true, body: { primary: n.id, host: n.host, port: n.port } };
}

/** /replica: at least one standby is up and takes reads (not over the delay threshold). */
export function replicaProbe(h: HttpHost): ProbeResult {
  const views = h.cluster.nodeViews();
  const routable = views.filter((v) => !v.primary && v.up && !v.delayed).map((v) => v.id);
  if (routable.length === 0) return { ok: false, body: { replicas: [], reason: 'no standby is up and under the delay threshold' } };
  return { ok: true, body: { replicas: routable } };
}

/** /health: Sluice can serve: it listens, is not shutting down, and some node is up. */
export function healthProbe(h: HttpHost): ProbeResult {
  if (!h.serving) return { ok: false, body: { status: 'stopping' } };
  const live = h.cluster.topology.nodes.filter(isLive).map((n) => n.id);
  if (live.length === 0) return { ok: false, body: { status: 'no node is up' } };
  const wd = h.watchdog();
  // Without etcd an instance still serves (200) with its last view, but says it is degraded.
  const status = wd && !wd.etcdReachable ? 'degraded' : 'ok';
  const watchdog = wd ? { watchdog: { etcdReachable: wd.etcdReachable, leader: wd.leader, isLeader: wd.isLeader, members: wd.members.length } } : {};
  return { ok: true, body: { status, nodesUp: live, primary: h.cluster.topology.primaryId, ...watchdog } };
}
