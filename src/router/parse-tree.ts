import { loadModule, parseSync } from 'libpg-query';
import { Statement, statement } from './statement';

let loaded = false;
let missed = 0;
let consulted = 0;

/**
 * libpg-query is WebAssembly: it must be instantiated once before the synchronous parse works.
 * It costs about 7 MB of memory, so the server loads it only when a statement's class routes
 * anything (load balancing).
 */
export async function loadParser(): Promise<void> {
  if (loaded) return;
  await loadModule();
  loaded = true;
}

/**
 * Until it is, a statement that needs the parser is classified as a write, and not for good:
 * this counts those classifications (a memo must not keep them).
 */
export function parserMisses(): number {
  return missed;
}

/**
 * Counts the statements the parser was asked about: it reads the text itself, numbers and all
 * (`1x` is a syntax error where `1` is not), so its verdict holds for that text alone.
 */
export function parserConsulted(): number {
  return consulted;
}

type Node = Record<string, unknown>;

/** A data-modifying statement anywhere in a WITH list (CTEs nest). */
function hasWritingCte(node: unknown): boolean {
  if (Array.isArray(node)) return node.some(hasWritingCte);
  if (node === null || typeof node !== 'object') return false;
  const n = node as Node;
  if (n.CommonTableExpr) {
    const q = (n.CommonTableExpr as Node).ctequery as Node | undefined;
    if (q && !q.SelectStmt) return true;
  }
  return Object.values(n).some(hasWritingCte);
}

/**
 * Settles a statement the lexer could not be sure of with PostgreSQL's own parser. A statement
 * the parser rejects goes to the primary (as pgpool does with its dummy "write" parse tree);
 * the server will report the syntax error itself.
 */
export function settleWithParser(sql: string, otherwise: () => Statement): Statement {
  consulted++;
  if (!loaded) {
    missed++;
    return statement('write', 'parser not loaded');
  }
  let tree: { stmts?: { stmt: Node }[] };
  try {
    tree = parseSync(sql) as unknown as typeof tree;
  } catch {
    return statement('write', 'parser rejected the query');
  }
  const stmts = tree.stmts ?? [];
  if (stmts.length !== 1) return statement('write', 'multi-statement query');
  const s = stmts[0]!.stmt;
  const select = s.SelectStmt as Node | undefined;
  if (!select) return statement('write', 'not a select');
  if (select.intoClause) return statement('write', 'select into');
  if (select.lockingClause) return statement('write', 'locking clause');
  if (hasWritingCte(select)) return statement('write', 'data-modifying WITH');
  return otherwise();
}
