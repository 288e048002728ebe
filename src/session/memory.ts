// A session's memory: what it did that routing and other nodes must know. The routing flags
// (transaction status, pins, writes, temporary objects), and the session state another node must
// be given before it serves the session: the replay log of SET, PREPARE and friends, the
// savepoints that can undo part of it, and the SQL-level prepared statements.
import type { TxStatus } from '../protocol/codes';
import type { Statement, TxLocalStatement } from '../router/statement';
import { bare, type SessionView } from '../router/route';
import type { ExtendedState } from './extended';
import type { NodeLink } from './links';
import { addTo, emptyMap, emptySet, setIn } from '../util/lazy';

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
  writtenTables = emptySet<string>();
  tempTables = emptySet<string>();

  /** The session made temporary tables (or functions over them) that only its own connection has. */
  get hasTempObjects(): boolean {
    return this.tempTables.size > 0 || this.tempFunctions.size > 0;
  }
  tempFunctions = emptySet<string>();
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
    if (s.kind === 'write') {
      if (s.createsTemp) this.tempTables = addTo(this.tempTables, s.createsTemp);
      for (const parent of s.tempParents ?? []) this.tempTables = addTo(this.tempTables, bare(parent));
      if (s.tempIf?.from.some((r) => this.tempTables.has(bare(r)))) this.tempTables = addTo(this.tempTables, s.tempIf.name);
      if (s.definesFunctions && this.tempTables.size > 0 && mentionsAny(sql, this.tempTables)) for (const f of s.definesFunctions) this.tempFunctions = addTo(this.tempFunctions, f);
    }
    if (s.kind === 'session' && (s.discards === 'all' || s.discards === 'temp')) {
      this.tempTables = emptySet();
      this.tempFunctions = emptySet();
    }
    if (wrote) {
      this.wroteInSession = true;
      this.wroteInTransaction = true;
      if (s.kind === 'write') for (const t of s.writeTables ?? []) this.writtenTables = addTo(this.writtenTables, t);
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
      if (this.writtenTables.size > 0) this.writtenTables = emptySet();
    }
    this.txStatus = status;
    return ended;
  }
}

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
  private trimmed = 0;

  get lastSeq(): number {
    return this.seq;
  }

  /**
   * The position of the last entry taken out without a later one to undo it (a DEALLOCATE of a
   * logged PREPARE), or of the last restart: a connection that applied less than this may still
   * have what was taken out (transaction mode resets it before the session uses it again).
   */
  get trimmedAt(): number {
    return this.trimmed;
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
    this.trimmed = this.append(sql, undefined);
  }

  /** Takes out the entry with this key, if any (DEALLOCATE of a logged PREPARE). */
  removeKey(key: string): LogEntry | undefined {
    const e = this.entries.find((x) => x.key === key);
    if (e) {
      this.remove(e.seq);
      this.trimmed = ++this.seq;
    }
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

/**
 * What of a session's state another node must be given before it serves the session (a standby
 * for reads, or a new primary after a failover): the replay log of SET, PREPARE and friends, and
 * the SQL-level prepared statements (EXECUTE goes where its statement may go).
 */
export class SessionState {
  readonly replay = new ReplayLog();
  private sqlPrepared = emptyMap<string, Statement>();
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
    if (ok && s.kind === 'txLocal' && s.savepoint !== undefined) this.onSavepoint(s.savepoint, sentAt);
    return seqs.length > 0 && ok && inTransaction;
  }

  /** `sentAt`: the log's position when the statement was sent (later ones may be logged since). */
  private onSavepoint({ op, name }: NonNullable<TxLocalStatement['savepoint']>, sentAt: number): void {
    let i = this.savepoints.length - 1;
    while (i >= 0 && this.savepoints[i]!.name !== name) i--;
    if (op === 'define') this.savepoints.push({ name, seq: sentAt });
    else if (i < 0) return;
    else if (op === 'release') this.savepoints.length = i;
    else {
      // ROLLBACK TO: the savepoint stays, what was logged after it is undone.
      this.savepoints.length = i + 1;
      this.replay.truncateAfter(this.savepoints[i]!.seq);
    }
  }

  /** A statement is going to the primary: its log entries (settled at its ReadyForQuery). */
  record(s: Statement, sql: string, links: Map<number, NodeLink>, primary: NodeLink, ext: ExtendedState): number[] {
    if (!this.keep) return [];
    if (s.kind === 'session' && s.discards === 'all') {
      this.replay.restart(sql);
      this.sqlPrepared = emptyMap();
      ext.forgetStatements();
      // A link whose connection is lent out (transaction mode) gets it reset when it is borrowed
      // again: restart() made what it applied obsolete.
      for (const l of links.values()) if (l.attached) l.prepared.clear();
      return [];
    }
    if (s.kind === 'session' && s.name !== undefined) {
      if (s.inner) this.sqlPrepared = setIn(this.sqlPrepared, s.name, s.inner);
      else if (s.name === '') this.sqlPrepared = emptyMap();
      else {
        // DEALLOCATE name: its PREPARE leaves the log (the log stays as small as the session's
        // live state), and the standbys that already ran that PREPARE get the DEALLOCATE now.
        const e = this.replay.removeKey(`prepare ${s.name}`);
        if (e) for (const l of links.values()) if (l !== primary && l.attached && l.appliedSeq >= e.seq) l.runSwallowed(sql);
        return [];
      }
    }
    if (s.kind === 'session') return (s.replay ?? [sql]).map((t) => this.replay.append(t, s.replayKey));
    return s.kind === 'write' && s.replay ? s.replay.map((t) => this.replay.append(t, undefined)) : [];
  }
}
