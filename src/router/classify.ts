import { isCall } from './calls';
import { lex, Lexed, Token } from './lexer';
import { parserLoaded, settleWithParser } from './parse-tree';
import { Statement, statement } from './statement';

/**
 * Classifies a query string for routing (pgpool's send_to_where(), with the differences the
 * README lists). The lexer-level rules below handle the shapes clients send all day; where they
 * cannot be sure (a WITH whose CTEs might modify data), PostgreSQL's own parser (libpg-query)
 * settles it. Text that cannot be lexed or parsed goes to the primary, as in pgpool.
 */
export function classify(sql: string): Statement {
  const known = seen.get(sql);
  if (known) return known;
  const lexed = lex(sql);
  const c = classifyText(sql, lexed);
  const s = LEADING_COMMENT_START.test(sql) ? { ...c, leadingComment: true } : c;
  if (!lexed.constants && sql.length <= SEEN_TEXT && parserLoaded()) remember(sql, s);
  return s;
}

const LEADING_COMMENT_START = /^\s*(--|\/\*)/;

/**
 * Classifications of texts without constants (BEGIN, COMMIT, a Parse's `... WHERE id = $1`), which
 * come again word for word all day: a prepared statement's text is classified on every Parse of
 * the unnamed statement. A text's classification depends on nothing else (the session's state is
 * weighed later, in route.ts), so one table serves every session. Texts with constants seldom
 * repeat and are not kept; the oldest entry goes when the table is full. A Statement is read-only,
 * so sharing one is safe. At most 2048 texts of up to 4 KB each: a few MB at worst. It is
 * module-level state (house rule 11 keeps that in server.ts) on purpose: it memoizes a pure
 * function, so no caller can tell it is there except by the time it saves.
 */
const seen = new Map<string, Statement>();
const SEEN_ENTRIES = 2048;
const SEEN_TEXT = 4096;

function remember(sql: string, s: Statement): void {
  if (seen.size >= SEEN_ENTRIES) seen.delete(seen.keys().next().value as string);
  seen.set(sql, s);
}

function classifyText(sql: string, lexed: Lexed): Statement {
  if (lexed.broken) return statement('write', 'unterminated string or comment');
  const stmts = lexed.statements;
  if (stmts.length === 0) return statement('read', 'empty query');
  if (stmts.length === 1) return classifyTokens(stmts[0]!, sql);
  // Several statements in one Query run in one implicit transaction on one node: the primary.
  const parts = stmts.map((t) => classifyTokens(t, sql));
  const replay: string[] = [];
  parts.forEach((p, i) => {
    if (p.kind === 'session') replay.push(sql.slice(lexed.spans[i]![0], lexed.spans[i]![1]).trim());
  });
  return statement('write', 'multi-statement query', {
    pinTransaction: parts.some((p) => p.kind === 'txBegin'),
    pinSession: parts.some((p) => p.pinSession),
    replay: replay.length > 0 ? replay : undefined,
    createsTemp: parts.find((p) => p.createsTemp)?.createsTemp,
    functionsChanged: functionsChangedBy(parts),
  });
}

/** Words that are never relation names in the statements classified as reads. */
const SQL_WORDS = new Set(
  ('select from where and or not as on using join left right full inner outer cross natural lateral group ' +
    'order by having limit offset fetch first next rows only union except intersect all distinct case when ' +
    'then else end is null true false in exists between like ilike similar asc desc nulls last with recursive ' +
    'values table show explain analyze verbose costs buffers format copy to stdout with window over partition ' +
    'filter within any some array row cast interval date time timestamp zone at escape collate').split(' '),
);

const word = (t: Token | undefined, w: string): boolean => t !== undefined && t.kind === 'word' && t.text === w;

function classifyTokens(t: Token[], sql: string): Statement {
  const first = t[0]!;
  if (first.kind === 'punct' && first.text === '(') return classifySelect(t, sql, 'parenthesized query');
  if (first.kind !== 'word') return statement('write', 'not a statement keyword');
  switch (first.text) {
    case 'select':
    case 'values':
    case 'table':
      return classifySelect(t, sql, first.text);
    case 'with':
      return classifySelect(t, sql, 'with');
    case 'show':
      return statement('read', 'show');
    case 'explain':
      return classifyExplain(t, sql);
    case 'copy':
      return classifyCopy(t, sql);
    case 'begin':
    case 'start':
      return classifyBegin(t);
    case 'commit':
    case 'end':
      if (word(t[1], 'prepared')) return statement('write', 'two-phase commit');
      return statement('txEnd', 'commit', { commit: true });
    case 'rollback':
    case 'abort':
      if (word(t[1], 'prepared')) return statement('write', 'two-phase commit');
      if (t.some((x) => word(x, 'to'))) return statement('txLocal', 'rollback to savepoint', { savepoint: t[t.length - 1]!.text });
      return statement('txEnd', 'rollback', { commit: false });
    case 'savepoint':
      return statement('txLocal', 'savepoint', { savepoint: t[t.length - 1]!.text });
    case 'release':
      return statement('txLocal', 'release savepoint', { savepoint: t[t.length - 1]!.text });
    case 'set':
      return classifySet(t);
    case 'reset':
      // Keyed like SET, so the log keeps only the last word on each setting.
      return statement('session', 'reset', { replayKey: word(t[1], 'all') ? 'reset all' : t[1] && `set ${t[1].text}` });
    case 'discard':
      return statement('session', 'discard', { discards: discardWhat(t[1]) });
    case 'prepare':
      return classifyPrepare(t, sql);
    case 'execute':
      return t[1] && (t[1].kind === 'word' || t[1].kind === 'ident')
        ? statement('execute', 'execute', { name: t[1].text })
        : statement('write', 'execute without a name');
    case 'deallocate': {
      const n = word(t[1], 'prepare') ? t[2] : t[1];
      const all = word(n, 'all');
      return statement('session', 'deallocate', { name: all ? '' : n?.text, discards: all ? 'plans' : undefined });
    }
    case 'lock':
      return classifyLock(t);
    case 'insert':
    case 'update':
    case 'delete':
    case 'merge':
      return statement('write', first.text, { writeTables: dmlTarget(t) });
    case 'alter':
      return classifyAlter(t);
    case 'create':
      return classifyCreate(t);
    case 'drop':
      return functionDdl(t, 1) ?? statement('write', 'drop');
    case 'do':
      return statement('write', 'do', { functionsChanged: '*' });
    default:
      return statement('write', first.text);
  }
}

function discardWhat(t: Token | undefined): 'all' | 'temp' | 'plans' | undefined {
  if (word(t, 'all')) return 'all';
  if (word(t, 'temp') || word(t, 'temporary')) return 'temp';
  if (word(t, 'plans')) return 'plans';
  return undefined;
}

/** regclass input: a name (folded to lower case), or one in double quotes (kept), maybe qualified. */
const REGCLASS_TEXT = /^(?:[a-z_][\w$]*\.)?(?:[a-z_][\w$]*|"([^"]+)")$/i;

/** The views (and the functions under them) that show a session's own objects. */
const SESSION_VIEWS: ReadonlyMap<string, 'statements' | 'cursors'> = new Map([
  ['pg_prepared_statements', 'statements'],
  ['pg_prepared_statement', 'statements'],
  ['pg_cursors', 'cursors'],
  ['pg_cursor', 'cursors'],
]);

/** Function calls and relation-like names of a read. */
function names(t: Token[], from: number): Pick<Statement, 'functions' | 'relations' | 'catalog' | 'sessionView'> {
  const functions: string[] = [];
  const relations: string[] = [];
  let catalog = false;
  let sessionView: 'statements' | 'cursors' | undefined;
  for (let i = from; i < t.length; i++) {
    const tok = t[i]!;
    if (tok.kind === 'literal') {
      // A string that reads as a name may be a relation: 'mytable'::regclass, has_table_privilege('mytable', ...).
      // (Numbers and other constants have no text: most literals stop here.)
      const named = tok.text === '' ? null : REGCLASS_TEXT.exec(tok.text);
      if (named) relations.push(named[1] ? named[1] : tok.text.toLowerCase());
      continue;
    }
    if (tok.kind !== 'word' && tok.kind !== 'ident') continue;
    // A qualified name a.b: keep the whole name, and the schema tells catalogs apart.
    const first = i;
    let name = tok.text;
    let schema = '';
    while (t[i + 1]?.text === '.' && (t[i + 2]?.kind === 'word' || t[i + 2]?.kind === 'ident')) {
      schema = name;
      name = t[i + 2]!.text;
      i += 2;
    }
    const full = schema ? `${schema}.${name}` : name;
    const view = SESSION_VIEWS.get(name);
    // Prepared statements win: they can be brought to the primary, cursors cannot.
    if (view && (!schema || schema === 'pg_catalog') && sessionView !== 'statements') sessionView = view;
    if (t[i + 1]?.kind === 'punct' && t[i + 1]!.text === '(') {
      if (isCall(t, first, i)) functions.push(full);
      continue;
    }
    // Right after FROM or JOIN a keyword that PostgreSQL does not reserve is a name (a table "rows").
    const named = (word(t[i - 1], 'from') || word(t[i - 1], 'join')) && name !== 'lateral' && name !== 'only';
    if (tok.kind === 'word' && !schema && SQL_WORDS.has(name) && !named) continue;
    if (schema === 'pg_catalog' || schema === 'information_schema' || name.startsWith('pg_')) catalog = true;
    relations.push(full);
  }
  return sessionView ? { functions, relations, catalog, sessionView } : { functions, relations, catalog };
}

function classifySelect(t: Token[], sql: string, reason: string): Statement {
  let cteWriteSuspect = false;
  for (let i = 0; i < t.length; i++) {
    const tok = t[i]!;
    if (tok.kind !== 'word') continue;
    if (tok.text === 'into') return statement('write', 'select into', { createsTemp: tempTarget(t, i + 1) });
    if (tok.text === 'for' && isLockingClause(t, i + 1)) return statement('write', 'locking clause');
    if (tok.text === 'insert' || tok.text === 'update' || tok.text === 'delete' || tok.text === 'merge') {
      if (t[i - 1]?.text === '(' && reason === 'with') return statement('write', 'data-modifying WITH');
      cteWriteSuspect = true;
    }
  }
  if (cteWriteSuspect && reason === 'with') return settleWithParser(sql, () => readOf(t, 'with'));
  return readOf(t, reason);
}

function readOf(t: Token[], reason: string): Statement {
  return statement('read', reason, names(t, 0));
}

function isLockingClause(t: Token[], i: number): boolean {
  const a = t[i];
  if (word(a, 'update') || word(a, 'share')) return true;
  return (word(a, 'no') && word(t[i + 1], 'key')) || (word(a, 'key') && word(t[i + 1], 'share'));
}

/** SELECT ... INTO [TEMP|TEMPORARY] [TABLE] name: the name when it is temporary. */
function tempTarget(t: Token[], i: number): string | undefined {
  if (!word(t[i], 'temp') && !word(t[i], 'temporary')) return undefined;
  i++;
  if (word(t[i], 'table')) i++;
  return t[i]?.text;
}

function classifyExplain(t: Token[], sql: string): Statement {
  // EXPLAIN ANALYZE executes the statement; plain EXPLAIN only plans it and reads the catalog.
  let i = 1;
  let analyze = false;
  if (t[1]?.text === '(') {
    for (i = 2; i < t.length && t[i]!.text !== ')'; i++) {
      if (word(t[i], 'analyze') || word(t[i], 'analyse')) analyze = !(word(t[i + 1], 'false') || word(t[i + 1], 'off'));
    }
    i++;
  } else {
    for (; word(t[i], 'analyze') || word(t[i], 'analyse') || word(t[i], 'verbose'); i++) {
      if (t[i]!.text !== 'verbose') analyze = true;
    }
  }
  const inner = t.slice(i);
  if (inner.length === 0) return statement('write', 'explain without a statement');
  const c = classifyTokens(inner, sql);
  if (analyze) return c.kind === 'read' ? { ...c, reason: 'explain analyze of a read' } : statement('write', 'explain analyze executes');
  return statement('read', 'explain', names(inner, 0));
}

function classifyCopy(t: Token[], sql: string): Statement {
  // COPY table|(query) FROM ... writes; TO STDOUT reads; TO a file runs on the server: primary.
  let i = 1;
  if (t[1]?.text === '(') {
    const inner = t.slice(2).filter((x) => x.depth > 0);
    const c = classifyTokens(inner, sql);
    if (c.kind !== 'read') return statement('write', 'copy of a writing query');
    i = 2 + inner.length;
  }
  for (; i < t.length; i++) {
    if (t[i]!.depth > 0) continue;
    if (word(t[i], 'from')) return statement('write', 'copy from');
    if (word(t[i], 'to')) {
      return word(t[i + 1], 'stdout') ? statement('read', 'copy to stdout', names(t, 1)) : statement('write', 'copy to a file or program');
    }
  }
  return statement('write', 'copy');
}

function classifyBegin(t: Token[]): Statement {
  const words = t.map((x) => x.text).join(' ');
  if (words.includes('serializable')) {
    return statement('txBegin', 'begin serializable', { pinTransaction: true });
  }
  const rr = words.includes('repeatable read');
  return statement('txBegin', 'begin', { standbyBegin: rr ? 'BEGIN ISOLATION LEVEL REPEATABLE READ' : 'BEGIN' });
}

function classifySet(t: Token[]): Statement {
  const words = t.map((x) => x.text).join(' ');
  if (word(t[1], 'local') || word(t[1], 'transaction')) return statement('txLocal', 'set for the transaction', { pinTransaction: true });
  if (word(t[1], 'constraints')) return statement('txLocal', 'set constraints', { pinTransaction: true });
  if (/\btransaction_read_only\b/.test(words)) return statement('txLocal', 'set transaction_read_only', { pinTransaction: true });
  if (/\btransaction_isolation\b/.test(words) && !/\bdefault_transaction_isolation\b/.test(words)) {
    return statement('txLocal', 'set transaction_isolation', { pinTransaction: true });
  }
  // A session whose transactions default to serializable cannot read on a standby at all.
  const defaults = t.some((x) => x.text === 'default_transaction_isolation' || x.text === 'characteristics');
  const serializable = defaults && t.some((x) => x.text.toLowerCase() === 'serializable');
  const name = word(t[1], 'session') ? t[2] : t[1];
  // pg_temp in the search path makes the session's temporary schema (which only the primary can
  // create) the target of unqualified names, even for reads.
  if (name?.text === 'search_path' && /\bpg_temp\b/i.test(words)) return statement('session', 'set', { pinSession: true, replayKey: `set ${name.text}` });
  // A SET of DateStyle may change only the output format or only the field order, keeping the
  // other part: it composes with the SETs before it, so none of them may be dropped from the log.
  const composes = name?.text.toLowerCase() === 'datestyle';
  const replayKey = name && !defaults && !composes ? `set ${name.text}` : undefined;
  return statement('session', 'set', serializable ? { pinSession: true, replayKey } : { replayKey });
}

function classifyPrepare(t: Token[], sql: string): Statement {
  if (word(t[1], 'transaction')) return statement('write', 'prepare transaction');
  const name = t[1]?.text;
  const as = t.findIndex((x, i) => i > 1 && x.depth === 0 && word(x, 'as'));
  if (!name || as < 0 || as + 1 >= t.length) return statement('write', 'prepare');
  const inner = classifyTokens(t.slice(as + 1), sql);
  return statement('session', 'prepare', { name, inner, replayKey: `prepare ${name}` });
}

function classifyLock(t: Token[]): Statement {
  // Modes a standby allows (ACCESS SHARE, ROW SHARE) still pin the transaction to the primary:
  // whoever locks wants the following statements to see what the lock protects.
  const words = t.map((x) => x.text).join(' ');
  const weak = / in (access share|row share) mode/.test(words);
  return weak ? statement('txLocal', 'lock in a weak mode', { pinTransaction: true }) : statement('write', 'lock');
}

function dmlTarget(t: Token[]): string[] {
  const i = t.findIndex((x, j) => j > 0 && (word(x, 'into') || word(x, 'from') || (t[0]!.text === 'update' && j === 1)));
  let j = i < 0 ? 1 : word(t[i], 'into') || word(t[i], 'from') ? i + 1 : i;
  if (word(t[j], 'only')) j++;
  const tok = t[j];
  if (!tok || (tok.kind !== 'word' && tok.kind !== 'ident')) return [];
  return t[j + 1]?.text === '.' && t[j + 2] ? [t[j + 2]!.text] : [tok.text];
}

const ROUTINES = new Set(['function', 'procedure', 'routine', 'aggregate']);

/**
 * CREATE [OR REPLACE] / ALTER / DROP of functions (`i`: where the object kind is): the names
 * whose volatility routing may have cached. DROP lists several names; ALTER ... RENAME TO adds
 * the new one. Extensions make and drop functions of their own: anything may have changed.
 */
function functionDdl(t: Token[], i: number): Statement | null {
  const what = t[i]?.text ?? '';
  if (word(t[i], 'extension')) return statement('write', `${t[0]!.text} extension`, { functionsChanged: '*' });
  if (!ROUTINES.has(what) || t[i]!.kind !== 'word') return null;
  const names: string[] = [];
  let j = i + 1;
  if (word(t[j], 'if') && word(t[j + 1], 'exists')) j += 2;
  for (; j < t.length; j++) {
    const x = t[j]!;
    if (x.depth > 0 || (x.kind !== 'word' && x.kind !== 'ident')) continue;
    // The last part of a qualified name; then, for DROP, the next name after a comma.
    while (t[j + 1]?.text === '.' && t[j + 2]) j += 2;
    names.push(t[j]!.text);
    if (!word(t[0], 'drop')) break;
    while (j < t.length && !(t[j]!.depth === 0 && t[j]!.text === ',')) j++;
  }
  const rename = t.findIndex((x, k) => word(x, 'rename') && word(t[k + 1], 'to'));
  if (rename > 0 && t[rename + 2]) names.push(t[rename + 2]!.text);
  const defines = word(t[0], 'create') && (what === 'function' || what === 'procedure');
  return statement('write', `${t[0]!.text} ${what}`, defines ? { functionsChanged: names, definesFunctions: names } : { functionsChanged: names });
}

function functionsChangedBy(parts: readonly Statement[]): readonly string[] | '*' | undefined {
  const all = parts.map((p) => p.functionsChanged).filter((f) => f !== undefined);
  if (all.length === 0) return undefined;
  return all.includes('*') ? '*' : all.flat();
}

function classifyCreate(t: Token[]): Statement {
  let i = 1;
  if (word(t[i], 'or') && word(t[i + 1], 'replace')) i += 2;
  const ddl = functionDdl(t, i);
  if (ddl) return ddl;
  if (word(t[i], 'global') || word(t[i], 'local')) i++;
  let temp = word(t[i], 'temp') || word(t[i], 'temporary');
  const unlogged = word(t[i], 'unlogged');
  if (temp || unlogged) i++;
  if (word(t[i], 'recursive')) i++;
  if (word(t[i], 'index') || (word(t[i], 'unique') && word(t[i + 1], 'index'))) return classifyCreateIndex(t, i);
  // Reads of any temporary relation (table, view, sequence) must stay where it exists.
  if (!(word(t[i], 'table') || (!unlogged && (word(t[i], 'view') || word(t[i], 'sequence'))))) return statement('write', 'create');
  const view = word(t[i], 'view');
  const sequence = word(t[i], 'sequence');
  i++;
  if (word(t[i], 'if') && word(t[i + 1], 'not') && word(t[i + 2], 'exists')) i += 3;
  let name = t[i]?.text;
  if (name === 'pg_temp' && t[i + 1]?.text === '.' && t[i + 2]) {
    temp = true;
    name = t[i + 2]!.text;
  }
  if (!temp && !unlogged) {
    if (view && name) return statement('write', 'create view', { tempIf: { name, from: names(t, i + 1).relations } });
    const sequences = sequence && name ? [name] : name ? columnSequences(t, name) : [];
    return statement('write', 'create', sequences.length > 0 ? { createsSequences: sequences } : {});
  }
  return statement('write', temp ? 'create temp table' : 'create unlogged table', temp ? { createsTemp: name } : { createsUnlogged: name });
}

const SERIAL_TYPES = new Set(['serial', 'serial4', 'bigserial', 'serial8', 'smallserial', 'serial2']);

/**
 * The sequences a CREATE TABLE makes for its serial and identity columns, by PostgreSQL's
 * naming (table_column_seq; a name it had to shorten or make unique is missed).
 */
function columnSequences(t: Token[], table: string): string[] {
  const out: string[] = [];
  let column: string | null = null;
  for (let k = 0; k < t.length; k++) {
    const x = t[k]!;
    // The column list's '(' is at depth 0, what it holds at depth 1.
    const opens = x.depth === 0 && x.text === '(';
    if (x.depth !== 1 && !opens) continue;
    if (opens || x.text === ',') {
      column = t[k + 1]?.text ?? null;
      continue;
    }
    if (column && (SERIAL_TYPES.has(x.text) || (word(x, 'identity') && t.slice(0, k).some((p) => word(p, 'generated'))))) {
      out.push(`${table}_${column}_seq`);
      column = null;
    }
  }
  return out;
}

/** CREATE [UNIQUE] INDEX name ON [ONLY] table: an index on a temporary table is temporary too ('idx'::regclass). */
function classifyCreateIndex(t: Token[], i: number): Statement {
  const on = t.findIndex((x, k) => k > i && x.depth === 0 && word(x, 'on'));
  const name = t[on - 1];
  let table = on > 0 ? on + 1 : -1;
  if (word(t[table], 'only')) table++;
  if (on < 0 || !name || word(name, 'index') || word(name, 'concurrently') || word(name, 'exists') || !t[table]) return statement('write', 'create index');
  return statement('write', 'create index', { tempIf: { name: name.text, from: [t[table]!.text] } });
}

/** ALTER TABLE [IF EXISTS] [ONLY] t RENAME TO name: a temporary t stays temporary under its new name. */
function classifyAlter(t: Token[]): Statement {
  const ddl = functionDdl(t, 1);
  if (ddl) return ddl;
  let i = 2;
  if (!word(t[1], 'table') && !word(t[1], 'view') && !word(t[1], 'sequence')) return statement('write', 'alter');
  if (word(t[i], 'if') && word(t[i + 1], 'exists')) i += 2;
  if (word(t[i], 'only')) i++;
  const from = t[i]?.text;
  if (from && word(t[i + 1], 'rename') && word(t[i + 2], 'to') && t[i + 3]) {
    const to = t[i + 3]!.text;
    return statement('write', 'alter rename', { tempIf: { name: to, from: [from] }, renamed: { from, to } });
  }
  return statement('write', 'alter');
}
