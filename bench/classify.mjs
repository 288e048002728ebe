// The classifier alone: statements per second for pgbench's own statements and a mixed corpus
// (routing runs it on every Query and Parse). Run after `npm run build`:
//   node bench/classify.mjs [seconds-per-corpus]
import { classify } from '../dist/router/classify.js';
import { loadParser } from '../dist/router/parse-tree.js';

const seconds = Number(process.argv[2] ?? 2);
const corpora = {
  'pgbench -S': ['SELECT abalance FROM pgbench_accounts WHERE aid = 48213;'],
  'pgbench TPC-B': [
    'BEGIN;',
    'UPDATE pgbench_accounts SET abalance = abalance + -2311 WHERE aid = 81234;',
    'SELECT abalance FROM pgbench_accounts WHERE aid = 81234;',
    'UPDATE pgbench_tellers SET tbalance = tbalance + -2311 WHERE tid = 7;',
    'UPDATE pgbench_branches SET bbalance = bbalance + -2311 WHERE bid = 1;',
    'INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (7, 1, 81234, -2311, CURRENT_TIMESTAMP);',
    'END;',
  ],
  mixed: [
    "select u.id, u.name, o.total from users u join orders o on o.user_id = u.id where u.email = 'a@b.c' and o.created_at > now() - interval '7 days' order by o.total desc limit 20",
    'with recent as (select * from events where ts > $1) select kind, count(*) from recent group by kind',
    'with moved as (delete from queue where id = $1 returning *) insert into done select * from moved',
    "select nextval('order_seq')",
    'select * from accounts where id = $1 for update',
    "set application_name = 'worker-7'",
    'explain analyze select * from t where a = 1',
    'copy (select * from t) to stdout',
    '/* app:report */ select sum(amount) from ledger where day = current_date',
    "select $$ not; a; statement $$ as body, E'it\\'s' as s from pg_catalog.pg_class limit 1",
    'begin isolation level repeatable read',
    'commit',
  ],
};

// pgbench sends new numbers in every statement: each of its statements in 1,000 spellings (made
// before the clock starts), so that no text is the same object or the same string twice in a row.
const renumbered = (texts) => Array.from({ length: 1000 }, (_, k) => texts.map((sql) => sql.replace(/\d+/g, (d) => String((Number(d) + k * 7919) % 100000)))).flat();
corpora['pgbench -S'] = renumbered(corpora['pgbench -S']);
corpora['pgbench TPC-B'] = renumbered(corpora['pgbench TPC-B']);

await loadParser();
console.log('| corpus | statements/s | µs per statement |\n|---|---|---|');
for (const [name, stmts] of Object.entries(corpora)) {
  let n = 0;
  const end = performance.now() + seconds * 1000;
  const t0 = performance.now();
  while (performance.now() < end) {
    for (let i = 0; i < 1000; i++) classify(stmts[(n + i) % stmts.length]);
    n += 1000;
  }
  const secs = (performance.now() - t0) / 1000;
  console.log(`| ${name} | ${Math.round(n / secs).toLocaleString('en')} | ${((secs / n) * 1e6).toFixed(2)} |`);
}
