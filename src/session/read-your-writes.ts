import { lsnToNumber } from '../cluster/replication';
import type { NodeLink } from './link';

/**
 * read_your_writes for one session: after a transaction that wrote commits, the primary's WAL
 * position is read once; a standby then serves this session's reads only when it is known to
 * have replayed that far (asked once per read when not known; behind means the primary).
 */
export class ReadYourWrites {
  /** The primary's WAL position after the session's last write, in bytes. */
  private writeLsn = 0;
  /** A write went to the primary since writeLsn was last read. */
  private owed = false;
  /** The standby whose replay position must be asked before this read. */
  checkNode: number | null = null;
  /** The standby just asked (for the read being decided again): no second check. */
  private checked: number | null = null;

  constructor(private readonly noteReplay: (node: number, lsn: number) => void) {}

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
      if (v) this.writeLsn = Math.max(this.writeLsn, lsnToNumber(v));
    });
  }

  /** Asks the standby how far it replayed; `then` lets the read be decided again. */
  check(link: NodeLink, then: () => void): void {
    this.checkNode = null;
    link.runCaptured('SELECT pg_catalog.pg_last_wal_replay_lsn()', (v) => {
      if (v) this.noteReplay(link.nodeId, lsnToNumber(v));
      this.checked = link.nodeId;
      then();
    });
  }
}
