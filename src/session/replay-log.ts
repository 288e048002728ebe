const PREPARE_KEY = 'prepare ';

/** One statement of session state, numbered in the order the primary ran it. */
export interface LogEntry {
  readonly seq: number;
  readonly sql: string;
  /** A later entry with the same key makes this one unnecessary (SET of the same setting). */
  readonly key?: string;
}

/**
 * The session state (SET, PREPARE, DISCARD...) that the primary has and the other nodes must get
 * before they serve the session. Each node remembers the last sequence number it applied, so
 * replaying is "every entry after mine, in order". Entries get removed when they can no longer
 * matter: superseded by a later SET or RESET of the same setting (outside a transaction), a
 * PREPARE by its DEALLOCATE, everything by DISCARD ALL, settings of a rolled-back transaction.
 */
export class ReplayLog {
  private entries: LogEntry[] = [];
  private seq = 0;

  get lastSeq(): number {
    return this.seq;
  }

  get size(): number {
    return this.entries.length;
  }

  append(sql: string, key: string | undefined): number {
    this.entries.push({ seq: ++this.seq, sql, key });
    return this.seq;
  }

  /**
   * The primary answered the statement of entry `seq`: a failure never happened; a success
   * outside a transaction makes earlier entries of the same setting unnecessary.
   */
  settle(seq: number, ok: boolean, inTransaction: boolean): void {
    const e = this.entries.find((x) => x.seq === seq);
    if (!e) return;
    if (!ok) this.remove(seq);
    else if (e.key !== undefined && !inTransaction && !e.key.startsWith(PREPARE_KEY)) {
      this.entries = this.entries.filter((x) => x.key !== e.key || x.seq >= seq);
    }
  }

  /** DISCARD ALL / RESET ALL: everything before is moot; the statement itself is replayed. */
  restart(sql: string): void {
    this.entries = [];
    this.append(sql, undefined);
  }

  /** Takes out the entry with this key, if any (DEALLOCATE of a logged PREPARE). */
  removeKey(key: string): LogEntry | undefined {
    const e = this.entries.find((x) => x.key === key);
    if (e) this.remove(e.seq);
    return e;
  }

  remove(seq: number): void {
    this.entries = this.entries.filter((e) => e.seq !== seq);
  }

  /**
   * A rolled-back transaction: its settings never happened on the primary. Prepared statements
   * are not transactional in PostgreSQL, so their entries stay.
   */
  truncateAfter(seq: number): void {
    this.entries = this.entries.filter((e) => e.seq <= seq || e.key?.startsWith(PREPARE_KEY) === true);
  }

  /** What a node that applied up to `applied` still needs. */
  since(applied: number): LogEntry[] {
    if (applied >= this.seq) return [];
    return this.entries.filter((e) => e.seq > applied);
  }
}
