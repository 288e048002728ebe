import type { Token } from './lexer';

// Which `name (` in a statement is a call of a function by that name. PostgreSQL's grammar
// accepts a function name that is an identifier, an unreserved keyword (set, replace, filter...)
// or a type-or-function keyword (left, right...), quoted or not, schema-qualified or not: every
// such call must be seen, or a writing function (SELECT set('t')) would be balanced to a standby.
// What is not a call must not look like one either, or the statement would go to the primary
// (and its "function" be looked up) for nothing: SQL syntax (COALESCE(...), ANY(...), FILTER
// (WHERE ...)), a type's modifier, a column list after an alias or a CTE's name.

const words = (s: string) => new Set(s.split(/\s+/).filter(Boolean));

/**
 * Reserved (R) and column-name (C) keywords of PostgreSQL 15 (Appendix C; pg_get_keywords()):
 * never a user function's name unless quoted or qualified. Followed by '(' they are syntax
 * (IN (...), ARRAY(...)), a type's modifier (numeric(10, 2)) or a built-in special form
 * (COALESCE, POSITION, SUBSTRING...). The tests compare these lists with the server's own.
 */
export const RESERVED_KEYWORDS = words(`
  all analyse analyze and any array as asc asymmetric both case cast check collate column
  constraint create current_catalog current_date current_role current_time current_timestamp
  current_user default deferrable desc distinct do else end except false fetch for foreign from
  grant group having in initially intersect into lateral leading limit localtime localtimestamp
  not null offset on only or order placing primary references returning select session_user some
  symmetric table then to trailing true union unique user using variadic when where window with`);

export const COLUMN_NAME_KEYWORDS = words(`
  between bigint bit boolean char character coalesce dec decimal exists extract float greatest
  grouping inout int integer interval least national nchar none normalize nullif numeric out
  overlay position precision real row setof smallint substring time timestamp treat trim values
  varchar xmlattributes xmlconcat xmlelement xmlexists xmlforest xmlnamespaces xmlparse xmlpi
  xmlroot xmlserialize xmltable`);

/**
 * The two column-name keywords whose plain form, name(a, b), is an ordinary call of whatever
 * function the search path finds by that name (the grammar's "allow functions named overlay() to
 * be called without special syntax"); the others map to pg_catalog's own or to special nodes.
 */
const CALLABLE_COLUMN_NAME_KEYWORDS = words('overlay substring');

/** Type-or-function keywords (T) that are operators or join words when not calls. */
const OPERATOR_WORDS = words('like ilike similar is isnull notnull overlaps');
const JOIN_WORDS = words('join cross inner outer full natural');

/** Reserved words that end an expression (a constant), unlike those that begin one. */
const VALUE_WORDS = words('null true false current_catalog current_date current_role current_time current_timestamp current_user session_user user localtime localtimestamp end');

/**
 * Unreserved words that are clause syntax after the words given (the one before, or the two
 * before as "a b"): GROUP BY (...), GROUPING SETS (...), AS NOT MATERIALIZED (...), character
 * varying(n), DAY TO SECOND(p), AT TIME ZONE (...), FETCH FIRST (n) ROWS.
 */
const CLAUSE_AFTER: ReadonlyMap<string, ReadonlySet<string>> = new Map([
  ['by', words('group order partition')],
  ['sets', words('grouping')],
  ['materialized', words('as as_not')],
  ['varying', words('char character bit national nchar')],
  ['second', words('day_to hour_to minute_to')],
  ['zone', words('time')],
  ['first', words('fetch')],
  ['next', words('fetch')],
]);

function clauseWord(name: string, prev: Token | undefined, prev2: Token | undefined): boolean {
  const after = CLAUSE_AFTER.get(name);
  if (!after || !isWord(prev)) return false;
  return after.has(prev!.text) || (isWord(prev2) && after.has(`${prev2!.text}_${prev!.text}`));
}

const isWord = (t: Token | undefined, w?: string): boolean => t !== undefined && t.kind === 'word' && (w === undefined || t.text === w);
const isPunct = (t: Token | undefined, p: string): boolean => t !== undefined && t.kind === 'punct' && t.text === p;

/**
 * A token after which no call can begin: a name, a constant or a closing bracket (a call there
 * would be two expressions side by side: what follows is an alias's column list, a window or
 * filter clause), AS (an alias or a type), and :: (a type).
 */
function endsOperand(prev: Token | undefined, prev2: Token | undefined): boolean {
  if (!prev) return false;
  if (prev.kind === 'ident' || prev.kind === 'literal') return true;
  if (prev.kind === 'punct') return prev.text === ')' || prev.text === ']' || (prev.text === ':' && isPunct(prev2, ':'));
  return prev.text === 'as' || VALUE_WORDS.has(prev.text);
}

/** A token an expression may begin after: punctuation, or a reserved word that is not a value. */
function beginsOperand(prev: Token | undefined): boolean {
  if (!prev) return true;
  if (prev.kind === 'punct') return prev.text !== ')' && prev.text !== ']';
  return prev.kind === 'word' && RESERVED_KEYWORDS.has(prev.text) && !VALUE_WORDS.has(prev.text);
}

/** The index of the ')' that closes the '(' at i. */
function closing(t: readonly Token[], i: number): number {
  const depth = t[i]!.depth;
  for (let j = i + 1; j < t.length; j++) if (isPunct(t[j], ')') && t[j]!.depth === depth) return j;
  return t.length;
}

/** WITH name (columns) AS [NOT] [MATERIALIZED] (...): the CTE's column list, not a call. */
function cteColumns(t: readonly Token[], open: number): boolean {
  const j = closing(t, open);
  const after = t[j + 2];
  return isWord(t[j + 1], 'as') && (isPunct(after, '(') || isWord(after, 'materialized') || isWord(after, 'not'));
}

/** CUBE (...) and ROLLUP (...) inside GROUP BY are grouping sets, not the cube extension's functions. */
function inGroupBy(t: readonly Token[], i: number): boolean {
  const depth = t[i]!.depth;
  for (let j = i - 1; j >= 0; j--) {
    const x = t[j]!;
    if (x.depth < depth) return false;
    if (x.depth > depth || x.kind !== 'word') continue;
    if (x.text === 'by') return isWord(t[j - 1], 'group');
    if (RESERVED_KEYWORDS.has(x.text)) return false;
  }
  return false;
}

/** OPERATOR(schema.op): an operator's qualified name, not a call. */
function operatorSyntax(t: readonly Token[], open: number): boolean {
  let k = open + 1;
  if ((isWord(t[k]) || t[k]?.kind === 'ident') && isPunct(t[k + 1], '.')) k += 2;
  const x = t[k];
  return x !== undefined && x.kind === 'punct' && x.text !== '(' && x.text !== ')';
}

/**
 * Whether the name at t[i] (its last part when qualified: `first` is where the name starts) is
 * a function call. t[i + 1] is known to be '('.
 */
export function isCall(t: readonly Token[], first: number, i: number): boolean {
  const prev = t[first - 1];
  const prev2 = t[first - 2];
  if (endsOperand(prev, prev2)) return false;
  if (isWord(prev, 'tablesample')) return false; // TABLESAMPLE method (args)
  const tok = t[i]!;
  const cte = (isWord(prev, 'with') || isWord(prev, 'recursive') || isPunct(prev, ',')) && cteColumns(t, i + 1);
  if (first !== i || tok.kind === 'ident') return !cte;
  const name = tok.text;
  if (RESERVED_KEYWORDS.has(name) || (COLUMN_NAME_KEYWORDS.has(name) && !CALLABLE_COLUMN_NAME_KEYWORDS.has(name))) return false;
  if (OPERATOR_WORDS.has(name)) return beginsOperand(isWord(prev, 'not') ? prev2 : prev);
  if (JOIN_WORDS.has(name)) return beginsOperand(prev);
  if (clauseWord(name, prev, prev2)) return false;
  if ((name === 'cube' || name === 'rollup') && inGroupBy(t, i)) return false;
  if (name === 'operator' && operatorSyntax(t, i + 1)) return false;
  return !cte;
}
