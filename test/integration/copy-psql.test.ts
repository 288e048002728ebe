import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';
import { clusterWithSluice } from '../helpers/sluice';

// psql as a user runs it, and COPY of a million rows both ways with Sluice's memory watched.

const run = promisify(execFile);
// Load balancing off: this file checks the data path, and reads its own writes from new sessions.
const env = clusterWithSluice(1, { load_balance_mode: false });

const psqlArgs = () => ['-X', '-h', '127.0.0.1', '-p', String(env.sluice.port), '-U', 'postgres', '-d', 'postgres'];

t.test('psql: queries, errors, \\d, and a multi-statement script', async (t) => {
  const { stdout } = await run('psql', [...psqlArgs(), '-At', '-c', 'select 40 + 2', '-c', 'create table psql_t(id int primary key, v text)', '-c', '\\d psql_t']);
  t.match(stdout, /^42\n/);
  t.match(stdout, /^id\|integer\|\|not null\|$/m);
  const bad = await run('psql', [...psqlArgs(), '-v', 'ON_ERROR_STOP=1', '-c', 'select * from nope']).catch((e: { code: number; stderr: string }) => e);
  t.equal((bad as { code: number }).code, 1);
  t.match((bad as { stderr: string }).stderr, /relation "nope" does not exist/);
  const script = await run('psql', [...psqlArgs(), '-At', '-c', 'begin; insert into psql_t values (1, $$a$$); select count(*) from psql_t; commit;']);
  t.match(script.stdout, /^1$/m);
});

function rssMb(): number {
  return process.memoryUsage().rss / (1 << 20);
}

t.test('COPY of 1e6 rows out and back in, memory flat', async (t) => {
  await run('psql', [...psqlArgs(), '-c', "create table copy_src as select i, repeat('x', 100) as pad from generate_series(1, 1000000) i", '-c', 'create table copy_dst (i int, pad text)']);
  const before = rssMb();
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, rssMb())), 50);
  t.teardown(() => clearInterval(sampler));
  // psql copies out through Sluice into a second psql that copies in through Sluice.
  const out = spawn('psql', [...psqlArgs(), '-c', 'copy copy_src to stdout']);
  const into = spawn('psql', [...psqlArgs(), '-c', 'copy copy_dst from stdin']);
  out.stdout.pipe(into.stdin);
  let bytes = 0;
  out.stdout.on('data', (b: Buffer) => (bytes += b.length));
  let inOut = '';
  into.stdout.on('data', (b: Buffer) => (inOut += b.toString()));
  const exit = (p: ReturnType<typeof spawn>) => new Promise<number | null>((resolve) => p.on('close', resolve));
  t.same(await Promise.all([exit(out), exit(into)]), [0, 0]);
  clearInterval(sampler);
  t.match(inOut, /COPY 1000000/);
  t.ok(bytes > 100_000_000, `${bytes} bytes went out`);
  const { stdout } = await run('psql', [...psqlArgs(), '-At', '-c', 'select count(*), sum(i) from copy_dst']);
  t.equal(stdout.trim(), '1000000|500000500000');
  t.ok(peak - before < 64, `Sluice RSS grew ${(peak - before).toFixed(1)} MB while ${(bytes / 1e6).toFixed(0)} MB passed twice`);
});
