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
  private last = Date.now();
  private limitMs = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly h: IdleLimitHost) {}

  /** (Re)starts the clock for a limit in seconds; 0 turns it off. */
  set(seconds: number): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.limitMs = seconds * 1000;
    this.last = Date.now();
    if (this.limitMs > 0) this.wait(this.limitMs);
  }

  /** The client sent something. */
  touch(): void {
    if (this.limitMs > 0) this.last = Date.now();
  }

  /** Seconds since the client last sent something (0 while no limit is set). */
  get idleSeconds(): number {
    return this.limitMs > 0 ? Math.floor((Date.now() - this.last) / 1000) : 0;
  }

  stop(): void {
    this.limitMs = 0;
    clearTimeout(this.timer);
  }

  private wait(ms: number): void {
    this.timer = setTimeout(() => this.check(), ms);
    this.timer.unref();
  }

  private check(): void {
    if (this.limitMs <= 0 || !this.h.active()) return;
    const busy = this.h.busy();
    const idleFor = Date.now() - this.last;
    if (!busy && idleFor >= this.limitMs) this.h.expire();
    // A busy session is looked at again after the limit, and never more often than MIN_RECHECK_MS.
    else this.wait(Math.max(busy ? this.limitMs : this.limitMs - idleFor, MIN_RECHECK_MS));
  }
}
