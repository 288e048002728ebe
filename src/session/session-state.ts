import type { Statement } from '../router/statement';
import type { ExtendedState } from './extended';
import type { NodeLink } from './link';
import { ReplayLog } from './replay-log';

/**
 * What of a session's state another node must be given before it serves the session (a standby
 * for reads, or a new primary after a failover): the replay log of SET, PREPARE and friends, and
 * the SQL-level prepared statements (EXECUTE goes where its statement may go).
 */
export class SessionState {
  readonly replay = new ReplayLog();
  private readonly sqlPrepared = new Map<string, Statement>();
  /** The open transaction's savepoints, innermost last, with the replay log's position at each. */
  private savepoints: { name: string; seq: number }[] = [];

  /** `keep`: another node may ever serve the session (else nothing needs logging). */
  constructor(private readonly keep: boolean) {}

  /** The statement an EXECUTE runs, when it was PREPAREd in this session. */
  prepared(name: string): Statement | undefined {
    return this.sqlPrepared.get(name);
  }

  /**
   * The primary answered a statement: its log entries are settled, and True is returned when
   * the rest of the transaction must stay on the primary. Session state set inside a transaction
   * may still be undone (ROLLBACK, or ROLLBACK TO a savepoint before it): standbys get it once
   * committed, and meanwhile no read of the transaction may see it missing or extra there.
   */
  settled(s: Statement, seqs: readonly number[], sentAt: number, ok: boolean, inTransaction: boolean): boolean {
    for (const q of seqs) this.replay.settle(q, ok, inTransaction);
    if (!inTransaction) this.savepoints = [];
    if (ok && s.savepoint !== undefined) this.onSavepoint(s, sentAt);
    return seqs.length > 0 && ok && inTransaction;
  }

  /** `sentAt`: the log's position when the statement was sent (later ones may be logged since). */
  private onSavepoint(s: Statement, sentAt: number): void {
    const name = s.savepoint!;
    let i = this.savepoints.length - 1;
    while (i >= 0 && this.savepoints[i]!.name !== name) i--;
    if (s.reason === 'savepoint') this.savepoints.push({ name, seq: sentAt });
    else if (i < 0) return;
    else if (s.reason === 'release savepoint') this.savepoints.length = i;
    else {
      // ROLLBACK TO: the savepoint stays, what was logged after it is undone.
      this.savepoints.length = i + 1;
      this.replay.truncateAfter(this.savepoints[i]!.seq);
    }
  }

  /** A statement is going to the primary: its log entries (settled at its ReadyForQuery). */
  record(s: Statement, sql: string, links: Map<number, NodeLink>, primary: NodeLink, ext: ExtendedState): number[] {
    if (!this.keep) return [];
    if (s.discards === 'all') {
      this.replay.restart(sql);
      this.sqlPrepared.clear();
      ext.forgetStatements();
      for (const l of links.values()) l.prepared.clear();
      return [];
    }
    if (s.kind === 'session' && s.name !== undefined) {
      if (s.inner) this.sqlPrepared.set(s.name, s.inner);
      else if (s.name === '') this.sqlPrepared.clear();
      else {
        // DEALLOCATE name: its PREPARE leaves the log (the log stays as small as the session's
        // live state), and the standbys that already ran that PREPARE get the DEALLOCATE now.
        const e = this.replay.removeKey(`prepare ${s.name}`);
        if (e) for (const l of links.values()) if (l !== primary && l.appliedSeq >= e.seq) l.runSwallowed(sql);
        return [];
      }
    }
    const texts = s.replay ?? (s.kind === 'session' ? [sql] : []);
    return texts.map((t) => this.replay.append(t, s.replayKey));
  }
}
