import type { TxStatus } from '../protocol/codes';
import type { Statement } from '../router/statement';
import type { SessionView } from '../router/route';

/**
 * What one session has done that routing depends on (router/route.ts reads it as a SessionView).
 * Flags are raised when a statement is sent; transaction-scoped ones are lowered when the primary
 * reports the transaction over. Reads only leave the primary when the primary has answered
 * everything sent to it, so at those moments this state is exact.
 */
export class RouteState implements SessionView {
  txStatus: TxStatus = 'idle';
  pinnedTransaction = false;
  pinnedSession = false;
  wroteInTransaction = false;
  wroteInEarlierTransaction = false;
  wroteInSession = false;
  writtenTables = new Set<string>();
  readonly tempTables = new Set<string>();
  /** Replay-log sequence number when the current transaction began (undone on rollback). */
  txStartSeq = 0;

  get inTransaction(): boolean {
    return this.txStatus !== 'idle';
  }

  get failedTransaction(): boolean {
    return this.txStatus === 'failedTx';
  }

  /** A statement is going to the primary. */
  sentToPrimary(s: Statement, wrote: boolean): void {
    if (s.pinTransaction) this.pinnedTransaction = true;
    if (s.pinSession) this.pinnedSession = true;
    if (s.createsTemp) this.tempTables.add(s.createsTemp);
    if (s.discards === 'all' || s.discards === 'temp') this.tempTables.clear();
    if (wrote) {
      this.wroteInSession = true;
      this.wroteInTransaction = true;
      for (const t of s.writeTables ?? []) this.writtenTables.add(t);
    }
  }

  /**
   * The primary's ReadyForQuery. Returns 'ended' when a transaction block just ended (the caller
   * closes the standbys' read transactions and settles the replay log).
   */
  primaryReady(status: TxStatus, quiescent: boolean): 'ended' | 'began' | null {
    const before = this.txStatus;
    this.txStatus = status;
    if (status !== 'idle') return before === 'idle' ? 'began' : null;
    if (!quiescent) return before !== 'idle' ? 'ended' : null;
    if (this.wroteInTransaction && before !== 'idle') this.wroteInEarlierTransaction = true;
    this.pinnedTransaction = false;
    this.wroteInTransaction = false;
    if (this.writtenTables.size > 0) this.writtenTables = new Set();
    return before !== 'idle' ? 'ended' : null;
  }
}
