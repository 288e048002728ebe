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
 * replaying is "every entry after mine, in order". Entries only ever get removed when they can
 * no longer matter: superseded by a later SET of the same setting (outside a transaction), wiped
 * by DISCARD ALL, or undone by a transaction that rolled back.
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

  append(sql: string, key: string | undefined, inTransaction: boolean): number {
    if (key !== undefined && !inTransaction) this.entries = this.entries.filter((e) => e.key !== key);
    this.entries.push({ seq: ++this.seq, sql, key });
    return this.seq;
  }

  /** DISCARD ALL / RESET ALL: everything before is moot; the statement itself is replayed. */
  restart(sql: string): void {
    this.entries = [];
    this.append(sql, undefined, false);
  }

  remove(seq: number): void {
    this.entries = this.entries.filter((e) => e.seq !== seq);
  }

  /** A rolled-back transaction: its entries never happened on the primary. */
  truncateAfter(seq: number): void {
    this.entries = this.entries.filter((e) => e.seq <= seq);
  }

  /** What a node that applied up to `applied` still needs. */
  since(applied: number): LogEntry[] {
    if (applied >= this.seq) return [];
    return this.entries.filter((e) => e.seq > applied);
  }
}
