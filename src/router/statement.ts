/**
 * What routing needs to know about one query string (a simple Query's text or a Parse's).
 * pgpool's classes are PRIMARY / BOTH / EITHER; Sluice splits BOTH into the kinds below because
 * it does not send session state to every node at once: it replays it on a node right before
 * that node first serves the session (see session/replay).
 */
export type StatementKind =
  /** May run on any node (pgpool's EITHER), subject to the checks in route.ts. */
  | 'read'
  /** Primary only. */
  | 'write'
  /** Session state (SET, RESET, DISCARD, PREPARE, DEALLOCATE): primary now, replayed elsewhere. */
  | 'session'
  /** BEGIN / START TRANSACTION. */
  | 'txBegin'
  /** COMMIT / END / ROLLBACK / ABORT. */
  | 'txEnd'
  /** Statements that only make sense where the transaction's writes are: SAVEPOINT, SET LOCAL... */
  | 'txLocal'
  /** EXECUTE name: goes where its PREPARE's statement may go. */
  | 'execute';

export interface Statement {
  readonly kind: StatementKind;
  /** Why, in a few words (logs and tests). */
  readonly reason: string;
  /** Functions called, as written (schema-qualified when written so). */
  readonly functions: readonly string[];
  /** Names that may be relations (over-approximated: column names are included). */
  readonly relations: readonly string[];
  /** References a system catalog (pg_catalog, information_schema, a pg_* relation). */
  readonly catalog: boolean;
  /**
   * Reads a view of the session's own objects, which only the server connection holding them
   * shows: its prepared statements (pg_prepared_statements) or its cursors (pg_cursors).
   */
  readonly sessionView?: 'statements' | 'cursors';
  /** The rest of the current transaction must stay on the primary. */
  readonly pinTransaction?: boolean;
  /** Every later read of the session must go to the primary (e.g. default isolation serializable). */
  readonly pinSession?: boolean;
  /** SAVEPOINT, RELEASE, ROLLBACK TO: what it does to which savepoint. */
  readonly savepoint?: { readonly op: 'define' | 'release' | 'rollbackTo'; readonly name: string };
  /** txEnd: COMMIT/END rather than ROLLBACK/ABORT. */
  readonly commit?: boolean;
  /** txBegin: the BEGIN to run on a standby when a read of this transaction goes there. */
  readonly standbyBegin?: string;
  /** PREPARE / EXECUTE / DEALLOCATE: the statement name ('' for DEALLOCATE ALL). */
  readonly name?: string;
  /** PREPARE: the prepared statement's own classification. */
  readonly inner?: Statement;
  /** DISCARD ALL / DISCARD TEMP / DEALLOCATE ALL: what the session forgets. */
  readonly discards?: 'all' | 'temp' | 'plans';
  /** Tables a write targets (dml_adaptive, temp and unlogged tracking). */
  readonly writeTables?: readonly string[];
  /** CREATE TEMP TABLE / SELECT INTO TEMP: the new temporary table. */
  readonly createsTemp?: string;
  /**
   * A relation that is temporary when one of `from` is: ALTER TABLE t RENAME TO name, and a view
   * over a temporary relation (PostgreSQL makes that view temporary too).
   */
  readonly tempIf?: { readonly name: string; readonly from: readonly string[] };
  /** CREATE SEQUENCE, and CREATE TABLE with serial or identity columns: the new sequences. */
  readonly createsSequences?: readonly string[];
  /** ALTER TABLE/VIEW/SEQUENCE ... RENAME TO: a relation's new name (what was known of the old holds). */
  readonly renamed?: { readonly from: string; readonly to: string };
  /** CREATE UNLOGGED TABLE: the new unlogged table. */
  readonly createsUnlogged?: string;
  /** The text began with a comment (pgpool keeps such queries on the primary by default). */
  readonly leadingComment?: boolean;
  /** SET of one setting: a later SET of the same key makes this one unnecessary to replay. */
  readonly replayKey?: string;
  /**
   * CREATE/ALTER/DROP FUNCTION, PROCEDURE, ROUTINE or AGGREGATE: the names whose volatility may
   * have changed; '*' when anything may have (CREATE/ALTER/DROP EXTENSION, DO).
   */
  readonly functionsChanged?: readonly string[] | '*';
  /** CREATE [OR REPLACE] FUNCTION or PROCEDURE: the names it defines. */
  readonly definesFunctions?: readonly string[];
  /** SQL to replay on other nodes once this completed on the primary (session state). */
  readonly replay?: readonly string[];
}

const NONE: readonly string[] = [];

export function statement(kind: StatementKind, reason: string, extra: Partial<Statement> = {}): Statement {
  return { kind, reason, functions: NONE, relations: NONE, catalog: false, ...extra };
}
