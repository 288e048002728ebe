import { RecoveryError } from '../cluster/recovery';
import { lsnToNumber } from '../cluster/replication';
import { AdminError } from './errors';
import type { AdminHost, ShutdownMode } from './host';
import type { SessionInfo } from '../session/registry';
import { setTimeout as delay } from 'node:timers/promises';

const POLL_MS = 50;

/**
 * Every admin action, one implementation for PCP (pcp_* and sluicectl) and anything else that
 * asks: attach, detach, promote and switchover, pause and resume, stop, reload.
 */
/** In a group: stage 2's hold on every other instance, resolved once all hold; its release. */
export type HoldOthers = (deadline: number) => Promise<() => void>;

/** setTimeout's longest delay (a longer one fires at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class AdminCommands {
  constructor(private readonly h: AdminHost) {}

  private get holdMs(): number {
    return this.h.config.failover_hold_timeout * 1000;
  }

  /** A configured node id (pgpool checks against the configured count, not the maximum). */
  private node(id: number, what: string): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.h.cluster.topology.nodes.length) {
      throw new AdminError(`could not process ${what} request`, `node id ${id} is not valid`);
    }
  }

  /** pcp_attach_node: the request is queued and answered at once, as pgpool does. */
  attach(id: number): void {
    this.node(id, 'attach node');
    void this.h.cluster.failover.failback(id, 'attached by an administrator');
  }

  /** pcp_detach_node; graceful (-g): sessions are held at a transaction boundary first. */
  async detach(id: number, graceful: boolean): Promise<void> {
    this.node(id, 'detach node');
    const n = this.h.cluster.topology.nodes[id]!;
    if (n.flags.includes('DISALLOW_TO_FAILOVER')) {
      throw new AdminError('could not process detach node request', `node ${id} is flagged DISALLOW_TO_FAILOVER`);
    }
    const run = () => this.h.cluster.failover.degenerate(id, 'detached by an administrator');
    if (!graceful) {
      void run();
      return;
    }
    await this.paused(async (resume) => {
      await run();
      resume();
    });
  }

  /**
   * pcp_promote_node. switchover: clients are held at transaction boundaries, node `id` catches
   * up with everything the primary wrote, failover_command promotes it, follow_primary_command
   * re-points the others (the old primary too), and clients go on: latency, no errors.
   */
  async promote(id: number, switchover: boolean, graceful: boolean, ready: () => void = () => undefined): Promise<void> {
    this.checkPromote(id, switchover);
    if (!switchover && !graceful) {
      await this.h.cluster.failover.promote(id, false, ready);
      return;
    }
    if (switchover) this.switching = true;
    try {
      await this.paused(async (resume) => {
        if (switchover) await this.catchUp(id);
        // Sessions go on as soon as the new primary serves; the others follow it meanwhile.
        await this.h.cluster.failover.promote(id, switchover, () => {
          resume();
          ready();
        });
      });
    } finally {
      if (switchover) this.switching = false;
    }
  }

  /** A switchover runs (one at a time: a second would detach the primary the first just made). */
  private switching = false;

  /** What pcp_promote_node checks before anything is held (a group's switchover checks first too). */
  checkPromote(id: number, switchover: boolean): void {
    this.node(id, 'promote');
    const t = this.h.cluster.topology;
    if (t.primaryId === id) {
      throw new AdminError('invalid promote request', `specified node is already primary node, can't promote node id ${id}`, true);
    }
    const n = t.nodes[id]!;
    if (n.status === 'down' || n.status === 'unused') {
      throw new AdminError('could not process promote request', `node id ${id} is not up`);
    }
    if (switchover && (this.switching || this.h.cluster.failover.inProgress)) {
      throw new AdminError('failed to process PCP request at the moment', this.switching ? 'a switchover is in progress' : 'failover is in progress');
    }
  }

  /** Runs `work` with sessions held at transaction boundaries; they go on when it calls resume (or ends). */
  private async paused(work: (resume: () => void) => Promise<void>): Promise<void> {
    const wasPaused = this.h.gate.closed;
    const resume = () => {
      if (!wasPaused) this.h.gate.open();
    };
    this.h.gate.close();
    try {
      await this.drain(Date.now() + this.holdMs / 2);
      await work(resume);
    } finally {
      resume();
    }
  }

  /**
   * sluicectl pause: new statements wait at a transaction boundary; wait: until all are there.
   * expiresMs: another instance paused this one for its switchover, and this instance resumes on
   * its own after that long should that instance never say so (it died, or lost the network).
   */
  async pause(wait: boolean, expiresMs?: number): Promise<void> {
    this.h.gate.close();
    this.h.cluster.holdFailovers(true);
    this.h.log.info({ wait, expiresMs }, 'paused: statements are held at transaction boundaries');
    clearTimeout(this.pauseExpiry);
    if (expiresMs !== undefined) {
      this.pauseExpiry = setTimeout(() => {
        this.h.log.warn({ expiresMs }, 'the pause for another instance\'s switchover was never lifted by it: resuming');
        this.resume();
      }, Math.min(expiresMs, MAX_TIMER_MS));
      this.pauseExpiry.unref();
    }
    if (wait) await this.drain(Date.now() + this.holdMs);
  }

  private pauseExpiry: NodeJS.Timeout | undefined;

  resume(): void {
    clearTimeout(this.pauseExpiry);
    this.pauseExpiry = undefined;
    const held = this.h.gate.holding;
    this.h.gate.open();
    this.h.cluster.holdFailovers(false);
    this.h.log.info({ held }, 'resumed');
  }

  /** Waits until every session is between transactions with nothing in flight. */
  private drain(deadline: number): Promise<void> {
    return this.untilNone(
      (s) => !s.atBoundary,
      deadline,
      (n) => new AdminError('sessions did not reach a transaction boundary', `${n} session(s) still in a transaction or running a statement`),
    );
  }

  /** Polls until no session matches `busy`; at the deadline, the error for how many are left. */
  private async untilNone(busy: (s: SessionInfo) => boolean, deadline: number, error: (left: number) => AdminError): Promise<void> {
    for (;;) {
      const left = this.h.sessions().filter(busy).length;
      if (left === 0) return;
      if (Date.now() >= deadline) throw error(left);
      await delay(POLL_MS);
    }
  }


  /** Waits until node `id` has replayed everything the primary has written (nothing is written now). */
  private async catchUp(id: number): Promise<void> {
    const c = this.h.cluster;
    const primary = c.primary;
    if (!primary) throw new AdminError('could not process promote request', 'no primary node is known');
    const [rows] = await c.query(primary, ['SELECT pg_catalog.pg_current_wal_lsn()']);
    const target = lsnToNumber(rows?.[0]?.[0]);
    const deadline = Date.now() + this.holdMs / 2;
    for (;;) {
      const [r] = await c.query(c.topology.nodes[id]!, ['SELECT pg_catalog.pg_last_wal_replay_lsn()']);
      const replayed = lsnToNumber(r?.[0]?.[0]);
      if (replayed >= target) return;
      if (Date.now() >= deadline) {
        throw new AdminError('could not process promote request', `node id ${id} did not replay the primary's WAL in time (${replayed} of ${target})`);
      }
      await delay(POLL_MS);
    }
  }

  /**
   * pcp_recovery_node, after pgpool's checks: the node is down and not the primary, and no other
   * recovery or failover runs. Answers when the node is attached (or the recovery failed).
   */
  async recovery(id: number, progress: (message: string) => void = () => undefined, holdOthers?: HoldOthers): Promise<void> {
    this.node(id, 'recovery');
    const c = this.h.cluster;
    if (c.recovery.inProgress !== null) throw new AdminError('pgpool-II is already processing another recovery request.', `node ${c.recovery.inProgress} is being recovered`, true);
    if (c.failover.inProgress) throw new AdminError('failed to process PCP request at the moment', 'failover is in progress');
    if (c.topology.primaryId === id) throw new AdminError('primary server cannot be recovered by online recovery.', `node ${id} is the primary`);
    if (c.topology.nodes[id]!.status !== 'down') throw new AdminError(`node recovery failed, node id: ${id} is alive`, 'detach it first (sluicectl detach-node)');
    try {
      await c.recovery.recover(id, { holdSessions: (deadline) => this.holdEverywhere(deadline, holdOthers), progress });
    } catch (err) {
      if (err instanceof RecoveryError) throw new AdminError(err.message, err.detail);
      throw err;
    }
  }

  /** Stage 2's hold here and, in a group, on every other instance at once; one release for all. */
  private async holdEverywhere(deadline: number, holdOthers?: HoldOthers): Promise<() => void> {
    if (!holdOthers) return this.holdNewSessions(deadline);
    const [here, others] = await Promise.allSettled([this.holdNewSessions(deadline), holdOthers(deadline)]);
    const releases = [here, others].flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const release = () => releases.forEach((r) => r());
    const failed = [here, others].find((r) => r.status === 'rejected');
    if (failed) {
      release();
      throw failed.reason;
    }
    return release;
  }

  /** Another instance's recovery reached its second stage: sessions here are held too, until it releases them. */
  private groupHold: { release: () => void; timer: NodeJS.Timeout } | null = null;
  /** Which hold is the current one: a release (or a newer hold) while one still drains ends that one. */
  private holdGeneration = 0;

  async holdForGroupRecovery(ms: number): Promise<void> {
    this.releaseGroupRecovery();
    const generation = this.holdGeneration;
    this.h.log.info('online recovery of the group: new sessions held here, waiting for the open ones to end');
    const release = await this.holdNewSessions(Date.now() + ms);
    if (generation !== this.holdGeneration) return release();
    // A leader that dies before it releases the group must not leave this instance held: its
    // recovery cannot outlast the stage's deadline and two more of the same (start, standby wait).
    const timer = setTimeout(() => {
      this.h.log.warn('online recovery of the group: never released by the leader; sessions admitted again');
      this.releaseGroupRecovery();
    }, Math.min(3 * ms, MAX_TIMER_MS));
    timer.unref();
    this.groupHold = { release, timer };
  }

  releaseGroupRecovery(): void {
    this.holdGeneration++;
    const g = this.groupHold;
    this.groupHold = null;
    if (!g) return;
    clearTimeout(g.timer);
    g.release();
  }

  /**
   * Online recovery's second stage: new sessions wait; open ones may finish (idle ones leave per
   * client_idle_limit_in_recovery). Resolves with the release once no session is open.
   */
  private async holdNewSessions(deadline: number): Promise<() => void> {
    this.h.admission.close();
    this.h.onlineRecovery(true);
    const release = () => {
      this.h.onlineRecovery(false);
      this.h.admission.open();
    };
    try {
      await this.untilNone(
        (s) => s.status !== 'Wait for connection',
        deadline,
        (n) => new AdminError('node recovery failed', `${n} session(s) still open when recovery_timeout ran out (see client_idle_limit_in_recovery)`),
      );
      return release;
    } catch (err) {
      release();
      throw err;
    }
  }

  /** pcp_stop_pgpool: refused while a failover runs, as pgpool refuses it. */
  checkStop(): void {
    if (this.h.cluster.failover.inProgress) {
      throw new AdminError('failed to process PCP request at the moment', 'failover is in progress');
    }
  }

  stop(mode: ShutdownMode): void {
    this.checkStop();
    // The reply goes out first; then Sluice stops (pgpool's order).
    setImmediate(() => this.h.requestStop(mode));
  }

  reload(): void {
    this.h.reload();
  }
}
