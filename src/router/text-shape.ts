import { isDigit, isWordPart, isWordStart } from './lexer';

/**
 * A query text's shape: the text with each numeric constant replaced by a NUL (which a query
 * string cannot hold), so that `... WHERE aid = 12` and `... WHERE aid = 345` share one. Routing
 * sees a number only as "a constant" (the lexer keeps no text for it), so texts of one shape lex
 * to the same tokens and classify alike: classify() memoizes by shape, and the texts pgbench,
 * ORMs without bind parameters and hand-written SQL repeat all day with new numbers cost one
 * scan instead of a lex and a classification each.
 *
 * Only the plainest texts have a shape: anything with a quote, a dollar-quoted string or a
 * comment has none (null), and is classified as before. The scan follows lexer.ts's rules for
 * where a word, a parameter ($1) and a number start, so the two agree on what is a constant.
 */
export function shapeOf(sql: string): string | null {
  const n = sql.length;
  let out = '';
  let from = 0;
  let i = 0;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (c === QUOTE || c === DQUOTE) return null;
    if ((c === DASH && sql.charCodeAt(i + 1) === DASH) || (c === SLASH && sql.charCodeAt(i + 1) === STAR)) return null;
    if (isWordStart(c)) {
      i++;
      while (i < n && isWordPart(sql.charCodeAt(i))) i++;
    } else if (c === DOLLAR) {
      // $1 is a parameter (the same in every execution: kept); any other $ may open $tag$...$tag$.
      if (!isDigit(sql.charCodeAt(i + 1))) return null;
      i = pastNumber(sql, i + 1);
    } else if (isDigit(c)) {
      const end = pastNumber(sql, i);
      out += `${sql.slice(from, i)}\0`;
      from = end;
      i = end;
    } else {
      i++;
    }
  }
  return from === 0 ? sql : out + sql.slice(from);
}

/** Past a number's characters from i (as lexer.ts reads one: word characters and dots). */
function pastNumber(sql: string, i: number): number {
  const n = sql.length;
  let j = i + 1;
  while (j < n && (isWordPart(sql.charCodeAt(j)) || sql.charCodeAt(j) === DOT)) j++;
  return j;
}

const QUOTE = 39;
const DQUOTE = 34;
const DOLLAR = 36;
const DASH = 45;
const SLASH = 47;
const STAR = 42;
const DOT = 46;
