import type { NodeAddress } from '../backend/connection';
import type { BackendConfig } from '../config/load';
import type { SavedStatus, StatusFile } from './status-file';
import { Clock, systemClock } from '../util/clock';

export type NodeRole = 'primary' | 'standby' | 'unknown';

/**
 * pgpool's node statuses: up (serving), waiting (attached, not yet confirmed by a connection),
 * down (detached: no statement goes there), unused (never configured to serve).
 */
export type NodeStatus = 'up' | 'waiting' | 'down' | 'unused';

/** A node as Sluice knows it: its config and what was last found out about it. */
export interface NodeInfo extends NodeAddress {
  // A reload may change these four (host and port need a restart).
  weight: number;
  flags: readonly string[];
  dataDirectory: string;
  applicationName: string;
  role: NodeRole;
  status: NodeStatus;
  lastStatusChange: Date;
  /** follow_primary_command is re-pointing it: no statements, no health verdicts meanwhile. */
  following: boolean;
  /** Online recovery is bringing it back: the step it is at ('stage 1', 'stage 2', 'starting'). */
  recovery: RecoveryStep | null;
  /** It was the primary when it left service (the status page says so while it is down). */
  wasPrimary: boolean;
  /**
   * Several instances (use_watchdog): this instance's checks find it down but the group has not
   * failed it over (pgpool's quarantine): no statements from here, no hooks, checked until it answers.
   */
  quarantined: boolean;
}

export type RecoveryStep = 'stage 1' | 'stage 2' | 'starting';

/** The [[backend]] keys a reload may change. */
const reloadable = (b: BackendConfig) => ({
  weight: b.weight,
  flags: b.flag.split('|'),
  dataDirectory: b.data_directory,
  applicationName: b.application_name,
});

function nodeFromConfig(b: BackendConfig, id: number, status: NodeStatus, now: Date): NodeInfo {
  return { id, host: b.hostname, port: b.port, ...reloadable(b), role: 'unknown', status, lastStatusChange: now, following: false, recovery: null, wasPrimary: false, quarantined: false };
}

export function nodesFromConfig(backends: readonly BackendConfig[], now = new Date()): NodeInfo[] {
  return backends.map((b, id) => nodeFromConfig(b, id, 'waiting', now));
}

/** A node statements may go to. */
export const isLive = (n: NodeInfo): boolean => (n.status === 'up' || n.status === 'waiting') && !n.following && !n.quarantined;

/**
 * The nodes, which one is primary, and their statuses: every change is written to the status
 * file and announced (routing views, sessions, metrics are rebuilt from it).
 */
export class Topology {
  readonly nodes: NodeInfo[];
  /** The primary's id; null while none is known (a failover looking for the new one). */
  private primary: number | null = null;
  /**
   * Grows by one with every change of a node's status or of the primary, and is saved, so that
   * it only ever grows: hook scripts get it (%E, SLUICE_EPOCH) to fence an old primary with.
   */
  private epoch_: number;

  constructor(
    backends: readonly BackendConfig[],
    private readonly file: StatusFile | null,
    private readonly changed: () => void,
    private readonly clock: Pick<Clock, 'now'> = systemClock,
  ) {
    this.nodes = nodesFromConfig(backends, new Date(clock.now()));
    this.epoch_ = file?.readEpoch() ?? 0;
  }

  get epoch(): number {
    return this.epoch_;
  }

  /**
   * Whether changes here count epochs: in a group of instances only the leader's do (the others
   * take its epoch with its view; counting their own would make a later view look older).
   */
  countsEpochs: () => boolean = () => true;

  private nextEpoch(): void {
    if (!this.countsEpochs()) return;
    this.epoch_++;
    this.file?.writeEpoch(this.epoch_);
  }

  get primaryId(): number | null {
    return this.primary;
  }

  /** The lowest live node id: pgpool's "main node" (%m / %M for the hooks); -1 when none. */
  mainNodeId(): number {
    return this.nodes.find(isLive)?.id ?? -1;
  }

  /** Statuses saved by an earlier run: a node saved down stays down. */
  restore(saved: readonly SavedStatus[]): void {
    saved.forEach((s, i) => {
      const n = this.nodes[i]!;
      n.status = s === 'up' ? 'waiting' : s;
    });
  }

  setStatus(id: number, status: NodeStatus): void {
    const n = this.nodes[id]!;
    if (n.status === status) return;
    this.statusIs(n, status, new Date(this.clock.now()));
    this.nextEpoch();
    this.save();
    this.changed();
  }

  setPrimary(id: number | null): void {
    if (id !== this.primary) this.nextEpoch();
    this.primaryIs(id);
    this.changed();
  }

  private statusIs(n: NodeInfo, status: NodeStatus, at: Date): void {
    n.status = status;
    if (status !== 'down') n.wasPrimary = false;
    // Down for the group: no longer this instance's quarantine (its checks of it stop).
    else n.quarantined = false;
    n.lastStatusChange = at;
  }

  private primaryIs(id: number | null): void {
    this.primary = id;
    for (const n of this.nodes) {
      if (n.id === id) {
        n.role = 'primary';
        n.wasPrimary = false;
      } else if (n.role === 'primary') {
        n.role = 'standby';
        n.wasPrimary = n.status === 'down';
      }
    }
  }

  /** Quarantine is this instance's own view: no epoch, nothing saved. */
  setQuarantined(id: number, on: boolean): void {
    const n = this.nodes[id]!;
    if (n.quarantined === on) return;
    n.quarantined = on;
    this.changed();
  }

  /**
   * The group's view, written by the watchdog leader: statuses and the primary as it has them,
   * and its epoch (which is then this instance's too; no epoch of its own is counted for it).
   */
  applyView(statuses: readonly NodeStatus[], primary: number | null, epoch: number): void {
    const now = new Date(this.clock.now());
    statuses.forEach((st, id) => {
      const n = this.nodes[id];
      if (!n || n.status === st || (st === 'up' && n.status === 'waiting')) return;
      // A node the group brought back is checked here before it serves ('waiting').
      this.statusIs(n, st === 'up' ? 'waiting' : st, now);
    });
    if (primary !== this.primary) this.primaryIs(primary);
    if (epoch > this.epoch_) {
      this.epoch_ = epoch;
      this.file?.writeEpoch(epoch);
    }
    this.save();
    this.changed();
  }

  setFollowing(id: number, following: boolean): void {
    this.nodes[id]!.following = following;
    this.changed();
  }

  /**
   * A reload: the existing nodes take their new weights, flags, data directories and application
   * names; nodes added at the end join detached (down), as pgpool adds them, for an operator to
   * attach. Ids are array positions, so nodes are never removed or reordered while running.
   */
  reconfigure(backends: readonly BackendConfig[]): number[] {
    const added: number[] = [];
    backends.forEach((b, id) => {
      const n = this.nodes[id];
      if (n) Object.assign(n, reloadable(b));
      else {
        this.nodes.push(nodeFromConfig(b, id, 'down', new Date(this.clock.now())));
        added.push(id);
      }
    });
    // No change announcement here: the caller first makes room for the new nodes elsewhere.
    if (added.length > 0) this.save();
    return added;
  }

  setRecovery(id: number, step: RecoveryStep | null): void {
    this.nodes[id]!.recovery = step;
  }

  private save(): void {
    this.file?.write(this.nodes.map((n) => (n.status === 'down' || n.status === 'unused' ? n.status : 'up')));
  }
}
