import type { BackendConfig, Config } from '../config/load';
import type { Logger } from '../log/logger';
import { setTimeout as delay } from 'node:timers/promises';
import { Clock, systemClock } from '../util/clock';

/** One node's health check settings: the [[backend]] override, else the top-level key. */
export interface HealthSettings {
  periodMs: number;
  /** The whole attempt (connect, startup, authentication); 0 = no limit. */
  timeoutMs: number;
  user: string;
  password: string;
  database: string;
  maxRetries: number;
  retryDelayMs: number;
}

export function healthSettings(c: Config, b: BackendConfig): HealthSettings {
  return {
    periodMs: (b.health_check_period ?? c.health_check_period) * 1000,
    timeoutMs: (b.health_check_timeout ?? c.health_check_timeout) * 1000,
    user: b.health_check_user ?? c.health_check_user,
    password: b.health_check_password ?? c.health_check_password,
    database: (b.health_check_database ?? c.health_check_database) || 'postgres',
    maxRetries: b.health_check_max_retries ?? c.health_check_max_retries,
    retryDelayMs: (b.health_check_retry_delay ?? c.health_check_retry_delay) * 1000,
  };
}

/** The figures pgpool keeps per node for SHOW POOL_HEALTH_CHECK_STATS (pgpool.md b.2). */
export interface HealthStats {
  total: number;
  success: number;
  fail: number;
  skip: number;
  retry: number;
  maxRetry: number;
  /** Durations of the checks that ran, in ms. */
  maxDurationMs: number;
  minDurationMs: number;
  totalDurationMs: number;
  lastCheck: Date | null;
  lastSuccess: Date | null;
  lastSkip: Date | null;
  lastFailure: Date | null;
}

export function averageRetries(s: HealthStats): number {
  const ran = s.total - s.skip;
  return ran > 0 ? s.retry / ran : 0;
}

export function averageDuration(s: HealthStats): number {
  const ran = s.total - s.skip;
  return ran > 0 ? s.totalDurationMs / ran : 0;
}

/** What a health check needs from the cluster. */
export interface HealthHost {
  /** One attempt: a full connection (startup and authentication), then disconnect. */
  probe(settings: HealthSettings): Promise<void>;
  /** The node is not checked now (down, or being re-pointed by follow_primary_command). */
  skipped(): boolean;
  /** Every attempt of one check failed. */
  failed(reason: string): void;
  /** A check succeeded. */
  succeeded(): void;
  /** A check that ran took this long, retries included (the duration metric). */
  measured?(ms: number): void;
}


/**
 * pgpool's health check for one node: every period a new connection (no query), retried
 * max_retries times retry_delay apart before the node is reported dead. checkNow() runs one at
 * once (a session saw a connection break); concurrent calls share it.
 */
export class HealthCheck {
  readonly stats: HealthStats = {
    total: 0,
    success: 0,
    fail: 0,
    skip: 0,
    retry: 0,
    maxRetry: 0,
    maxDurationMs: 0,
    minDurationMs: 0,
    totalDurationMs: 0,
    lastCheck: null,
    lastSuccess: null,
    lastSkip: null,
    lastFailure: null,
  };
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<boolean> | null = null;
  private stopped = false;

  constructor(
    readonly nodeId: number,
    /** Replaced by a reload (reconfigure). */
    public settings: HealthSettings,
    private readonly host: HealthHost,
    private readonly log: Logger,
    /** Times the checks (their durations are statistics). */
    private readonly clock: Pick<Clock, 'now'> = systemClock,
  ) {}

  start(): void {
    if (this.settings.periodMs <= 0) return;
    this.schedule();
  }

  /** A reload's settings; a changed period takes effect now. */
  reconfigure(next: HealthSettings): void {
    const restart = next.periodMs !== this.settings.periodMs;
    this.settings = next;
    if (!restart || this.stopped) return;
    clearTimeout(this.timer);
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped || this.settings.periodMs <= 0) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.checkNow().finally(() => this.schedule()), this.settings.periodMs);
    this.timer.unref();
  }

  /** Runs a check now (or joins the one running); true when the node answered. */
  checkNow(): Promise<boolean> {
    if (!this.running) this.running = this.check().finally(() => (this.running = null));
    return this.running;
  }

  private async check(): Promise<boolean> {
    const s = this.stats;
    s.total++;
    s.lastCheck = new Date(this.clock.now());
    if (this.host.skipped()) {
      s.skip++;
      s.lastSkip = s.lastCheck;
      return false;
    }
    const began = this.clock.now();
    let reason = '';
    for (let attempt = 0; attempt <= this.settings.maxRetries && !this.stopped; attempt++) {
      if (attempt > 0) {
        s.retry++;
        s.maxRetry = Math.max(s.maxRetry, attempt);
        await delay(this.settings.retryDelayMs);
        if (this.host.skipped()) break;
      }
      try {
        await this.host.probe(this.settings);
        this.finish(began);
        s.success++;
        s.lastSuccess = new Date(this.clock.now());
        this.host.succeeded();
        return true;
      } catch (err) {
        reason = (err as Error).message;
        this.log.debug({ node: this.nodeId, attempt, err: reason }, 'health check attempt failed');
      }
    }
    this.finish(began);
    if (this.stopped || this.host.skipped()) return false;
    s.fail++;
    s.lastFailure = new Date(this.clock.now());
    this.log.warn({ node: this.nodeId, retries: this.settings.maxRetries, err: reason }, 'health check failed');
    this.host.failed(reason);
    return false;
  }

  private finish(began: number): void {
    const s = this.stats;
    const ms = this.clock.now() - began;
    const first = s.success + s.fail === 0;
    s.maxDurationMs = Math.max(s.maxDurationMs, ms);
    s.minDurationMs = first ? ms : Math.min(s.minDurationMs, ms);
    s.totalDurationMs += ms;
    this.host.measured?.(ms);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}
