// client_idle_limit and client_idle_limit_in_recovery: a timer per session, on the Clock.
import type { Clock, TimerHandle } from '../util/clock';

/** What the client_idle_limit timer reads from its session. */
export interface IdleLimitHost {
  /** The session is still serving (a closed or starting one is not timed). */
  active(): boolean;
  /** A statement is in flight: a client waiting for its answer is not idle. */
  busy(): boolean;
  expire(): void;
}

const MIN_RECHECK_MS = 50;

/**
 * client_idle_limit: a client silent that long while nothing is in flight is disconnected. The
 * limit may change during the session (PGPOOL SET); with none the clock is never read.
 */
export class IdleLimit {
  /** When the client last sent something (read only while a limit is set). */
  private last = 0;
  private limitMs = 0;
  private timer: TimerHandle | undefined;

  constructor(
    private readonly h: IdleLimitHost,
    private readonly clock: Clock,
  ) {}

  /** (Re)starts the clock for a limit in seconds; 0 turns it off. */
  set(seconds: number): void {
    if (seconds === 0 && this.limitMs === 0) return;
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.limitMs = seconds * 1000;
    this.last = this.clock.now();
    if (this.limitMs > 0) this.wait(this.limitMs);
  }

  /** The client sent something. */
  touch(): void {
    if (this.limitMs > 0) this.last = this.clock.now();
  }

  /** Seconds since the client last sent something (0 while no limit is set). */
  get idleSeconds(): number {
    return this.limitMs > 0 ? Math.floor((this.clock.now() - this.last) / 1000) : 0;
  }

  stop(): void {
    this.limitMs = 0;
    this.clock.clearTimeout(this.timer);
  }

  private wait(ms: number): void {
    this.timer = this.clock.setTimeout(() => this.check(), ms);
  }

  private check(): void {
    if (this.limitMs <= 0 || !this.h.active()) return;
    const busy = this.h.busy();
    const idleFor = this.clock.now() - this.last;
    if (!busy && idleFor >= this.limitMs) this.h.expire();
    // A busy session is looked at again after the limit, and never more often than MIN_RECHECK_MS.
    else this.wait(Math.max(busy ? this.limitMs : this.limitMs - idleFor, MIN_RECHECK_MS));
  }
}
