import type { DatabaseCatalog } from '../cluster/catalog-cache';
import type { CatalogView } from '../router/route';
import type { Clock, TimerHandle } from '../util/clock';

/**
 * How long a read waits for the volatility of functions it calls that are not known yet (made
 * after the catalog was read) before it goes to the primary, the safe side. A primary answers
 * the look-up in well under a millisecond; one that does not is no place to wait.
 */
export const LOOKUP_LIMIT_MS = 200;

/**
 * One session's side of function look-ups (pgpool looks an unknown function up when it first
 * meets it): routing's view of the catalog, the look-up of the held message's unknown names on
 * the session's primary connection, and its time limit. Answers are kept per database for every
 * session (cluster/catalog-cache.ts); DDL that passes through forgets what it changes.
 */
export class FunctionLookups implements CatalogView {
  /** The held message's look-up had no answer in time: names still unknown are the primary's. */
  private gaveUp = false;
  private timer: TimerHandle | undefined;
  /** Names changed by DDL in the open transaction: forgotten again when it ends (commit makes them visible). */
  private changedInTx: string[] | '*' | null = null;

  constructor(
    private readonly clock: Clock,
    /** The session's database's catalog facts (null: they could not be read). */
    private readonly catalog: () => DatabaseCatalog | null,
  ) {}

  writesFunction(name: string): boolean | null {
    const e = this.catalog();
    if (!e) return true;
    const w = e.writesFunction(name);
    return w === null && this.gaveUp ? true : w;
  }

  isUnlogged(relation: string): boolean {
    return this.catalog()?.isUnlogged(relation) ?? false;
  }

  isSequence(relation: string): boolean {
    return this.catalog()?.isSequence(relation) ?? false;
  }

  /**
   * Asks the primary about the names (or joins a look-up under way) with `query`, which runs on
   * a connection of its own: a look-up that hangs must not hold up what the session sends next.
   * `wake` lets the held message go.
   */
  start(names: readonly string[], query: (sql: string) => Promise<string | null>, wake: () => void): void {
    const e = this.catalog();
    if (!e) return wake();
    e.lookUp(names, (sql, asked) => void query(sql).then((v) => e.learned(asked, v)), wake);
    this.timer ??= this.clock.setTimeout(() => {
      this.timer = undefined;
      this.gaveUp = true;
      wake();
    }, LOOKUP_LIMIT_MS);
  }

  /** The held message was taken: the next one starts afresh. */
  taken(): void {
    if (this.timer === undefined && !this.gaveUp) return;
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.gaveUp = false;
  }

  /** DDL changed functions (names, or '*': anything may have changed) and the primary said so. */
  changed(names: readonly string[] | '*', inTransaction: boolean): void {
    this.catalog()?.forget(names);
    if (!inTransaction) return;
    this.changedInTx = names === '*' || this.changedInTx === '*' ? '*' : [...(this.changedInTx ?? []), ...names];
  }

  /** The transaction ended: what it changed is forgotten again (a look-up meanwhile saw the old). */
  transactionEnded(): void {
    if (this.changedInTx === null) return;
    this.catalog()?.forget(this.changedInTx);
    this.changedInTx = null;
  }
}
