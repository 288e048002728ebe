/**
 * A set of live members (the server's sessions) that lets go of a member the moment it is
 * deleted, where a JS Set may not. V8 grows and compacts a Set's hash table by copying it; a
 * long-lived Set's table is in the old generation, so the copy is made there too, and the table
 * left behind still holds the members it had. Until the next full collection that garbage is a
 * root for the young generation: every member the old table held, and all it reaches, is copied
 * and promoted at each scavenge. Under a new connection per transaction (pgbench -C) that kept
 * every closed session alive until a mark-compact (measured: about 10 MB copied per scavenge,
 * the whole of each session). Here the table holds small entries whose member is cleared on
 * delete, so a stale table keeps only empty entries alive.
 */
export class LiveSet<T> implements Iterable<T> {
  private readonly entries = new Set<LiveEntry<T>>();

  /** Adds a member; its entry is what delete() takes. */
  add(member: T): LiveEntry<T> {
    const e: LiveEntry<T> = { member };
    this.entries.add(e);
    return e;
  }

  delete(e: LiveEntry<T>): void {
    e.member = null;
    this.entries.delete(e);
  }

  get size(): number {
    return this.entries.size;
  }

  *[Symbol.iterator](): Iterator<T> {
    for (const e of this.entries) if (e.member !== null) yield e.member;
  }
}

export interface LiveEntry<T> {
  member: T | null;
}

/**
 * A map whose values are let go the moment their key is deleted (see LiveSet for why a JS Map's
 * stale tables must not hold them).
 */
export class LiveMap<K, V> {
  private readonly entries = new Map<K, LiveEntry<V>>();

  get(key: K): V | undefined {
    return this.entries.get(key)?.member ?? undefined;
  }

  has(key: K): boolean {
    return this.entries.has(key);
  }

  set(key: K, value: V): void {
    const e = this.entries.get(key);
    if (e) e.member = value;
    else this.entries.set(key, { member: value });
  }

  delete(key: K): void {
    const e = this.entries.get(key);
    if (!e) return;
    e.member = null;
    this.entries.delete(key);
  }
}
