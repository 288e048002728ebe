import type { ReadStatement, Statement } from './statement';

export type DisableOnWrite = 'off' | 'transaction' | 'trans_transaction' | 'always' | 'dml_adaptive';

/** The routing settings, compiled once per config snapshot (see options.ts). */
export interface RoutingOptions {
  readonly loadBalance: boolean;
  readonly statementLevel: boolean;
  readonly allowSqlComments: boolean;
  readonly disableOnWrite: DisableOnWrite;
  /** write_function_list: a call to a matching function goes to the primary. */
  readonly writeFunctions: RegExp | null;
  /** read_only_function_list: a call to any function not matching goes to the primary. */
  readonly readOnlyFunctions: RegExp | null;
  /** primary_routing_query_pattern_list, matched against the whole text. */
  readonly primaryPatterns: readonly RegExp[];
  /** pgpool sends reads of system catalogs to the primary (its catalog is authoritative). */
  readonly catalogToPrimary: boolean;
  readonly checkTempTables: boolean;
  readonly checkUnloggedTables: boolean;
}

/** What the session has done so far that matters to routing a read. */
export interface SessionView {
  /** The primary's transaction status is not idle. */
  readonly inTransaction: boolean;
  readonly failedTransaction: boolean;
  readonly pinnedTransaction: boolean;
  readonly pinnedSession: boolean;
  readonly wroteInTransaction: boolean;
  /** Some earlier explicit transaction of this session wrote (trans_transaction). */
  readonly wroteInEarlierTransaction: boolean;
  readonly wroteInSession: boolean;
  /** dml_adaptive: tables written in the current transaction. */
  readonly writtenTables: ReadonlySet<string>;
  readonly tempTables: ReadonlySet<string>;
  /** Functions this session defined over its temporary tables (a standby has the function, not the tables). */
  readonly tempFunctions: ReadonlySet<string>;
}

/** Catalog facts about the session's database, cached from the primary (cluster/catalog-cache). */
export interface CatalogView {
  /** True for a volatile function, false for one that is not, null for a name not known yet. */
  writesFunction(name: string): boolean | null;
  isUnlogged(relation: string): boolean;
  isSequence(relation: string): boolean;
}

/** Why a statement goes to the primary: what the code decides on (the reason is words for people). */
export type PrimaryCause =
  | 'not a read'
  | 'load balancing off'
  | 'leading comment'
  | 'session pinned'
  | 'transaction'
  | 'system catalog'
  | 'temporary object'
  | 'unlogged table'
  | 'sequence'
  | 'pattern'
  | 'writing function'
  | 'table written in the transaction';

export type Decision =
  | { readonly to: 'primary'; readonly cause: PrimaryCause; readonly reason: string }
  | { readonly to: 'balance'; readonly reason: string }
  /** The read calls functions not known yet: decide again once they are looked up. */
  | { readonly to: 'lookup'; readonly reason: string; readonly names: readonly string[] };

const primary = (cause: PrimaryCause, reason: string = cause): Decision => ({ to: 'primary', cause, reason });
const BALANCE: Decision = { to: 'balance', reason: 'read' };

/**
 * Where one statement goes, following pgpool's where_to_send_main_replica() for EITHER
 * statements; every other kind is the primary's (session state is replayed elsewhere later).
 */
export function route(s: Statement, sql: string, o: RoutingOptions, v: SessionView, c: CatalogView): Decision {
  if (s.kind !== 'read') return primary('not a read', s.reason);
  if (!o.loadBalance) return primary('load balancing off', 'load_balance_mode is off');
  if (s.leadingComment && !o.allowSqlComments) return primary('leading comment');
  if (v.pinnedSession) return primary('session pinned', 'session pinned to the primary');
  const tx = transactionRule(o, v);
  if (tx) return primary('transaction', tx);
  if (o.catalogToPrimary && s.catalog) return primary('system catalog');
  const named = namedRule(s, o, v, c);
  if (named) return named;
  if (o.primaryPatterns.some((p) => p.test(sql))) return primary('pattern', 'primary_routing_query_pattern_list');
  const fn = writingFunction(s.functions, o, c);
  if (typeof fn === 'string') return primary('writing function', `function ${fn}`);
  if (fn) return { to: 'lookup', reason: 'functions not known yet', names: fn.unknown };
  if (o.disableOnWrite === 'dml_adaptive' && v.inTransaction && s.relations.some((r) => v.writtenTables.has(bare(r)))) {
    return primary('table written in the transaction', 'table written in this transaction');
  }
  return BALANCE;
}

/**
 * What the names a read uses say, in this order: a temporary table of the session, its temporary
 * schema, a function over its temporary tables, an unlogged table, a sequence. One pass over the
 * relations (a read names a few, and this runs for every one).
 */
function namedRule(s: ReadStatement, o: RoutingOptions, v: SessionView, c: CatalogView): Decision | null {
  const checkTemp = o.checkTempTables && v.tempTables.size > 0;
  let temp = false;
  let tempSchema = false;
  let unlogged = false;
  let sequence = false;
  for (const r of s.relations) {
    const b = bare(r);
    if (inTempSchema(r)) tempSchema = true;
    if (checkTemp && v.tempTables.has(b)) temp = true;
    if (o.checkUnloggedTables && c.isUnlogged(b)) unlogged = true;
    if (c.isSequence(b)) sequence = true;
  }
  if (temp) return primary('temporary object', 'temporary table');
  // pg_temp.name is the session's own temporary schema, which only its primary connection has.
  if (tempSchema || s.functions.some(inTempSchema)) return primary('temporary object', 'temporary schema');
  if (o.checkTempTables && v.tempFunctions.size > 0 && s.functions.some((f) => v.tempFunctions.has(bare(f)))) return primary('temporary object', 'function over a temporary table');
  if (unlogged) return primary('unlogged table');
  // A standby shows a sequence as last WAL-logged, up to 32 values ahead of the primary's state.
  if (sequence) return primary('sequence');
  return null;
}

/** A name qualified with the session's temporary schema (pg_temp, or its real name pg_temp_N). */
const inTempSchema = (name: string): boolean => name.startsWith('pg_temp') && /^pg_temp(_\d+)?\./.test(name);

/** The name without its schema: the caches and the session's tables are keyed by it. */
export function bare(name: string): string {
  const dot = name.lastIndexOf('.');
  return dot < 0 ? name : name.slice(dot + 1);
}

function transactionRule(o: RoutingOptions, v: SessionView): string | null {
  if (o.disableOnWrite === 'always' && v.wroteInSession) return 'the session wrote (always)';
  if (!v.inTransaction) return null;
  if (v.failedTransaction) return 'failed transaction';
  if (v.pinnedTransaction) return 'transaction pinned to the primary';
  switch (o.disableOnWrite) {
    case 'off':
    case 'dml_adaptive':
      return null;
    case 'transaction':
    case 'always':
      return v.wroteInTransaction ? 'the transaction wrote' : null;
    case 'trans_transaction':
      return v.wroteInTransaction || v.wroteInEarlierTransaction ? 'a transaction of this session wrote' : null;
  }
}

/**
 * Functions only the primary answers as the client expects, whatever write_function_list and
 * read_only_function_list say: those that describe the session's own server connection (the
 * client knows the primary's backend: its BackendKeyData, its LISTENs, its temp schema), and
 * those a standby refuses.
 */
const SESSION_FUNCTIONS = new Set([
  'pg_backend_pid',
  'pg_listening_channels',
  'pg_notification_queue_usage',
  'pg_my_temp_schema',
  'inet_server_addr',
  'inet_server_port',
  // Stable, so pgpool balances them, yet a standby refuses them ("cannot execute
  // pg_current_xact_id() during recovery"): a transaction id exists only on the primary.
  'pg_current_xact_id',
  'pg_current_xact_id_if_assigned',
  'txid_current',
  'txid_current_if_assigned',
]);

/** The statistics functions (pg_stat_get_*, ...) count what happened on the node that runs them. */
const NODE_STATISTICS = /^pg_stat_/;

/** The first function that keeps the read on the primary; else the names not known yet, if any. */
function writingFunction(functions: readonly string[], o: RoutingOptions, c: CatalogView): string | { unknown: string[] } | null {
  let unknown: string[] | null = null;
  for (const f of functions) {
    if (SESSION_FUNCTIONS.has(bare(f)) || NODE_STATISTICS.test(bare(f))) return f;
    if (o.writeFunctions) {
      if (o.writeFunctions.test(f)) return f;
    } else if (o.readOnlyFunctions) {
      if (!o.readOnlyFunctions.test(f)) return f;
    } else {
      const w = c.writesFunction(bare(f));
      if (w) return f;
      if (w === null) (unknown ??= []).push(bare(f));
    }
  }
  return unknown && { unknown };
}
