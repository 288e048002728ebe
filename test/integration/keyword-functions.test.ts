import t from 'tap';
import type { Client } from 'pg';
import { COLUMN_NAME_KEYWORDS, RESERVED_KEYWORDS } from '../../src/router/calls';
import { clusterWithSluice, waitFor } from '../helpers/sluice';

// PostgreSQL accepts many keywords as function names (set, left, replace, filter...). A call of
// a writing function by any such name, however it is spelt, must reach the primary: balanced to
// a standby it fails there ("cannot execute INSERT in a read-only transaction"). The keyword
// list is the server's own (pg_get_keywords()), not one typed for the test.

const env = clusterWithSluice(1, { weights: [0, 1] });

let keywords: { word: string; catcode: string }[] = [];

t.before(async () => {
  // Made directly on the primary, before Sluice reads the catalog: how Sluice learns of functions
  // made later is function-lookup.test.ts's subject.
  const c = await env.sluice.client({ port: env.cluster.port(0) });
  try {
    keywords = (await c.query('select word, catcode from pg_get_keywords() order by word')).rows;
    // One writing function per keyword, named by it (quoted, so that every keyword can be one).
    await c.query(`create table kw_calls (word text);
      do $$declare k record; begin
        for k in select word from pg_get_keywords() loop
          execute format('create function public.%I(int) returns text language plpgsql as $f$begin insert into kw_calls values (%L); return %L; end$f$', k.word, k.word, 'called ' || k.word);
        end loop;
      end$$`);
  } finally {
    await c.end();
  }
  await waitFor('the functions on the standby', async () => (await env.cluster.psql(1, "select count(*) from pg_proc where prosrc like '%insert into kw_calls%'")) === String(keywords.length), 20_000);
});

t.test("Sluice's keyword lists are the server's: no name it treats as syntax can be a function's", async (t) => {
  const server = (code: string) => new Set(keywords.filter((k) => k.catcode === code).map((k) => k.word));
  const notNames = new Set([...server('R'), ...server('C')]);
  t.same([...RESERVED_KEYWORDS, ...COLUMN_NAME_KEYWORDS].filter((w) => !notNames.has(w)), [], 'every word Sluice never takes for a call is reserved or a column-name keyword on this server');
  const version = Number((await env.cluster.psql(0, 'show server_version_num')).slice(0, 2));
  if (version === 15) {
    t.same([...RESERVED_KEYWORDS].sort(), [...server('R')].sort(), 'PostgreSQL 15: the same reserved keywords');
    t.same([...COLUMN_NAME_KEYWORDS].sort(), [...server('C')].sort(), 'PostgreSQL 15: the same column-name keywords');
  }
});

/** Each spelling of a call of the function named `w`, in a few places a call may stand. */
function spellings(w: string): string[] {
  const calls = [`${w}(1)`, `${w.toUpperCase()}(1)`, `"${w}"(1)`, `public.${w}(1)`, `public."${w}"(1)`, `"public"."${w}" (1)`];
  return calls.flatMap((c) => [`select ${c}`, `select 1 as one, ${c}`, `select v from (values (1)) s(v) where ${c} is not null and (${c}) like 'called%'`]);
}

/** A time of day as PostgreSQL prints a time or timetz: 16:40:17.9+00. */
const TIME_OF_DAY = /^\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d(:\d\d)?)?$/;

async function outcome(c: Client, sql: string): Promise<string> {
  try {
    // A time (current_timestamp(1), current_time(1), localtime(1), ...) is read twice, a moment
    // apart: that it is one is what counts (pg gives a timestamp as a Date, a time of day as text).
    const rows = (await c.query({ text: sql, rowMode: 'array' })).rows as unknown[][];
    return JSON.stringify(rows.map((r) => r.map((v) => (v instanceof Date || (typeof v === 'string' && TIME_OF_DAY.test(v)) ? 'a time' : v))));
  } catch (err) {
    return `error ${(err as { code?: string }).code}: ${(err as Error).message}`;
  }
}

t.test('every call of a writing function named by a keyword, however spelt, does what it does directly', async (t) => {
  const direct = await env.sluice.client({ port: env.cluster.port(0) });
  const through = await env.sluice.client();
  let calls = 0;
  let compared = 0;
  const differences: string[] = [];
  for (const { word } of keywords) {
    for (const sql of spellings(word)) {
      const want = await outcome(direct, sql);
      if (want.startsWith('error')) continue; // not a call PostgreSQL accepts
      compared++;
      if (want.includes(`called ${word}`)) calls++;
      const got = await outcome(through, sql);
      if (got !== want) differences.push(`${sql}: ${got} (directly ${want})`);
    }
  }
  t.same(differences, [], `${compared} statements through Sluice as directly`);
  const names = keywords.filter((k) => k.catcode === 'U' || k.catcode === 'T').length;
  t.ok(calls >= names * 3, `${calls} of them call the keyword-named function (${names} unreserved and type-or-function keywords)`);
  const before = env.sluice.server.selectCount[1]!;
  await through.query('select 1');
  t.equal(env.sluice.server.selectCount[1], before + 1, 'a plain read still goes to the standby');
});
