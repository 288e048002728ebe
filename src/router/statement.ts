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
  /** Session state (SET, RESET, DISCARD, PREPARE, DEALLOCATE, LOAD): primary now, replayed elsewhere. */
  | 'session'
  /** BEGIN / START TRANSACTION. */
  | 'txBegin'
  /** COMMIT / END / ROLLBACK / ABORT. */
  | 'txEnd'
  /** Statements that only make sense where the transaction's writes are: SAVEPOINT, SET LOCAL... */
  | 'txLocal'
  /** EXECUTE name: goes where its PREPARE's statement may go. */
  | 'execute';

/**
 * What a statement leaves on its server connection that cannot be carried to another: in
 * transaction mode the session keeps that connection from then on (docs/pooling.md).
 */
export type ConnectionPin = 'LISTEN' | 'WITH HOLD cursor' | 'SET ROLE' | 'SET SESSION AUTHORIZATION' | 'advisory lock' | 'set_config()';

/** Every reason a session keeps its connection: what a statement says, and what the session made (docs/pooling.md). */
export type PinReason = ConnectionPin | 'temporary table';

/** What every statement carries, whatever its kind. */
interface StatementBase {
  /** Why, in a few words (logs and tests); nothing decides on it. */
  readonly reason: string;
  /** Functions called, as written (schema-qualified when written so). */
  readonly functions: readonly string[];
  /** Names that may be relations (over-approximated: column names are included). */
  readonly relations: readonly string[];
  /** References a system catalog (pg_catalog, information_schema, a pg_* relation). */
  readonly catalog: boolean;
  /** The text began with a comment (pgpool keeps such queries on the primary by default). */
  readonly leadingComment?: boolean;
  /** The rest of the current transaction must stay on the primary. */
  readonly pinTransaction?: boolean;
  /** Every later read of the session must go to the primary (e.g. default isolation serializable). */
  readonly pinSession?: boolean;
  /** What it leaves on its connection that no other connection can be given. */
  readonly pinsConnection?: ConnectionPin;
  /** What it takes off its connection for certain (UNLISTEN *: every LISTEN). */
  readonly releasesPin?: ConnectionPin;
  /** UNLISTEN: the channel, or '*' (transaction mode's shared listening stops for it too). */
  readonly unlistens?: string;
  /**
   * RESET name, SET name TO DEFAULT, RESET ALL, DISCARD ALL: the settings it returns to their
   * values at connection start (lower case; '*' for all). Transaction mode puts the client's own
   * startup values back after it: its server connection did not start with them.
   */
  readonly resets?: SettingsReset;
}

/** Settings a statement resets, and whether only for the transaction (SET LOCAL name TO DEFAULT). */
export interface SettingsReset {
  readonly names: readonly string[];
  readonly local: boolean;
}

/** What several statements reset, together (session-level if any of them is). */
export function resetsOf(parts: readonly { readonly resets?: SettingsReset }[]): SettingsReset | undefined {
  // Nothing is made unless two of them reset something: this runs for every extended batch.
  let one: SettingsReset | undefined;
  let several = false;
  for (const p of parts) {
    if (!p.resets) continue;
    several = one !== undefined;
    one ??= p.resets;
    if (several) break;
  }
  if (!several) return one;
  const all = parts.flatMap((p) => (p.resets ? [p.resets] : []));
  return { names: all.flatMap((r) => r.names), local: all.every((r) => r.local) };
}

export interface ReadStatement extends StatementBase {
  readonly kind: 'read';
  /**
   * Reads a view of the session's own objects, which only the server connection holding them
   * shows: its prepared statements (pg_prepared_statements) or its cursors (pg_cursors).
   */
  readonly sessionView?: 'statements' | 'cursors';
}

export interface WriteStatement extends StatementBase {
  readonly kind: 'write';
  /** Tables a write targets (dml_adaptive, temp and unlogged tracking). */
  readonly writeTables?: readonly string[];
  /** CREATE TEMP TABLE / SELECT INTO TEMP: the new temporary table. */
  readonly createsTemp?: string;
  /**
   * CREATE TEMP TABLE ... INHERITS: the (permanent) parents, whose reads now include the
   * temporary child's rows, which only the session's own connection has.
   */
  readonly tempParents?: readonly string[];
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
  /**
   * CREATE/ALTER/DROP FUNCTION, PROCEDURE, ROUTINE or AGGREGATE: the names whose volatility may
   * have changed; '*' when anything may have (CREATE/ALTER/DROP EXTENSION, DO).
   */
  readonly functionsChanged?: readonly string[] | '*';
  /** CREATE [OR REPLACE] FUNCTION or PROCEDURE: the names it defines. */
  readonly definesFunctions?: readonly string[];
  /** A multi-statement query: its session statements, to replay on other nodes once it completed. */
  readonly replay?: readonly string[];
}

export interface SessionStatement extends StatementBase {
  readonly kind: 'session';
  /** SQL to replay on other nodes once this completed on the primary (session state). */
  readonly replay?: readonly string[];
  /** SET of one setting: a later SET of the same key makes this one unnecessary to replay. */
  readonly replayKey?: string;
  /** PREPARE / DEALLOCATE: the statement name ('' for DEALLOCATE ALL). */
  readonly name?: string;
  /** PREPARE: the prepared statement's own classification. */
  readonly inner?: Statement;
  /** DISCARD ALL / DISCARD TEMP / DEALLOCATE ALL: what the session forgets. */
  readonly discards?: 'all' | 'temp' | 'plans';
}

export interface BeginStatement extends StatementBase {
  readonly kind: 'txBegin';
  /** The BEGIN to run on a standby when a read of this transaction goes there. */
  readonly standbyBegin?: string;
}

export interface EndStatement extends StatementBase {
  readonly kind: 'txEnd';
  /** COMMIT/END rather than ROLLBACK/ABORT. */
  readonly commit?: boolean;
}

export interface TxLocalStatement extends StatementBase {
  readonly kind: 'txLocal';
  /** SAVEPOINT, RELEASE, ROLLBACK TO: what it does to which savepoint. */
  readonly savepoint?: { readonly op: 'define' | 'release' | 'rollbackTo'; readonly name: string };
}

export interface ExecuteStatement extends StatementBase {
  readonly kind: 'execute';
  /** The prepared statement's name. */
  readonly name: string;
}

/** A statement as routing sees it: a union by kind, each kind with what only it carries. */
export type Statement = ReadStatement | WriteStatement | SessionStatement | BeginStatement | EndStatement | TxLocalStatement | ExecuteStatement;

/** What a statement of kind K carries beyond its kind and reason. */
export type StatementFields<K extends StatementKind> = Omit<Extract<Statement, { kind: K }>, 'kind' | 'reason'>;

/** The session-local view a statement reads, if it is a read of one. */
export function sessionViewOf(s: Statement): ReadStatement['sessionView'] {
  return s.kind === 'read' ? s.sessionView : undefined;
}

const NONE: readonly string[] = [];

export function statement<K extends StatementKind>(kind: K, reason: string, extra: Partial<StatementFields<K>> = {}): Extract<Statement, { kind: K }> {
  return { kind, reason, functions: NONE, relations: NONE, catalog: false, ...extra } as Extract<Statement, { kind: K }>;
}
