import type { Logger } from '../log/logger';
import { Clock, delay as clockDelay, systemClock } from '../util/clock';
import { runScript, shellQuote } from './hooks';
import type { NodeInfo, RecoveryStep, Topology } from './topology';

export interface RecoveryOptions {
  firstStageCommand: string;
  secondStageCommand: string;
  /** pgpool_remote_start's counterpart: $1 target host, $2 target data directory. */
  remoteStartCommand: string;
  /** recovery_timeout: bounds each script, the wait for sessions, and the wait for the node. */
  timeoutMs: number;
  /** Where local scripts run: the config file's folder. */
  cwd: string;
  /** Run the stages through pgpool's pgpool_recovery extension on the primary instead. */
  viaExtension: boolean;
}

/** What recovery needs from the cluster (wired by the manager). */
export interface RecoveryHost {
  /** Runs statements on the primary as recovery_user in recovery_database; rows per statement. */
  onPrimary(sqls: string[], timeoutMs: number): Promise<(string | null)[][][]>;
  /** Whether the node accepts recovery_user's connections and is in recovery (a standby). */
  isStandby(node: NodeInfo): Promise<boolean>;
  /** Attaches the node (failback_command). */
  failback(id: number): Promise<void>;
  /** The recovery ended (metrics, the status page's recent events). */
  event(kind: 'recovery', node: number, message: string, ok: boolean): void;
}

/** What the caller of one recovery takes part in: stage 2's session hold, progress reports. */
export interface RecoveryCaller {
  /** New sessions are held and open ones drain; resolves with the release once none are left. */
  holdSessions(deadline: number): Promise<() => void>;
  progress(message: string): void;
}

/** A recovery step failed: the node stays down; the message reaches pcp_recovery_node's caller. */
export class RecoveryError extends Error {
  constructor(
    message: string,
    readonly detail: string,
  ) {
    super(message);
  }
}

const POLL_MS = 250;
const sqlText = (s: string) => `'${s.replace(/'/g, "''")}'`;
/** pgpool passes 'localhost' for a host that is empty or a socket folder. */
const hostArg = (h: string) => (h === '' || h.startsWith('/') ? 'localhost' : h);

/**
 * pgpool's online recovery (pgpool.md a.8) for streaming replication, with a real second stage:
 * stage 1 while clients work; stage 2 (when configured) with new sessions held and open ones
 * drained; then the remote start, a wait until the node is a standby, and the failback. One at
 * a time. The node stays down until the failback, so nothing is routed to it before.
 */
export class OnlineRecovery {
  private running: number | null = null;

  constructor(
    private readonly topology: Topology,
    /** Replaced by a reload (the commands, recovery_timeout). */
    public opts: RecoveryOptions,
    private readonly host: RecoveryHost,
    private readonly log: Logger,
    private readonly clock: Clock = systemClock,
  ) {}

  /** The node being recovered, if any. */
  get inProgress(): number | null {
    return this.running;
  }

  async recover(id: number, caller: RecoveryCaller): Promise<void> {
    this.running = id;
    const node = this.topology.nodes[id]!;
    const log = this.log.child({ node: id });
    const deadline = () => this.clock.now() + this.opts.timeoutMs;
    let release: (() => void) | null = null;
    const step = (s: RecoveryStep, message: string) => {
      this.topology.setRecovery(id, s);
      log.info({ step: s }, message);
      caller.progress(message);
    };
    try {
      step('stage 1', `recovery of node ${id}: first stage (clients keep working)`);
      await this.stage('recovery_1st_stage_command', this.opts.firstStageCommand, node);
      if (this.opts.secondStageCommand) {
        step('stage 2', `recovery of node ${id}: second stage, new sessions are held while open ones finish`);
        release = await caller.holdSessions(deadline());
        await this.stage('recovery_2nd_stage_command', this.opts.secondStageCommand, node);
      }
      step('starting', `recovery of node ${id}: starting the node`);
      await this.remoteStart(node);
      await this.waitForStandby(node, deadline());
      await this.host.failback(id);
      log.info('recovery done');
      caller.progress(`recovery of node ${id}: done, node attached`);
      this.host.event('recovery', id, `node ${id} recovered and attached`, true);
    } catch (err) {
      const detail = err instanceof RecoveryError ? err.detail : (err as Error).message;
      this.host.event('recovery', id, `recovery of node ${id} failed: ${detail}`, false);
      throw err;
    } finally {
      release?.();
      this.topology.setRecovery(id, null);
      this.running = null;
    }
  }

  /** pgpool's seven arguments: primary data dir, target host and data dir, ports, ids, hosts. */
  private stageArgs(node: NodeInfo): string[] {
    const primary = this.topology.primaryId === null ? undefined : this.topology.nodes[this.topology.primaryId];
    if (!primary) throw new RecoveryError('node recovery failed', 'no primary node is known');
    return [primary.dataDirectory, hostArg(node.host), node.dataDirectory, String(primary.port), String(node.id), String(node.port), hostArg(primary.host)];
  }

  private async stage(name: string, command: string, node: NodeInfo): Promise<void> {
    if (!command) return;
    const args = this.stageArgs(node);
    if (this.opts.viaExtension) {
      // pgpool_recovery runs "$PGDATA/<command>" on the primary and prepends its own PGDATA.
      const call = `SELECT pgpool_recovery(${sqlText(command)}, ${sqlText(args[1]!)}, ${sqlText(args[2]!)}, ${sqlText(args[3]!)}, ${args[4]}, ${sqlText(args[5]!)}, ${sqlText(args[6]!)})`;
      await this.onPrimary(name, ['SET statement_timeout TO 0', call]);
      return;
    }
    await this.script(name, `${command} ${args.map(shellQuote).join(' ')}`);
  }

  private async remoteStart(node: NodeInfo): Promise<void> {
    const host = hostArg(node.host);
    if (this.opts.viaExtension) {
      await this.onPrimary('pgpool_remote_start', [`SELECT pgpool_remote_start(${sqlText(host)}, ${sqlText(node.dataDirectory)})`]);
    } else if (this.opts.remoteStartCommand) {
      await this.script('remote_start_command', `${this.opts.remoteStartCommand} ${shellQuote(host)} ${shellQuote(node.dataDirectory)}`);
    }
  }

  private async onPrimary(name: string, sqls: string[]): Promise<void> {
    try {
      await this.host.onPrimary(sqls, this.opts.timeoutMs);
    } catch (err) {
      throw new RecoveryError('node recovery failed', `${name} failed on the primary: ${(err as Error).message}`);
    }
  }

  private async script(name: string, line: string): Promise<void> {
    const r = await runScript(name, line, {}, { cwd: this.opts.cwd, timeoutMs: this.opts.timeoutMs, log: this.log });
    if (r.code === 0) return;
    const how = r.timedOut ? `did not finish in ${this.opts.timeoutMs / 1000} s (recovery_timeout)` : r.code === null ? `was killed by ${r.signal}` : `exited with code ${r.code}`;
    const tail = r.errorTail.length > 0 ? `: ${r.errorTail.join(' / ')}` : '';
    throw new RecoveryError('node recovery failed', `${name} ${how}${tail}`);
  }

  /** pgpool's check_postmaster_started, plus: the node must be in recovery (a standby). */
  private async waitForStandby(node: NodeInfo, deadline: number): Promise<void> {
    for (;;) {
      if (await this.host.isStandby(node).catch(() => false)) return;
      if (this.clock.now() >= deadline) {
        throw new RecoveryError(
          'recovery is checking if postmaster is started',
          `postmaster on hostname:"${node.host}" port:${node.port} did not start as a standby in ${this.opts.timeoutMs / 1000} second`,
        );
      }
      await clockDelay(this.clock, POLL_MS, true);
    }
  }
}
