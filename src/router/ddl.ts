import { word, type Token } from './lexer';
import { names } from './names';
import { Statement, statement } from './statement';

// What DDL changes that routing remembers: temporary, unlogged and sequence relations (reads of
// them stay on the primary), renames, and the functions whose cached volatility it makes stale.

const ROUTINES = new Set(['function', 'procedure', 'routine', 'aggregate']);

/**
 * CREATE [OR REPLACE] / ALTER / DROP of functions (`i`: where the object kind is): the names
 * whose volatility routing may have cached. DROP lists several names; ALTER ... RENAME TO adds
 * the new one. Extensions make and drop functions of their own: anything may have changed.
 */
export function functionDdl(t: Token[], i: number): Statement | null {
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

export function functionsChangedBy(parts: readonly Statement[]): readonly string[] | '*' | undefined {
  const all = parts.map((p) => (p.kind === 'write' ? p.functionsChanged : undefined)).filter((f) => f !== undefined);
  if (all.length === 0) return undefined;
  return all.includes('*') ? '*' : all.flat();
}

export function classifyCreate(t: Token[]): Statement {
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
  return statement('write', temp ? 'create temp table' : 'create unlogged table', temp ? { createsTemp: name, tempParents: inherited(t, i + 1) } : { createsUnlogged: name });
}

/** CREATE TEMP TABLE ... INHERITS (a, s.b): the parents' names (a read of a parent reads the child's rows too). */
function inherited(t: Token[], from: number): string[] | undefined {
  const k = t.findIndex((x, j) => j >= from && x.depth === 0 && word(x, 'inherits'));
  if (k < 0 || t[k + 1]?.text !== '(') return undefined;
  const out: string[] = [];
  for (let j = k + 2; j < t.length && t[j]!.depth > 0; j++) if (t[j]!.kind === 'word' || t[j]!.kind === 'ident') out.push(t[j]!.text);
  return out;
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
export function classifyAlter(t: Token[]): Statement {
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
