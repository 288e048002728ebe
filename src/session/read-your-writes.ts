import type { CommitPositions } from '../cluster/commit-positions';
import { lsnToNumber } from '../cluster/replication';
import type { NodeLink } from './link';

/** Where replay positions are shared between sessions (cluster/replication.ts). */
export interface ReplayPositions {
  noteReplay(node: number, lsn: number): void;
  readonly commits: CommitPositions;
}

/**
 * read_your_writes for one session. After a transaction of this session that wrote commits, the
 * primary's WAL position is read once. A read headed to a standby goes there only when the
 * standby is known to have replayed far enough: with scope cluster, to the latest position any
 * session committed (and while one is still being read, every read goes to the primary: see
 * CommitPositions); with scope session, to this session's own, or the cluster's when it began.
 * When that is not known, this session asks the standby first (the read waits for the answer);
 * behind means the primary.
 */
export class ReadYourWrites {
  /** The position after this session's last write, or the cluster's when it began (scope session). */
  private ownLsn: number;
  /** A write went to the primary since the last position was read. */
  private owed = false;
  /** The standby whose replay position must be asked before this read. */
  checkNode: number | null = null;
  /** The standby just asked (for the read being decided again): no second check. */
  private checked: number | null = null;

  constructor(private readonly positions: ReplayPositions) {
    this.ownLsn = positions.commits.committedLsn;
  }

  wrote(): void {
    this.owed = true;
  }

  /**
   * For a read headed to a standby: true when it must go to the primary instead. `cluster`: the
   * read must see every session's commits; else this session's own (and those before it began).
   */
  behind(node: number, replayLsn: number, cluster: boolean): boolean {
    const commits = this.positions.commits;
    if (cluster && commits.pending()) return true;
    const asked = this.checked === node;
    this.checked = null;
    if ((cluster ? commits.committedLsn : this.ownLsn) <= replayLsn) return false;
    if (asked) {
      commits.foundBehind(node);
      return true;
    }
    if (commits.recentlyBehind(node)) return true;
    this.checkNode = node;
    return false;
  }

  /** The primary is idle outside a transaction: read its position if a write is owed. */
  committed(primary: NodeLink): void {
    if (!this.owed) return;
    this.owed = false;
    const commits = this.positions.commits;
    const ticket = commits.committing();
    primary.runCaptured('SELECT pg_catalog.pg_current_wal_insert_lsn()', (v) => {
      const lsn = v ? lsnToNumber(v) : null;
      if (lsn !== null && lsn > this.ownLsn) this.ownLsn = lsn;
      commits.committed(ticket, lsn);
    });
  }

  /** Asks the standby how far it replayed; `then` lets the read be decided again. */
  check(link: NodeLink, then: () => void): void {
    this.checkNode = null;
    link.runCaptured('SELECT pg_catalog.pg_last_wal_replay_lsn()', (v) => {
      if (v) this.positions.noteReplay(link.nodeId, lsnToNumber(v));
      this.checked = link.nodeId;
      then();
    });
  }
}
