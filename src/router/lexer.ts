/**
 * A lexer for SQL text, just deep enough to route statements: it knows PostgreSQL's comments
 * (nested block comments), string forms ('', E'', U&'', $tag$) and quoted identifiers, so that a
 * keyword inside a string or comment is never mistaken for one in the statement (PostgreSQL docs,
 * "Lexical Structure"). Words are lowercased; quoted identifiers keep their case.
 */

export type TokenKind = 'word' | 'ident' | 'punct' | 'literal';

export interface Token {
  readonly kind: TokenKind;
  /** Lowercased word, identifier text, punctuation, a plain string's text, or '' for other literals. */
  readonly text: string;
  /** Parenthesis depth at the token (0 at statement level). */
  readonly depth: number;
}

/** The token is the word `w` (words are lowercased). */
export const word = (t: Token | undefined, w: string): boolean => t !== undefined && t.kind === 'word' && t.text === w;

/** The statements of one query string, as token lists. */
export interface Lexed {
  readonly statements: Token[][];
  /** Each statement's text as [start, end) offsets into the query string. */
  readonly spans: [number, number][];
  /** The text could not be lexed to the end (an unterminated string or comment). */
  readonly broken: boolean;
  /** It holds constants (strings, numbers): text that seldom comes again word for word. */
  readonly constants: boolean;
}

const isSpace = (c: number) => c === 32 || (c >= 9 && c <= 13);
export const isWordStart = (c: number): boolean => (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c >= 128;
export const isWordPart = (c: number): boolean => isWordStart(c) || (c >= 48 && c <= 57) || c === 36;
export const isDigit = (c: number): boolean => c >= 48 && c <= 57;

const QUOTE = 39;
const DQUOTE = 34;
const DOLLAR = 36;

export function lex(sql: string): Lexed {
  const statements: Token[][] = [];
  let current: Token[] = [];
  let depth = 0;
  let i = 0;
  const n = sql.length;
  const spans: [number, number][] = [];
  let tokStart = 0;
  let spanStart = 0;
  let constants = false;
  const push = (kind: TokenKind, text: string) => {
    if (current.length === 0) spanStart = tokStart;
    current.push({ kind, text, depth });
  };
  const constant = (text: string) => {
    constants = true;
    push('literal', text);
  };
  const done = (broken: boolean): Lexed => {
    // The last statement runs to the end of the text (the caller trims it).
    if (current.length > 0) {
      statements.push(current);
      spans.push([spanStart, n]);
    }
    return { statements, spans, broken, constants };
  };
  while (i < n) {
    const c = sql.charCodeAt(i);
    tokStart = i;
    if (isSpace(c)) {
      i++;
    } else if (c === 45 && sql.charCodeAt(i + 1) === 45) {
      const nl = sql.indexOf('\n', i);
      i = nl < 0 ? n : nl + 1;
    } else if (c === 47 && sql.charCodeAt(i + 1) === 42) {
      i = skipBlockComment(sql, i);
      if (i < 0) return done(true);
    } else if (c === QUOTE) {
      const end = skipQuoted(sql, i + 1, QUOTE, false);
      if (end < 0) return done(true);
      // Plain strings keep their text: a SET's value can decide where it goes.
      constant(sql.slice(i + 1, end - 1).replace(/''/g, "'"));
      i = end;
    } else if (c === DQUOTE) {
      const endQ = skipQuoted(sql, i + 1, DQUOTE, false);
      if (endQ < 0) return done(true);
      push('ident', sql.slice(i + 1, endQ - 1).replace(/""/g, '"'));
      i = endQ;
    } else if (c === DOLLAR && !isDigit(sql.charCodeAt(i + 1))) {
      const end = skipDollarQuoted(sql, i);
      if (end === -1) return done(true);
      if (end === -2) {
        push('punct', '$');
        i++;
      } else {
        constant('');
        i = end;
      }
    } else if (isWordStart(c)) {
      let j = i + 1;
      while (j < n && isWordPart(sql.charCodeAt(j))) j++;
      const next = sql.charCodeAt(j);
      // E'..', B'..', X'..', N'..' and U&'..' are string constants with a prefix.
      if (next === QUOTE && j - i === 1) {
        const end = skipQuoted(sql, j + 1, QUOTE, (c | 32) === 101);
        if (end < 0) return done(true);
        constant('');
        i = end;
      } else if (j - i === 1 && (c | 32) === 117 && next === 38 && sql.charCodeAt(j + 1) === QUOTE) {
        const end = skipQuoted(sql, j + 2, QUOTE, false);
        if (end < 0) return done(true);
        constant('');
        i = end;
      } else {
        push('word', sql.slice(i, j).toLowerCase());
        i = j;
      }
    } else if (isDigit(c) || (c === DOLLAR && isDigit(sql.charCodeAt(i + 1)))) {
      let j = i + 1;
      while (j < n && (isWordPart(sql.charCodeAt(j)) || sql.charCodeAt(j) === 46)) j++;
      // A parameter ($1) is the same in every execution: not a constant.
      if (c === DOLLAR) push('literal', '');
      else constant('');
      i = j;
    } else if (c === 59) {
      if (current.length > 0) {
        statements.push(current);
        spans.push([spanStart, i]);
      }
      current = [];
      depth = 0;
      i++;
    } else {
      if (c === 40) {
        push('punct', '(');
        depth++;
      } else if (c === 41) {
        depth = Math.max(0, depth - 1);
        push('punct', ')');
      } else {
        push('punct', sql[i]!);
      }
      i++;
    }
  }
  return done(false);
}

/** Past the end of a block comment starting at i; comments nest in PostgreSQL. -1: unterminated. */
function skipBlockComment(sql: string, i: number): number {
  let nest = 0;
  const n = sql.length;
  while (i < n) {
    if (sql.charCodeAt(i) === 47 && sql.charCodeAt(i + 1) === 42) {
      nest++;
      i += 2;
    } else if (sql.charCodeAt(i) === 42 && sql.charCodeAt(i + 1) === 47) {
      nest--;
      i += 2;
      if (nest === 0) return i;
    } else {
      i++;
    }
  }
  return -1;
}

/** Past the closing quote of a quoted run starting after the opening quote; doubled quotes escape. */
function skipQuoted(sql: string, i: number, q: number, backslash: boolean): number {
  const n = sql.length;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (backslash && c === 92) {
      i += 2;
    } else if (c === q) {
      if (sql.charCodeAt(i + 1) === q) i += 2;
      else return i + 1;
    } else {
      i++;
    }
  }
  return -1;
}

/** Past a $tag$...$tag$ string at i; -2 when this '$' does not open one, -1 when unterminated. */
function skipDollarQuoted(sql: string, i: number): number {
  let j = i + 1;
  while (j < sql.length && isWordPart(sql.charCodeAt(j)) && sql.charCodeAt(j) !== DOLLAR) j++;
  if (sql.charCodeAt(j) !== DOLLAR) return -2;
  const tag = sql.slice(i, j + 1);
  const end = sql.indexOf(tag, j + 1);
  return end < 0 ? -1 : end + tag.length;
}
