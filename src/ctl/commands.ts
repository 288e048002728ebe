import { PcpRequest } from '../admin/pcp/codes';
import { pcpFields } from '../admin/pcp/packet';
import type { PcpClient } from '../admin/pcp/client';
import { asObject, healthRecord, nodeRecord, plain, procRecord, Record, verbose } from './output';

export interface CtlOptions {
  node?: number;
  pid?: number;
  all: boolean;
  graceful: boolean;
  switchover: boolean;
  mode: string;
  wait: boolean;
  verbose: boolean;
  json: boolean;
}

/** What a command printed: text in pgpool's layout, or the same facts as JSON. */
export interface Outcome {
  text: string;
  json: unknown;
}

const arg = (n: number | undefined): Buffer => Buffer.from(`${n ?? ''}\0`);
const fieldsOf = (p: { payload: Buffer }): string[] => pcpFields(p.payload).slice(1);
const show = (o: CtlOptions, r: Record): string => (o.verbose ? verbose(r) : plain(r));

function needNode(o: CtlOptions, name: string): number {
  if (o.node === undefined || !Number.isInteger(o.node) || o.node < 0) throw new UsageError(`${name} needs a node id (-n N)`);
  return o.node;
}

export class UsageError extends Error {}

type Command = (c: PcpClient, o: CtlOptions, name: string) => Promise<Outcome>;

/** A command that answers CommandComplete only: pgpool prints "<name> -- Command Successful". */
const simple = (type: (o: CtlOptions) => number, payload: (o: CtlOptions, name: string) => Buffer): Command => async (c, o, name) => {
  await c.request(type(o), payload(o, name), 1);
  return { text: `${name} -- Command Successful\n`, json: { command: name, ok: true } };
};

const STOP_MODES: { [k: string]: string } = { s: 's', smart: 's', f: 'f', fast: 'f', i: 'i', immediate: 'i' };

export const COMMANDS: { [name: string]: Command } = {
  'node-count': async (c, o) => {
    const [r] = await c.request(PcpRequest.NodeCount, Buffer.alloc(0), 1);
    const n = fieldsOf(r!)[0] ?? '';
    return { text: o.verbose ? `Node Count\n____________\n ${n}\n` : `${n}\n`, json: { node_count: Number(n) } };
  },
  'node-info': async (c, o) => {
    const replies = await c.request(PcpRequest.NodeInfo, arg(o.node ?? -1));
    const nodes = replies.filter((r) => pcpFields(r.payload)[0] === 'NodeInfo').map((r) => nodeRecord(fieldsOf(r)));
    const shown = nodes.filter((r) => o.all || r[0]![2] !== '');
    const text = shown.length === 0 ? 'No node information available\n\n' : shown.map((r) => show(o, r)).join('');
    return { text, json: shown.map(asObject) };
  },
  'health-check-stats': async (c, o, name) => {
    const [r] = await c.request(PcpRequest.HealthCheckStats, arg(needNode(o, name)), 1);
    const rec = healthRecord(fieldsOf(r!));
    return { text: show(o, rec), json: asObject(rec) };
  },
  'proc-count': async (c, o) => {
    const [r] = await c.request(PcpRequest.ProcCount, Buffer.alloc(0), 1);
    const pids = fieldsOf(r!).slice(1);
    const text = o.verbose
      ? `No \t | \t PID\n_____________________\n${pids.map((p, i) => `${i} \t | \t ${p}\n`).join('')}\nTotal Processes:${pids.length}\n`
      : pids.map((p) => `${p} `).join('') + '\n';
    return { text, json: pids.map(Number) };
  },
  'proc-info': async (c, o) => {
    const replies = await c.request(PcpRequest.ProcInfo, arg(o.pid ?? 0));
    const rows = replies.filter((r) => pcpFields(r.payload)[0] === 'ProcessInfo').map((r) => procRecord(fieldsOf(r)));
    const shown = rows.filter((r) => o.all || r[0]![2] !== '');
    const text = shown.length === 0 ? 'No process information available\n\n' : shown.map((r) => show(o, r)).join('');
    return { text, json: shown.map(asObject) };
  },
  'pool-status': async (c, o) => {
    const replies = await c.request(PcpRequest.PoolStatus, Buffer.alloc(0));
    const items = replies.filter((r) => pcpFields(r.payload)[0] === 'ProcessConfig').map((r) => fieldsOf(r));
    const text = items
      .map(([n = '', v = '', d = ''], i) => (o.verbose ? `Name [${String(i).padStart(3)}]:\t${n}\nValue:      \t${v}\nDescription:\t${d}\n\n` : `name : ${n}\nvalue: ${v}\ndesc : ${d}\n\n`))
      .join('');
    return { text, json: items.map(([name, value, description]) => ({ name, value, description })) };
  },
  'watchdog-info': async (c, o) => {
    const [r] = await c.request(PcpRequest.WatchdogInfo, arg(o.node ?? -1), 1);
    const info = JSON.parse(fieldsOf(r!)[0] ?? '{}') as WatchdogJson;
    return { text: watchdogText(info, o.verbose === true), json: info };
  },
  'attach-node': simple(() => PcpRequest.AttachNode, (o, n) => arg(needNode(o, n))),
  'detach-node': simple((o) => (o.graceful ? PcpRequest.DetachNodeGraceful : PcpRequest.DetachNode), (o, n) => arg(needNode(o, n))),
  'promote-node': simple(
    (o) => (o.graceful ? PcpRequest.PromoteNodeGraceful : PcpRequest.PromoteNode),
    (o, n) => Buffer.concat([Buffer.from(`${needNode(o, n)} \0`), Buffer.from(o.switchover ? 's' : 'n')]),
  ),
  'recovery-node': simple(() => PcpRequest.RecoveryNode, (o, n) => arg(needNode(o, n))),
  // 'c': every instance of a group (pgpool's -s c); a single instance reloads itself either way.
  reload: simple(() => PcpRequest.ReloadConfig, () => Buffer.from('c')),
  stop: simple(
    () => PcpRequest.StopLocal,
    (o) => {
      const m = STOP_MODES[o.mode];
      if (!m) throw new UsageError(`Invalid shutdown mode "${o.mode}", must be either "smart" "immediate" or "fast"`);
      return Buffer.from(m);
    },
  ),
  pause: simple(() => PcpRequest.Pause, (o) => Buffer.from(o.wait ? 'w' : 'n')),
  resume: simple(() => PcpRequest.Resume, () => Buffer.alloc(0)),
};

/** pcp_watchdog_info's answer as pgpool's JSON carries it (admin/watchdog-info.ts). */
interface WatchdogJson {
  RemoteNodeCount: number;
  MemberRemoteNodeCount: number;
  AliveNodeCount: number;
  NodesRequireForQuorum: number;
  QuorumStatus: number;
  Escalated: number;
  LeaderNodeName: string;
  LeaderHostName: string;
  NodeCount: number;
  WatchdogNodes: { NodeName: string; HostName: string; DelegateIP: string; PgpoolPort: number; WdPort: number; Priority: number; State: number; StateName: string; Membership: number; MembershipString: string }[];
}

const QUORUM_STATES: { [status: number]: string } = { 0: 'QUORUM IS ON THE EDGE', 1: 'QUORUM EXIST', [-1]: 'QUORUM ABSENT', [-2]: 'NO LEADER NODE' };

/** As pgpool's pcp_watchdog_info prints it: one summary line and a line per instance, or -v's blocks. */
function watchdogText(w: WatchdogJson, verbose: boolean): string {
  const yes = w.Escalated ? 'YES' : 'NO';
  if (!verbose) {
    const nodes = w.WatchdogNodes.map((n) => `${n.NodeName} ${n.HostName} ${n.PgpoolPort} ${n.WdPort} ${n.State} ${n.StateName} ${n.Membership} ${n.MembershipString}\n`);
    return `${w.NodeCount} ${w.MemberRemoteNodeCount + 1} ${yes} ${w.LeaderNodeName} ${w.LeaderHostName}\n\n${nodes.join('')}`;
  }
  const block = (title: string, rows: [string, string | number][]) => `${title}\n${rows.map(([k, v]) => `${k.padEnd(25)}: ${v}\n`).join('')}`;
  const head = block('Watchdog Cluster Information', [
    ['Total Nodes', w.NodeCount],
    ['Remote Nodes', w.RemoteNodeCount],
    ['Member Remote Nodes', w.MemberRemoteNodeCount],
    ['Alive Remote Nodes', w.AliveNodeCount],
    ['Nodes required for quorum', w.NodesRequireForQuorum],
    ['Quorum state', QUORUM_STATES[w.QuorumStatus] ?? 'UNKNOWN'],
    ['Local node escalation', yes],
    ['Leader Node Name', w.LeaderNodeName],
    ['Leader Host Name', w.LeaderHostName],
  ]);
  const nodes = w.WatchdogNodes.map((n) =>
    block('', [
      ['Node Name', n.NodeName],
      ['Host Name', n.HostName],
      ['Delegate IP', n.DelegateIP],
      ['Pgpool port', n.PgpoolPort],
      ['Watchdog port', n.WdPort],
      ['Node priority', n.Priority],
      ['Status', n.State],
      ['Status Name', n.StateName],
      ['Membership Status', n.MembershipString],
    ]),
  );
  return `${head}\nWatchdog Node Information${nodes.join('')}`;
}
