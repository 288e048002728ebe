import type { NodeLink } from './link';

/**
 * A session whose primary connection went away while it was idle outside a transaction: its
 * next statement waits while `reconnect` finds the new primary (once, however many frames ask).
 */
export class PrimaryRecovery {
  private reconnect: (() => Promise<NodeLink>) | null = null;
  private running = false;

  get pending(): boolean {
    return this.reconnect !== null;
  }

  lost(reconnect: () => Promise<NodeLink>): void {
    this.reconnect = reconnect;
  }

  /** Gets the new primary link for `adopt`, or the error for `fail`; `done` runs either way. */
  run(adopt: (link: NodeLink) => void, fail: (err: unknown) => void, done: () => void): void {
    if (this.running || !this.reconnect) return;
    this.running = true;
    this.reconnect()
      .then((link) => {
        this.reconnect = null;
        adopt(link);
      })
      .catch(fail)
      .finally(() => {
        this.running = false;
        done();
      });
  }
}
