// Several Sluice instances as one, through etcd, with Patroni's rules (DESIGN.md): each instance
// keeps a member key on a lease of its own; one leader holds the leader key on its lease
// (created only where absent); the lease is renewed every loop, each request given up after the
// retry timeout, and a leader that could not renew stops acting before its lease can have expired
// at etcd. An instance that cannot reach etcd keeps its last view and never counts as leader.
import type { Logger } from '../log/logger';
import type { Clock, TimerHandle } from '../util/clock';
import type { EtcdKey } from './etcd';
import type { NodeStatus } from '../cluster/topology';

/** What an instance publishes about itself (its member key's value). */
export interface MemberInfo {
  name: string;
  /** Where the others and operators reach it. */
  host: string;
  port: number;
  pcpPort: number;
  httpPort: number;
  version: string;
  /** wd_priority: the live member with the highest stands for leader. */
  priority: number;
  /** When it started (ms since the epoch). */
  startedAt: number;
  /**
   * Its number in the group (1..255, held in etcd on its lease; 0 while it has none): the top
   * byte of the cancel secrets it gives clients, so that any instance can tell whose session a
   * CancelRequest is for.
   */
  slot: number;
}

/** Slots 1..MAX_SLOT: the top byte of a cancel secret (0: an instance without one). */
export const MAX_SLOT = 255;

/** The part of the etcd client the watchdog uses (a fake one in unit tests). */
export interface Store {
  grant(ttl: number): Promise<string>;
  keepAlive(lease: string): Promise<number>;
  revoke(lease: string): Promise<void>;
  put(key: string, value: string, lease?: string): Promise<void>;
  list(prefix: string): Promise<EtcdKey[]>;
  createIfAbsent(key: string, value: string, lease: string): Promise<true | EtcdKey>;
  /** Writes `key` only while `holder` is on `lease`. */
  putIfHeld(key: string, value: string, holder: string, lease: string): Promise<boolean>;
  /** Deletes `key` only while it is on `lease`. */
  deleteIfHeld(key: string, lease: string): Promise<boolean>;
  close(): void;
}

export interface WatchdogTiming {
  /** wd_lease_ttl: seconds the member and leader keys outlive their last renewal. */
  ttl: number;
  /** wd_loop_wait: seconds between two rounds (renew, read the others, stand for leader). */
  loopWaitMs: number;
  /** wd_retry_timeout: how long one round's requests may take before the round is given up. */
  retryTimeoutMs: number;
}

/** The instances as this one sees them. */
export interface WatchdogView {
  self: MemberInfo;
  /** The live members (leased keys), this instance among them once registered, by name. */
  members: MemberInfo[];
  /** The leader's name, or null while there is none. */
  leader: string | null;
  isLeader: boolean;
  /** The last round reached etcd. */
  etcdReachable: boolean;
}

/** The nodes as the leader has them, published for the others (`/<group>/view`). */
export interface ClusterView {
  /** The leader's epoch when it wrote this: the view with the greater one is the newer. */
  epoch: number;
  primary: number | null;
  statuses: NodeStatus[];
}

/** pgpool's consensus rules (failover_require_consensus, enable_consensus_with_half_votes). */
export interface ConsensusRules {
  requireConsensus: boolean;
  halfVotes: boolean;
}

/** Votes needed among `n` live instances: a majority, or half with enable_consensus_with_half_votes. */
export function votesNeeded(n: number, halfVotes: boolean): number {
  return halfVotes && n % 2 === 0 ? n / 2 : Math.floor(n / 2) + 1;
}

export interface WatchdogEvents {
  /** This instance became the leader (true) or stopped being it (false). */
  leadership(isLeader: boolean): void;
  /** Another instance leads now (or nobody: null). */
  leaderChanged?(leader: string | null): void;
  /** etcd stopped (false) or started again (true) answering. */
  reachability?(reachable: boolean): void;
  /** The nodes this instance's own checks find down now (published for the leader to count). */
  seesDown?(): number[];
  /** Leader: nodes enough live instances see down; the group fails them over. */
  agreedDown?(nodes: { id: number; votes: number }[], members: number): void;
  /** Leader: its view of the nodes, published whenever its epoch grew. */
  localView?(): ClusterView;
  /** A view newer than this instance's own (the leader wrote it): apply it. */
  groupView?(v: ClusterView): void;
}

export class Watchdog {
  private lease: string | null = null;
  /** The lease (and so a leader key on it) lives at least until then (ms, monotonic). */
  private validUntil = 0;
  private members: MemberInfo[] = [];
  private leaderName: string | null = null;
  private leading = false;
  private reachable = true;
  private timer: TimerHandle | undefined;
  private stepDownTimer: TimerHandle | undefined;
  private stopped = false;
  private round: Promise<void> | null = null;

  constructor(
    private readonly store: Store,
    /** The etcd key prefix of this group of instances (/<watchdog_cluster_name>/). */
    private readonly prefix: string,
    /** Its slot is filled in once claimed. */
    private readonly self: MemberInfo,
    private readonly timing: WatchdogTiming,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly ev: WatchdogEvents,
    private readonly rules: ConsensusRules = { requireConsensus: true, halfVotes: false },
  ) {}

  private get leaderKey(): string {
    return `${this.prefix}leader`;
  }

  private get memberKey(): string {
    return `${this.prefix}members/${this.self.name}`;
  }

  private get healthKey(): string {
    return `${this.prefix}health/${this.self.name}`;
  }

  private get viewKey(): string {
    return `${this.prefix}view`;
  }

  /** Starts the rounds; resolves after the first (registered, or etcd found unreachable). */
  start(): Promise<void> {
    return this.runRound();
  }

  /** Since when etcd has not answered (monotonic ms; meaningful while it does not). */
  private unreachableSince = 0;

  /** How long etcd has not answered this instance (0 while it does). */
  cutOffMs(): number {
    return this.reachable ? 0 : this.clock.monotonic() - this.unreachableSince;
  }

  view(): WatchdogView {
    return { self: this.self, members: this.members, leader: this.leaderName, isLeader: this.isLeader, etcdReachable: this.reachable };
  }

  /** Leader, and its lease certainly alive: only then may this instance act for all. */
  get isLeader(): boolean {
    return this.leading && this.clock.monotonic() < this.validUntil - this.timing.retryTimeoutMs;
  }

  /** Leaves the group: gives up the leader key if held, and the lease (the member key goes with it). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.clock.clearTimeout(this.timer);
    this.clock.clearTimeout(this.stepDownTimer);
    await this.round?.catch(() => undefined);
    const wasLeader = this.leading;
    this.setLeading(false);
    try {
      if (wasLeader && this.lease) await this.store.deleteIfHeld(this.leaderKey, this.lease);
      if (this.lease) await this.store.revoke(this.lease);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'could not leave the watchdog group in etcd; its keys expire with their lease');
    }
    this.lease = null;
    this.store.close();
  }

  /**
   * A round now rather than at the next tick (after the one under way, if any): the leader
   * publishes its view at once, another instance takes the newest one (a group switchover).
   */
  async roundNow(): Promise<void> {
    while (this.round) await this.round.catch(() => undefined);
    if (this.stopped) return;
    this.clock.clearTimeout(this.timer);
    await this.runRound();
  }

  private runRound(): Promise<void> {
    this.round = this.once()
      .catch((err: unknown) => this.unreachable(err as Error))
      .finally(() => {
        this.round = null;
        if (!this.stopped) this.timer = this.clock.setTimeout(() => void this.runRound(), this.timing.loopWaitMs);
      });
    return this.round;
  }

  /** One round: the lease, the member key, the others, the leader key. */
  private async once(): Promise<void> {
    const sent = this.clock.monotonic();
    if (this.lease) {
      const ttl = await this.store.keepAlive(this.lease);
      if (ttl > 0) {
        this.validUntil = sent + ttl * 1000;
      } else {
        // Expired at etcd (this instance was away too long): its keys are gone with it.
        this.log.warn({ lease: this.lease }, 'watchdog lease expired; joining again');
        this.lease = null;
        this.setLeading(false);
      }
    }
    if (!this.lease) {
      const sentGrant = this.clock.monotonic();
      this.lease = await this.store.grant(this.timing.ttl);
      this.validUntil = sentGrant + this.timing.ttl * 1000;
      this.registered = false;
      this.publishedHealth = null;
    }
    if (!this.registered) {
      // A slot claimed on this lease is kept; the member key says so only once its put succeeded
      // (a failed one is tried again next round, and a round without a free slot tries again too).
      if (this.slotLease !== this.lease || this.claimedSlot === 0) {
        this.claimedSlot = await this.claimSlot(this.lease);
        this.slotLease = this.lease;
      }
      await this.store.put(this.memberKey, JSON.stringify({ ...this.self, slot: this.claimedSlot }), this.lease);
      this.self.slot = this.claimedSlot;
      this.registered = this.claimedSlot !== 0;
    }
    if (this.stopped) return;
    this.reached();
    // Its own vote first, so that the leader counts it in this round.
    await this.shareHealth(this.lease);
    await this.readGroup();
    // The group's view, when it is newer than the last one taken (etcd's revision orders them):
    // taken before this instance may lead on it; a leader does not take back its own.
    if (this.groupState && this.viewRevision > this.appliedRevision) {
      if (!this.leading) this.ev.groupView?.(this.groupState);
      this.appliedRevision = this.viewRevision;
    }
    if (this.leaderName === null && this.standsForLeader()) {
      const got = await this.store.createIfAbsent(this.leaderKey, this.self.name, this.lease);
      if (got === true) {
        this.leaderLease = this.lease;
        this.noteLeader(this.self.name);
        this.log.info({ name: this.self.name }, 'this instance is the watchdog leader');
      } else {
        this.noteLeader(got.value);
      }
    }
    const leads = this.leaderName === this.self.name && this.leaderLease === this.lease;
    this.setLeading(leads);
    if (leads) this.armStepDown();
    if (leads && this.isLeader) await this.lead(this.lease);
  }

  /** The member key is written with this lease (and the slot claimed on it). */
  private registered = false;
  private claimedSlot = 0;
  private slotLease: string | null = null;
  /** etcd's revision of the view as last read, and of the last view taken. */
  private viewRevision = 0;
  private appliedRevision = 0;

  /** What this instance's checks see, written when it changed (a new lease writes it again). */
  private async shareHealth(lease: string): Promise<void> {
    const text = JSON.stringify({ down: [...(this.ev.seesDown?.() ?? [])].sort((a, b) => a - b) });
    if (text === this.publishedHealth) return;
    await this.store.put(this.healthKey, text, lease);
    this.publishedHealth = text;
  }

  /** The leader's round: fail over what enough instances see down; publish its view when it changed. */
  private async lead(lease: string): Promise<void> {
    const needed = this.rules.requireConsensus ? votesNeeded(this.members.length, this.rules.halfVotes) : 1;
    const agreed = [...this.downVotes].filter(([, votes]) => votes >= needed).map(([id, votes]) => ({ id, votes }));
    if (agreed.length > 0) this.ev.agreedDown?.(agreed, this.members.length);
    const v = this.ev.localView?.();
    if (v && (this.groupState === null || v.epoch !== this.groupState.epoch)) {
      // Fenced: written only while the leader key is still on this lease (a deposed leader's
      // late write cannot land over its successor's).
      if (await this.store.putIfHeld(this.viewKey, JSON.stringify(v), this.leaderKey, lease)) this.groupState = v;
    }
  }

  /** The health text last written (null: write it). */
  private publishedHealth: string | null = null;
  /** How many live instances see each node down (as last read). */
  private downVotes = new Map<number, number>();
  /** The group's view of the nodes as last read (or written). */
  private groupState: ClusterView | null = null;

  /** The slot it had before (a new lease tries it first: its sessions' secrets carry it), else the lowest free one; 0 when none is free. */
  private previousSlot = 0;

  private async claimSlot(lease: string): Promise<number> {
    const taken = new Set((await this.store.list(`${this.prefix}slots/`)).map((k) => Number(k.key.slice(k.key.lastIndexOf('/') + 1))));
    const free: number[] = [];
    if (this.previousSlot > 0 && !taken.has(this.previousSlot)) free.push(this.previousSlot);
    for (let n = 1; n <= MAX_SLOT && free.length < 4; n++) if (!taken.has(n) && n !== this.previousSlot) free.push(n);
    for (const n of free) {
      if ((await this.store.createIfAbsent(`${this.prefix}slots/${n}`, this.self.name, lease)) === true) {
        this.previousSlot = n;
        return n;
      }
    }
    this.log.warn('no free watchdog slot: cancel requests for this instance\'s sessions are not forwarded to it');
    return 0;
  }

  /** The lease the leader key is on (as last read). */
  private leaderLease: string | null = null;

  private async readGroup(): Promise<void> {
    const keys = await this.store.list(this.prefix);
    const members: MemberInfo[] = [];
    const health = new Map<string, number[]>();
    let leader: EtcdKey | null = null;
    for (const k of keys) {
      const rest = k.key.slice(this.prefix.length);
      try {
        if (k.key === this.leaderKey) leader = k;
        else if (k.key === this.viewKey) {
          this.groupState = JSON.parse(k.value) as ClusterView;
          this.viewRevision = Number(k.modRevision);
        }
        else if (rest.startsWith('members/')) members.push(JSON.parse(k.value) as MemberInfo);
        else if (rest.startsWith('health/')) health.set(rest.slice('health/'.length), (JSON.parse(k.value) as { down: number[] }).down);
      } catch {
        this.log.warn({ key: k.key }, 'watchdog key that is not JSON; ignored');
      }
    }
    this.members = members;
    // Only live members vote (a health key goes with its member's lease anyway).
    this.downVotes = new Map();
    for (const m of members) for (const id of health.get(m.name) ?? []) this.downVotes.set(id, (this.downVotes.get(id) ?? 0) + 1);
    this.leaderLease = leader?.lease ?? null;
    this.noteLeader(leader?.value ?? null);
  }

  /** pgpool's wd_priority: only a live member with the highest priority stands (ties all stand). */
  private standsForLeader(): boolean {
    return this.members.every((m) => m.name === this.self.name || m.priority <= this.self.priority);
  }

  private noteLeader(name: string | null): void {
    if (name === this.leaderName) return;
    this.leaderName = name;
    this.log.info({ leader: name }, name === null ? 'no watchdog leader' : 'watchdog leader');
    this.ev.leaderChanged?.(name);
  }

  private setLeading(leads: boolean): void {
    if (leads === this.leading) return;
    this.leading = leads;
    if (!leads) this.clock.clearTimeout(this.stepDownTimer);
    this.ev.leadership(leads);
  }

  /** Steps down when the lease can no longer be known alive (no renewal in time). */
  private armStepDown(): void {
    this.clock.clearTimeout(this.stepDownTimer);
    const at = this.validUntil - this.timing.retryTimeoutMs - this.clock.monotonic();
    this.stepDownTimer = this.clock.setTimeout(() => {
      if (this.isLeader) return this.armStepDown();
      this.log.warn({ name: this.self.name }, 'watchdog lease not renewed in time: no longer acting as leader');
      this.setLeading(false);
    }, Math.max(0, at));
  }

  private reached(): void {
    if (this.reachable) return;
    this.reachable = true;
    // The group's view is taken again, even one this instance had seen: while away it may have
    // changed its nodes on its own (failover_when_quorum_exists = false).
    this.appliedRevision = 0;
    this.log.info('etcd reachable again');
    this.ev.reachability?.(true);
  }

  private unreachable(err: Error): void {
    if (this.leading && !this.isLeader) this.setLeading(false);
    if (!this.reachable) return;
    this.reachable = false;
    this.unreachableSince = this.clock.monotonic();
    this.log.warn({ err: err.message }, 'etcd unreachable: serving with the last view, acting for no one');
    this.ev.reachability?.(false);
  }
}
