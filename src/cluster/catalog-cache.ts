import type { BackendConnection } from '../backend/connection';
import { runQueries } from '../backend/query';
import type { Logger } from '../log/logger';

/** What routing asks the primary's catalog about one database (router/route.ts: CatalogView). */
export interface DatabaseCatalog {
  writesFunction(name: string): boolean;
  isUnlogged(relation: string): boolean;
  /** The session saw DDL that may change the answers (CREATE FUNCTION, CREATE UNLOGGED TABLE). */
  addUnlogged(relation: string): void;
}

// pgpool looks up pg_proc.provolatile per function and caches it (its relcache). Sluice loads
// the whole answer for a database in one query on the first session's primary connection: a
// function name is "writing" when any overload of it is volatile. Unlogged tables likewise.
const FUNCTIONS_SQL = "SELECT proname, bool_or(provolatile = 'v') FROM pg_catalog.pg_proc GROUP BY proname";
const UNLOGGED_SQL = "SELECT relname FROM pg_catalog.pg_class WHERE relpersistence = 'u'";

const RELOAD_GAP_MS = 10_000;

class Entry implements DatabaseCatalog {
  constructor(
    private readonly volatile: Set<string>,
    private readonly known: Set<string>,
    private readonly unlogged: Set<string>,
    readonly loadedAt: number,
    private readonly onUnknown: () => void,
  ) {}

  writesFunction(name: string): boolean {
    if (this.volatile.has(name)) return true;
    if (this.known.has(name)) return false;
    // Unknown here: created after the cache was filled, or not a function at all. The primary
    // is the safe side; the next session reloads the cache.
    this.onUnknown();
    return true;
  }

  isUnlogged(relation: string): boolean {
    return this.unlogged.has(relation);
  }

  addUnlogged(relation: string): void {
    this.unlogged.add(relation);
  }
}

/** Every database's catalog facts, filled lazily from the primary, dropped on reload or expiry. */
export class CatalogCache {
  private readonly entries = new Map<string, Entry>();

  constructor(
    /** relcache_expire in ms; replaced by a reload. */
    public expireMs: number,
    private readonly log: Logger,
  ) {}

  /** The cached facts, or null when they must be (re)loaded first. */
  get(database: string, now = Date.now()): DatabaseCatalog | null {
    const e = this.entries.get(database);
    if (!e) return null;
    if (this.expireMs > 0 && now - e.loadedAt > this.expireMs) return null;
    return e;
  }

  /** Loads a database's facts over an idle connection of the primary that nobody else uses. */
  async load(database: string, conn: BackendConnection, timeoutMs: number): Promise<DatabaseCatalog> {
    const [fns, unlogged] = await runQueries(conn, [FUNCTIONS_SQL, UNLOGGED_SQL], timeoutMs);
    if (fns?.error || unlogged?.error) throw new Error(fns?.error?.message ?? unlogged?.error?.message);
    const volatile = new Set<string>();
    const known = new Set<string>();
    for (const [name, v] of fns!.rows) {
      known.add(name!);
      if (v === 't') volatile.add(name!);
    }
    const loadedAt = Date.now();
    const stale = () => {
      // At most one reload per RELOAD_GAP_MS for names that are simply not functions.
      if (Date.now() - loadedAt > RELOAD_GAP_MS && this.entries.get(database) === e) this.invalidate(database);
    };
    const e: Entry = new Entry(volatile, known, new Set(unlogged!.rows.map((r) => r[0]!)), loadedAt, stale);
    this.entries.set(database, e);
    this.log.debug({ database, functions: known.size, volatile: volatile.size }, 'catalog cache loaded');
    return e;
  }

  invalidate(database?: string): void {
    if (database === undefined) this.entries.clear();
    else this.entries.delete(database);
  }
}
