import type { BackendConnection } from '../backend/connection';
import { runQueries } from '../backend/query';
import type { Logger } from '../log/logger';
import type { Clock } from '../util/clock';

/** What routing asks the primary's catalog about one database (router/route.ts: CatalogView). */
export interface DatabaseCatalog {
  /** true: some function of that name is volatile; false: none is; null: not known yet. */
  writesFunction(name: string): boolean | null;
  isUnlogged(relation: string): boolean;
  /** A sequence: a standby shows its state as last WAL-logged (up to 32 values ahead), not as it is. */
  isSequence(relation: string): boolean;
  /** The session saw DDL that adds a relation of a kind routing keeps on the primary. */
  addRelation(kind: 'unlogged' | 'sequence', relation: string): void;
  /**
   * Finds out about names not known yet. Those no session is asking about are asked with the
   * query given to `ask` (whose answer goes to learned()); `wake` runs when any answer comes.
   */
  lookUp(names: readonly string[], ask: (sql: string, names: readonly string[]) => void, wake: () => void): void;
  /** The answer to a look-up: the JSON object of name to volatile, or null when it failed. */
  learned(names: readonly string[], answer: string | null): void;
  /** Functions were made, changed or dropped (names), or anything may have been ('*'). */
  forget(names: readonly string[] | '*'): void;
}

// pgpool looks up pg_proc.provolatile per function and caches it (its relcache). Sluice loads
// the whole answer for a database in one query on the first session's primary connection: a
// function name is "writing" when any overload of it is volatile. Unlogged tables likewise.
// A name made later is looked up on the primary when a statement first calls it.
const FUNCTIONS_SQL = "SELECT proname, bool_or(provolatile = 'v') FROM pg_catalog.pg_proc GROUP BY proname";
const RELATIONS_SQL = "SELECT relname, relpersistence = 'u', relkind = 'S' FROM pg_catalog.pg_class WHERE relpersistence = 'u' OR relkind = 'S'";

/** A name pg_proc did not have (or a look-up that failed) is asked again after this long. */
export const ABSENT_RETRY_MS = 10_000;
/** A look-up with no answer after this long (its session went) may be asked again by another. */
const PENDING_STALE_MS = 2_000;

/** An E'' literal: backslashes and quotes escaped, whatever standard_conforming_strings says. */
const literal = (s: string) => `E'${s.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;

/** One query for several names: a JSON object of each name pg_proc has to whether any overload is volatile. */
export function lookupSql(names: readonly string[]): string {
  return (
    'SELECT pg_catalog.json_object_agg(proname, v) FROM (SELECT proname, pg_catalog.bool_or(provolatile = \'v\') AS v ' +
    `FROM pg_catalog.pg_proc WHERE proname = ANY (ARRAY[${names.map(literal).join(', ')}]::pg_catalog.name[]) GROUP BY proname) AS f`
  );
}

type Looked = { readonly pendingSince: number } | { readonly volatile: boolean | null; readonly at: number };

/** One database's facts (exported for its unit test; made by CatalogCache.load). */
export class CatalogEntry implements DatabaseCatalog {
  /** Names looked up one by one (made after the load, or forgotten since). */
  private readonly looked = new Map<string, Looked>();
  private readonly waiters = new Set<() => void>();

  constructor(
    private readonly volatile: Set<string>,
    private readonly known: Set<string>,
    private readonly unlogged: Set<string>,
    private readonly sequences: Set<string>,
    readonly loadedAt: number,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  writesFunction(name: string): boolean | null {
    if (this.volatile.has(name)) return true;
    if (this.known.has(name)) return false;
    const l = this.looked.get(name);
    if (!l || 'pendingSince' in l) return null;
    // Not in pg_proc: not a function (or not yet); the primary is the safe side until asked again.
    if (l.volatile === null) return this.clock.now() - l.at < ABSENT_RETRY_MS ? true : null;
    return l.volatile;
  }

  isUnlogged(relation: string): boolean {
    return this.unlogged.has(relation);
  }

  isSequence(relation: string): boolean {
    return this.sequences.has(relation);
  }

  addRelation(kind: 'unlogged' | 'sequence', relation: string): void {
    (kind === 'unlogged' ? this.unlogged : this.sequences).add(relation);
  }

  lookUp(names: readonly string[], ask: (sql: string, names: readonly string[]) => void, wake: () => void): void {
    const now = this.clock.now();
    const mine = names.filter((n) => {
      const l = this.looked.get(n);
      return !(l && 'pendingSince' in l && now - l.pendingSince < PENDING_STALE_MS);
    });
    this.waiters.add(wake);
    if (mine.length === 0) return;
    for (const n of mine) this.looked.set(n, { pendingSince: now });
    ask(lookupSql(mine), mine);
  }

  learned(names: readonly string[], answer: string | null): void {
    let found: Record<string, boolean> = {};
    try {
      found = answer ? (JSON.parse(answer) as Record<string, boolean>) : {};
    } catch {
      answer = null;
    }
    const at = this.clock.now();
    for (const n of names) this.looked.set(n, { volatile: typeof found[n] === 'boolean' ? found[n] : null, at });
    this.log.debug({ names, found, failed: answer === null && names.length > 0 }, 'functions looked up');
    const waiters = [...this.waiters];
    this.waiters.clear();
    for (const w of waiters) w();
  }

  forget(names: readonly string[] | '*'): void {
    if (names === '*') {
      this.volatile.clear();
      this.known.clear();
      this.looked.clear();
      return;
    }
    for (const n of names) {
      this.volatile.delete(n);
      this.known.delete(n);
      this.looked.delete(n);
    }
  }
}

/** Every database's catalog facts, filled lazily from the primary, dropped on reload or expiry. */
export class CatalogCache {
  private readonly entries = new Map<string, CatalogEntry>();

  constructor(
    /** relcache_expire in ms; replaced by a reload. */
    public expireMs: number,
    private readonly log: Logger,
    private readonly clock: Clock,
  ) {}

  /** The cached facts, or null when they must be (re)loaded first. */
  get(database: string): DatabaseCatalog | null {
    const e = this.entries.get(database);
    if (!e) return null;
    if (this.expireMs > 0 && this.clock.now() - e.loadedAt > this.expireMs) return null;
    return e;
  }

  /** Loads a database's facts over an idle connection of the primary that nobody else uses. */
  async load(database: string, conn: BackendConnection, timeoutMs: number): Promise<DatabaseCatalog> {
    const [fns, relations] = await runQueries(conn, [FUNCTIONS_SQL, RELATIONS_SQL], timeoutMs);
    if (fns?.error || relations?.error) throw new Error(fns?.error?.message ?? relations?.error?.message);
    const volatile = new Set<string>();
    const known = new Set<string>();
    for (const [name, v] of fns!.rows) {
      known.add(name!);
      if (v === 't') volatile.add(name!);
    }
    const kind = (col: number) => new Set(relations!.rows.filter((r) => r[col] === 't').map((r) => r[0]!));
    const e = new CatalogEntry(volatile, known, kind(1), kind(2), this.clock.now(), this.clock, this.log);
    this.entries.set(database, e);
    this.log.debug({ database, functions: known.size, volatile: volatile.size }, 'catalog cache loaded');
    return e;
  }

  invalidate(database?: string): void {
    if (database === undefined) this.entries.clear();
    else this.entries.delete(database);
  }
}
