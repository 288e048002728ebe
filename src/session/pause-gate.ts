import { ClientError } from '../protocol/client-error';
import { SqlState } from '../protocol/sqlstate';

/**
 * Pause and resume (PgBouncer's PAUSE/RESUME, sluicectl pause): while closed, sessions hold their
 * next statement at a transaction boundary and new sessions wait before they take a backend
 * connection. Held clients see latency only, up to the hold limit; then a clear error.
 */
export class PauseGate {
  private paused = false;
  private readonly waiters = new Set<{ open: () => void }>();

  constructor(private readonly holdMs: number) {}

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
          new ClientError(
            'FATAL',
            SqlState.CannotConnectNow,
            'Sluice is paused',
            `statements were held for ${Math.round(this.holdMs / 1000)} s (failover_hold_timeout) and Sluice was not resumed`,
          ),
        );
      }, this.holdMs);
      this.waiters.add(w);
    });
  }

  /** Sessions held now. */
  get holding(): number {
    return this.waiters.size;
  }
}
