import type { TxStatus } from '../protocol/codes';
import type { Statement } from '../router/statement';
import { bare, type SessionView } from '../router/route';

/** The text names one of the relations (as a word, in any case: its body is text to the lexer). */
function mentionsAny(sql: string, names: ReadonlySet<string>): boolean {
  const lower = sql.toLowerCase();
  for (const n of names) {
    const re = new RegExp(`(^|[^\\w$])${n.toLowerCase().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}($|[^\\w$])`);
    if (re.test(lower)) return true;
  }
  return false;
}

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
  readonly tempFunctions = new Set<string>();
  /** Replay-log sequence number when the current transaction began (undone on rollback). */
  txStartSeq = 0;

  get inTransaction(): boolean {
    return this.txStatus !== 'idle';
  }

  get failedTransaction(): boolean {
    return this.txStatus === 'failedTx';
  }

  /** A statement (its text: sql) is going to the primary. */
  sentToPrimary(s: Statement, sql: string, wrote: boolean): void {
    if (s.pinTransaction) this.pinnedTransaction = true;
    if (s.pinSession) this.pinnedSession = true;
    if (s.createsTemp) this.tempTables.add(s.createsTemp);
    if (s.tempIf?.from.some((r) => this.tempTables.has(bare(r)))) this.tempTables.add(s.tempIf.name);
    if (s.definesFunctions && this.tempTables.size > 0 && mentionsAny(sql, this.tempTables)) for (const f of s.definesFunctions) this.tempFunctions.add(f);
    if (s.discards === 'all' || s.discards === 'temp') {
      this.tempTables.clear();
      this.tempFunctions.clear();
    }
    if (wrote) {
      this.wroteInSession = true;
      this.wroteInTransaction = true;
      for (const t of s.writeTables ?? []) this.writtenTables.add(t);
    }
  }

  /**
   * The primary's ReadyForQuery. True when a transaction block just ended (the caller closes the
   * standbys' read transactions and settles the replay log). Transaction flags are lowered only
   * when nothing else is outstanding: later statements already sent may have raised them.
   */
  primaryReady(status: TxStatus, quiescent: boolean): boolean {
    const ended = this.txStatus !== 'idle' && status === 'idle';
    if (status === 'idle' && quiescent) {
      if (this.wroteInTransaction && ended) this.wroteInEarlierTransaction = true;
      this.pinnedTransaction = false;
      this.wroteInTransaction = false;
      if (this.writtenTables.size > 0) this.writtenTables = new Set();
    }
    this.txStatus = status;
    return ended;
  }
}
