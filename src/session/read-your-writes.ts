import { lsnToNumber } from '../cluster/replication';
import type { NodeLink } from './link';

/** Where replay positions are shared between sessions (cluster/replication.ts). */
export interface ReplayPositions {
  noteReplay(node: number, lsn: number): void;
  noteCommitted(lsn: number): void;
  readonly committedLsn: number;
}

/**
 * read_your_writes for one session: after a transaction that wrote commits, the primary's WAL
 * position is read once; a standby then serves this session's reads only when it is known to
 * have replayed that far (asked once per read when not known; behind means the primary). A
 * session starts owing the writes other sessions committed before it began.
 */
export class ReadYourWrites {
  /** The primary's WAL position after the session's last write (or before it began), in bytes. */
  private writeLsn: number;
  /** A write went to the primary since writeLsn was last read. */
  private owed = false;
  /** The standby whose replay position must be asked before this read. */
  checkNode: number | null = null;
  /** The standby just asked (for the read being decided again): no second check. */
  private checked: number | null = null;

  constructor(private readonly positions: ReplayPositions) {
    this.writeLsn = positions.committedLsn;
  }

  wrote(): void {
    this.owed = true;
  }

  /** For a read headed to a standby: true when it must go to the primary instead. */
  behind(node: number, replayLsn: number): boolean {
    if (this.writeLsn <= replayLsn) return false;
    if (this.checked === node) {
      this.checked = null;
      return true;
    }
    this.checkNode = node;
    return false;
  }

  /** The primary is idle outside a transaction: read its position if a write is owed. */
  committed(primary: NodeLink): void {
    if (!this.owed) return;
    this.owed = false;
    primary.runCaptured('SELECT pg_catalog.pg_current_wal_insert_lsn()', (v) => {
      if (!v) return;
      this.writeLsn = Math.max(this.writeLsn, lsnToNumber(v));
      this.positions.noteCommitted(this.writeLsn);
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
