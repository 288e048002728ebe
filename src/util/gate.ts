import { Errors } from '../protocol/errors';

/**
 * Pause and resume (PgBouncer's PAUSE/RESUME, sluicectl pause): while closed, sessions hold their
 * next statement at a transaction boundary and new sessions wait before they take a backend
 * connection. Held clients see latency only, up to the hold limit; then a clear error.
 */
export class PauseGate {
  private paused = false;
  private readonly waiters = new Set<{ open: () => void }>();
  private readonly sessions = new WeakSet<object>();

  constructor(
    /** Replaced by a reload (failover_hold_timeout, recovery_timeout). */
    public holdMs: number,
    /** What the error says when the hold limit is reached. */
    private readonly why = { message: 'Sluice is paused', setting: 'failover_hold_timeout', until: 'Sluice was not resumed' },
  ) {}

  get closed(): boolean {
    return this.paused;
  }

  close(): void {
    this.paused = true;
  }

  open(): void {
    this.paused = false;
    for (const w of [...this.waiters]) w.open();
  }

  /** Resolves when the gate is open (at once if it is); rejects after the hold limit. */
  pass(): Promise<void> {
    if (!this.paused) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const w = {
        open: () => {
          clearTimeout(timer);
          this.waiters.delete(w);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(w);
        reject(
          Errors.heldTooLong(this.why.message, `held for ${Math.round(this.holdMs / 1000)} s (${this.why.setting}) and ${this.why.until}`),
        );
      }, this.holdMs);
      this.waiters.add(w);
    });
  }

  /**
   * Holds a session's next statement until the gate opens: `go` then, or `fail` after the hold
   * limit. A session already waiting is not registered twice.
   */
  holdSession(session: object, go: () => void, fail: (err: unknown) => void): void {
    if (this.sessions.has(session)) return;
    this.sessions.add(session);
    this.pass().then(
      () => {
        this.sessions.delete(session);
        go();
      },
      (err: unknown) => {
        this.sessions.delete(session);
        fail(err);
      },
    );
  }

  /** Sessions held now. */
  get holding(): number {
    return this.waiters.size;
  }
}
