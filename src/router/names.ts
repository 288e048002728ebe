import { isCall } from './calls';
import { word, type Token } from './lexer';
import type { ReadStatement } from './statement';

// The functions a statement calls and the relations it may read: what routing weighs a read by.

/** Words that are never relation names in the statements classified as reads. */
const SQL_WORDS = new Set(
  ('select from where and or not as on using join left right full inner outer cross natural lateral group ' +
    'order by having limit offset fetch first next rows only union except intersect all distinct case when ' +
    'then else end is null true false in exists between like ilike similar asc desc nulls last with recursive ' +
    'values table show explain analyze verbose costs buffers format copy to stdout with window over partition ' +
    'filter within any some array row cast interval date time timestamp zone at escape collate').split(' '),
);

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
export function names(t: Token[], from: number): Pick<ReadStatement, 'functions' | 'relations' | 'catalog' | 'sessionView'> {
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
