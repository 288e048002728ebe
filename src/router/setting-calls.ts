import { Token, word } from './lexer';
import { Statement, statement } from './statement';
import { settingChange } from './setting-change';
import { parseBool } from '../util/parse-bool';

// set_config(name, value, is_local) in a statement: SET from inside a query. Whatever statement
// calls it (a SELECT, an UPDATE's WHERE, a COPY's query, a PREPARE's body), the setting changes on
// the connection that runs it, and Sluice must either carry the change (log it for replay, as a
// SET) or keep the session where the change is. Inside a function or a DO block it is not seen.

/** The statement calls set_config (by that name, qualified or not). */
export function callsSetConfig(t: readonly Token[]): boolean {
  for (let i = 0; i < t.length - 1; i++) if (isSetConfig(t, i)) return true;
  return false;
}

const isSetConfig = (t: readonly Token[], i: number): boolean => {
  const x = t[i]!;
  return (x.kind === 'word' || x.kind === 'ident') && x.text === 'set_config' && t[i + 1]!.kind === 'punct' && t[i + 1]!.text === '(';
};

/**
 * What a statement that calls set_config is (`c`: what it is otherwise). With is_local true in
 * every call it is SET LOCAL's equal: the rest of the transaction stays on the primary. The bare
 * form, `SELECT set_config('name', 'value', false)` with constants, is a SET: logged and replayed
 * as written, as SET of the same setting is (setting-change.ts). Any
 * other use (a parameter or an expression for an argument, more in the statement than the call,
 * a name Sluice cannot read) changes what Sluice cannot carry: the session's reads stay on the
 * primary and, in transaction mode, it keeps its connection.
 */
export function withSettingCalls(t: readonly Token[], sql: string, c: Statement): Statement {
  const calls: Token[][][] = [];
  for (let i = 0; i < t.length - 1; i++) if (isSetConfig(t, i)) calls.push(callArguments(t, i + 1));
  const locals = calls.map((args) => (args.length === 3 && args[2]!.length === 1 ? booleanConstant(args[2]![0]!) : undefined));
  // A read becomes another kind; what it calls and reads is kept (an advisory lock beside it still pins).
  const named = { functions: c.functions, relations: c.relations, catalog: c.catalog };
  if (locals.every((l) => l === true)) {
    if (c.kind !== 'read') return { ...c, pinTransaction: true };
    return statement('txLocal', 'set_config for the transaction', { ...named, pinTransaction: true });
  }
  const bare = calls.length === 1 && locals[0] === false ? bareCall(t, calls[0]!, sql) : null;
  if (bare) return settingChange(bare.name, bare.value, 'set_config');
  const pins = { pinSession: true, pinsConnection: c.pinsConnection ?? ('set_config()' as const) };
  if (c.kind !== 'read') return { ...c, ...pins };
  return statement('write', 'set_config with what cannot be replayed', { ...named, ...pins });
}

/**
 * `SELECT [pg_catalog.]set_config('name', 'value', false) [[AS] alias]`, both strings plain
 * constants Sluice can read: the setting's name (lower case) and value; else null.
 */
function bareCall(t: readonly Token[], args: Token[][], sql: string): { name: string; value: string } | null {
  const at = word(t[1], 'pg_catalog') && t[2]?.text === '.' ? 3 : 1;
  if (!word(t[0], 'select') || !isSetConfig(t, at)) return null;
  // The call's own tokens: the name, '(', the arguments with the commas between them, ')'.
  const end = at + 2 + args.reduce((n, a) => n + a.length + 1, 0);
  const alias = word(t[end], 'as') ? 2 : t[end] ? 1 : 0;
  if (t.length !== end + alias) return null;
  const [name, value] = args;
  if (name?.length !== 1 || value?.length !== 1 || name[0]!.kind !== 'literal' || value[0]!.kind !== 'literal') return null;
  // A parameter ($1) is a literal token too: the text must hold none. A name that is not a plain
  // string ('' to the lexer: E'...', $$...$$) cannot be read.
  if (/\$[0-9]/.test(sql) || name[0]!.text === '' || name[0]!.text.includes('\\')) return null;
  return { name: name[0]!.text.toLowerCase(), value: value[0]!.text };
}

/** The arguments of the call whose '(' is at `open`, each as its tokens (a ')' carries the depth outside it). */
function callArguments(t: readonly Token[], open: number): Token[][] {
  const depth = t[open]!.depth + 1;
  const args: Token[][] = [[]];
  for (let j = open + 1; j < t.length; j++) {
    const x = t[j]!;
    if (x.depth < depth) break;
    if (x.depth === depth && x.kind === 'punct' && x.text === ',') args.push([]);
    else args[args.length - 1]!.push(x);
  }
  return args[0]!.length === 0 && args.length === 1 ? [] : args;
}

/** A boolean constant's value (TRUE, FALSE, or a string boolean input reads), else undefined. */
function booleanConstant(x: Token): boolean | undefined {
  if (word(x, 'true')) return true;
  if (word(x, 'false')) return false;
  return x.kind === 'literal' ? (parseBool(x.text) ?? undefined) : undefined;
}
