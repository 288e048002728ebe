// pcp_watchdog_info's answer: the instances as this one sees them through etcd, in the JSON that
// pgpool 4.3's watchdog sends (pgpool.md b.3), so that pgpool's own pcp_watchdog_info prints it.
import { MemberInfo, votesNeeded, WatchdogView } from '../coord/watchdog';
import { AdminError } from './errors';

/** pgpool's watchdog node states (WD_STATES), by the numbers its client prints beside them. */
const STATE = { LEADER: 4, STANDBY: 7, 'NETWORK ISOLATION': 12 } as const;
/** pgpool's quorum statuses: exists, absent, no leader. */
const QUORUM = { exists: 1, absent: -1, noLeader: -2 } as const;

function nodeJson(v: WatchdogView, m: MemberInfo, id: number) {
  const self = m.name === v.self.name;
  const state: keyof typeof STATE = self && !v.etcdReachable ? 'NETWORK ISOLATION' : m.name === v.leader ? 'LEADER' : 'STANDBY';
  return {
    ID: id,
    State: STATE[state],
    NodeName: m.name,
    HostName: m.host,
    StateName: state,
    DelegateIP: 'Not_Set',
    // Sluice has no watchdog port of its own: instances and operators reach each other by PCP.
    WdPort: m.pcpPort,
    PgpoolPort: m.port,
    Priority: m.priority,
    Membership: 0,
    MembershipString: 'MEMBER',
    LifecheckStarted: true,
  };
}

/** The JSON for node `id` (-1: every instance, this one first, as pgpool lists its local node first). */
export function watchdogInfo(v: WatchdogView | null, id: number, halfVotes: boolean): Record<string, unknown> {
  if (!v) throw new AdminError('PCP: informing watchdog info failed', 'watchdog is not enabled');
  const others = v.members.filter((m) => m.name !== v.self.name);
  const all = [v.self, ...others].map((m, i) => nodeJson(v, m, i));
  if (!(id === -1 || (id >= 0 && id < all.length))) throw new AdminError('PCP: informing watchdog info failed', `invalid watchdog node ID ${id}`);
  const nodes = id === -1 ? all : [all[id]!];
  const leader = v.members.find((m) => m.name === v.leader);
  const quorum = !v.etcdReachable ? QUORUM.absent : v.leader === null ? QUORUM.noLeader : QUORUM.exists;
  return {
    RemoteNodeCount: all.length - 1,
    MemberRemoteNodeCount: others.length,
    NodesRequireForQuorum: votesNeeded(all.length, halfVotes),
    QuorumStatus: quorum,
    AliveNodeCount: others.length,
    Escalated: v.isLeader ? 1 : 0,
    LeaderNodeName: leader?.name ?? 'Not Set',
    LeaderHostName: leader?.host ?? 'Not Set',
    NodeCount: nodes.length,
    WatchdogNodes: nodes,
  };
}
