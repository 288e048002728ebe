/** How long a commit's position may stay unknown before it is given up (its query was lost). */
const UNKNOWN_FOR_AT_MOST_MS = 2_000;
/** After a standby was asked and was behind, reads skip it this long instead of asking again. */
const ASK_AGAIN_AFTER_MS = 10;

/**
 * read_your_writes, cluster-wide: the WAL position every read must find replayed on a standby.
 * After a transaction that wrote commits through Sluice, its session asks the primary for its
 * WAL position; until that answer is in, nobody knows how far a standby must have replayed, so
 * every read goes to the primary. After it, a read may go to a standby that is known to have
 * replayed that far. So a read, on whatever connection, sees every write that had committed
 * before the read arrived: an application's pool of connections reads its own writes, as it
 * would with one server. Standbys are asked their position by the sessions (one read waits for
 * the answer); a standby just found behind is not asked again for a few milliseconds, so under
 * a steady stream of writes reads go to the primary rather than each paying a round trip.
 */
export class CommitPositions {
  /** The primary's WAL position after the latest write committed through Sluice, in bytes. */
  private lsn = 0;
  /** Commits whose position is still being asked: ticket -> when. */
  private readonly unknown = new Map<number, number>();
  private tickets = 0;
  /** When each standby was last asked and found behind. */
  private readonly behindAt = new Map<number, number>();

  constructor(private readonly now: () => number = Date.now) {}

  get committedLsn(): number {
    return this.lsn;
  }

  /** A writing transaction committed; its position is being asked. The ticket settles it. */
  committing(): number {
    const t = ++this.tickets;
    this.unknown.set(t, this.now());
    return t;
  }

  /** The position of a commit (null: the primary did not say; the commit stops waiting anyway). */
  committed(ticket: number, lsn: number | null): void {
    this.unknown.delete(ticket);
    if (lsn !== null && lsn > this.lsn) this.lsn = lsn;
  }

  /** Some commit's position is not known yet: reads must go to the primary. */
  pending(): boolean {
    if (this.unknown.size === 0) return false;
    const now = this.now();
    for (const [t, at] of this.unknown) {
      if (now - at < UNKNOWN_FOR_AT_MOST_MS) return true;
      this.unknown.delete(t);
    }
    return false;
  }

  /** A standby was asked its replay position and was behind. */
  foundBehind(node: number): void {
    this.behindAt.set(node, this.now());
  }

  /** The standby was found behind a moment ago: send the read to the primary without asking. */
  recentlyBehind(node: number): boolean {
    const at = this.behindAt.get(node);
    return at !== undefined && this.now() - at < ASK_AGAIN_AFTER_MS;
  }

  /**
   * A new primary: positions on the old one's timeline mean nothing to the standbys that now
   * follow the new one. From here a read needs what the new primary had when it was found.
   */
  restart(lsn: number): void {
    this.lsn = lsn;
    this.unknown.clear();
    this.behindAt.clear();
  }
}
