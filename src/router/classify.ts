import { classifyAlter, classifyCreate, functionDdl, functionsChangedBy } from './ddl';
import { lex, Lexed, Token, word } from './lexer';
import { names } from './names';
import { parserConsulted, parserMisses, settleWithParser } from './parse-tree';
import { resetsOf, SettingsReset, Statement, statement } from './statement';
import { callsSetConfig, withSettingCalls } from './setting-calls';
import { settingChange } from './setting-change';
import { shapeOf } from './text-shape';

/**
 * Classifies a query string for routing (pgpool's send_to_where(), with the differences the
 * docs/routing.md lists). The lexer-level rules below handle the shapes clients send all day; where they
 * cannot be sure (a WITH whose CTEs might modify data), PostgreSQL's own parser (libpg-query)
 * settles it. Text that cannot be lexed or parsed goes to the primary, as in pgpool.
 */
export function classify(sql: string): Statement {
  // The text itself first: a Parse's text with parameters comes again word for word.
  const same = seen.get(sql);
  if (same) return same;
  const shape = shapeOf(sql);
  const known = shape !== null && shape !== sql ? seen.get(shape) : undefined;
  if (known) return known;
  const lexed = lex(sql);
  const misses = parserMisses();
  const consulted = parserConsulted();
  const c = classifyText(sql, lexed);
  const s = LEADING_COMMENT_START.test(sql) ? { ...c, leadingComment: true } : c;
  if (sql.length <= SEEN_TEXT && parserMisses() === misses) {
    if (!lexed.constants) remember(sql, s);
    else if (shape !== null && parserConsulted() === consulted && sameForEveryNumber(s)) remember(shape, s);
  }
  return s;
}

const LEADING_COMMENT_START = /^\s*(--|\/\*)/;

/**
 * Classifications of texts that come again word for word all day (BEGIN, COMMIT, a Parse's
 * `... WHERE id = $1`), or again but for their numbers (text-shape.ts): a prepared statement's
 * text is classified on every Parse of the unnamed statement, pgbench's `... WHERE aid = 12` on
 * every Query. A text's classification depends on nothing else (the session's state is weighed
 * later, in route.ts), so one table serves every session. Texts with other constants (strings)
 * seldom repeat and are not kept; the oldest entry goes when the table is full. A Statement is
 * read-only, so sharing one is safe. At most 2048 texts of up to 4 KB each: a few MB at worst.
 * It is module-level state (house rule 11 keeps that in server.ts) on purpose: it memoizes a
 * pure function, so no caller can tell it is there except by the time it saves.
 */
const seen = new Map<string, Statement>();
const SEEN_ENTRIES = 2048;
const SEEN_TEXT = 4096;

function remember(key: string, s: Statement): void {
  if (seen.size >= SEEN_ENTRIES) seen.delete(seen.keys().next().value as string);
  seen.set(key, s);
}

/**
 * A classification that holds for every text of its shape: a read or a write that carries no
 * text of the statement (a multi-statement query's SETs to replay would carry its numbers).
 */
function sameForEveryNumber(s: Statement): boolean {
  return s.kind === 'read' || (s.kind === 'write' && s.replay === undefined);
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
    pinsConnection: parts.find((p) => p.pinsConnection)?.pinsConnection,
    replay: replay.length > 0 ? replay : undefined,
    createsTemp: parts.map((p) => (p.kind === 'write' ? p.createsTemp : undefined)).find((n) => n !== undefined),
    tempParents: parts.flatMap((p) => (p.kind === 'write' ? (p.tempParents ?? []) : [])),
    functionsChanged: functionsChangedBy(parts),
    resets: resetsOf(parts),
  });
}

/** The setting named from token i on (a dotted name is one setting), in lower case. */
function settingName(t: Token[], i: number): string | undefined {
  const first = t[i];
  if (!first || (first.kind !== 'word' && first.kind !== 'ident')) return undefined;
  let name = first.text;
  while (t[i + 1]?.kind === 'punct' && t[i + 1]!.text === '.' && t[i + 2] && (t[i + 2]!.kind === 'word' || t[i + 2]!.kind === 'ident')) {
    name += `.${t[i + 2]!.text}`;
    i += 2;
  }
  return name.toLowerCase();
}

/**
 * SET [SESSION | LOCAL] name {TO | =} DEFAULT, SET TIME ZONE {DEFAULT | LOCAL}, SET NAMES
 * DEFAULT: the setting it resets.
 */
function setToDefault(t: Token[], local: boolean): SettingsReset | undefined {
  const at = word(t[1], 'session') || word(t[1], 'local') ? 2 : 1;
  const last = t[t.length - 1];
  if (word(t[at], 'time') && word(t[at + 1], 'zone')) return word(last, 'default') || word(last, 'local') ? { names: ['timezone'], local } : undefined;
  if (word(t[at], 'names')) return word(last, 'default') || t.length === at + 1 ? { names: ['client_encoding'], local } : undefined;
  const name = settingName(t, at);
  const op = t[t.length - 2];
  if (!name || !word(last, 'default') || !(word(op, 'to') || (op?.kind === 'punct' && op.text === '='))) return undefined;
  return { names: [name], local };
}

function classifyTokens(t: Token[], sql: string): Statement {
  const c = classifyStatement(t, sql);
  // EXPLAIN runs its statement only with ANALYZE, which classifies that statement on its own.
  return !word(t[0], 'explain') && callsSetConfig(t) ? withSettingCalls(t, sql, c) : c;
}

function classifyStatement(t: Token[], sql: string): Statement {
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
      if (t.some((x) => word(x, 'to'))) return statement('txLocal', 'rollback to savepoint', { savepoint: { op: 'rollbackTo', name: t[t.length - 1]!.text } });
      return statement('txEnd', 'rollback', { commit: false });
    case 'savepoint':
      return statement('txLocal', 'savepoint', { savepoint: { op: 'define', name: t[t.length - 1]!.text } });
    case 'release':
      return statement('txLocal', 'release savepoint', { savepoint: { op: 'release', name: t[t.length - 1]!.text } });
    case 'set':
      return classifySet(t);
    case 'reset':
      // Keyed like SET, so the log keeps only the last word on each setting.
      return statement('session', 'reset', {
        replayKey: word(t[1], 'all') ? 'reset all' : t[1] && `set ${settingName(t, 1) ?? t[1].text}`,
        resets: word(t[1], 'all') ? RESETS_ALL : resetOne(settingName(t, 1)),
      });
    case 'discard': {
      const discards = discardWhat(t[1]);
      return statement('session', 'discard', { discards, resets: discards === 'all' ? RESETS_ALL : undefined });
    }
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
    case 'listen':
      return statement('write', 'listen', { pinsConnection: 'LISTEN' });
    case 'unlisten':
      return statement('write', 'unlisten', t[1]?.text === '*' ? { releasesPin: 'LISTEN', unlistens: '*' } : { unlistens: t[1]?.text });
    case 'load':
      // A loaded library stays loaded (nothing unloads it) and may take over settings of its
      // prefix: every connection the session uses loads it too, in order with its SETs.
      return statement('session', 'load');
    case 'declare':
      // A cursor WITH HOLD outlives its transaction, on its connection.
      return t.some((x, i) => x.depth === 0 && word(x, 'with') && word(t[i + 1], 'hold'))
        ? statement('write', 'declare', { pinsConnection: 'WITH HOLD cursor' })
        : statement('write', 'declare');
    default:
      return statement('write', first.text);
  }
}

const RESETS_ALL: SettingsReset = { names: ['*'], local: false };

function resetOne(name: string | undefined): SettingsReset | undefined {
  if (name === undefined) return undefined;
  // RESET TIME ZONE, RESET SESSION AUTHORIZATION, RESET TRANSACTION ISOLATION LEVEL: one setting each.
  return { names: [name === 'time' ? 'timezone' : name], local: false };
}

function discardWhat(t: Token | undefined): 'all' | 'temp' | 'plans' | undefined {
  if (word(t, 'all')) return 'all';
  if (word(t, 'temp') || word(t, 'temporary')) return 'temp';
  if (word(t, 'plans')) return 'plans';
  return undefined;
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
  if (analyze) {
    if (c.kind === 'read') return { ...c, reason: 'explain analyze of a read' };
    // What set_config() changes, it changes when EXPLAIN ANALYZE runs it too.
    if (c.kind === 'session' || c.kind === 'txLocal' || c.pinsConnection || c.pinTransaction) return c;
    return statement('write', 'explain analyze executes');
  }
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
  if (word(t[1], 'local') || word(t[1], 'transaction')) return statement('txLocal', 'set for the transaction', { pinTransaction: true, resets: setToDefault(t, true) });
  if (word(t[1], 'constraints')) return statement('txLocal', 'set constraints', { pinTransaction: true });
  const at = word(t[1], 'session') ? 2 : 1;
  // The whole name keys the log (a later SET of myapp.b leaves myapp.a's in it); the value as its words.
  const value = t
    .slice(at + 1)
    .map((x) => x.text)
    .join(' ');
  return settingChange(settingName(t, at) ?? '', value, 'set', setToDefault(t, false));
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
