import { ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import pg from 'pg';
import { freePortRun } from '../helpers/ports';
import { waitFor } from '../helpers/sluice';

// The README's first page, run against the demo as a new user runs it: the commands under "With
// the demo running", the failover walkthrough (kill the primary; open sessions carry on; the
// recovery command brings node 0 back), and the PCP examples. The commands are read from the
// README itself, so it cannot drift from what works. The demo runs on free ports in a folder of
// its own; the commands get those (and a 3 s pgbench instead of 30 s), nothing else. The PCP
// examples of docs/admin.md run the same way.

const run = promisify(execFile);
const ROOT = join(__dirname, '..', '..');
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const ADMIN = readFileSync(join(ROOT, 'docs', 'admin.md'), 'utf8');

let demo: ChildProcess | undefined;
let dir = '';
let port = 0;
let pcpPort = 0;
let httpPort = 0;
/** What the demo printed (Sluice's log among it). */
let demoOut = '';

/** The ```sh block of a page that holds `anchor`, or else the first after it: its lines, comments cut off. */
function shBlock(anchor: string, page = README): string[] {
  const at = page.indexOf(anchor);
  if (at < 0) throw new Error(`no "${anchor}" in the page`);
  const block = [...page.matchAll(/```sh\n([\s\S]*?)```/g)].find((m) => m.index! + m[0].length > at)![1]!;
  return block
    .split('\n')
    .map((l) => l.replace(/\s+#.*$/, '').trim())
    .filter((l) => l.length > 0);
}

/** The inline `code` in the walkthrough paragraph that starts with `prefix`. */
function inline(prefix: string): string {
  const m = new RegExp('`(' + prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') + '[^`]*)`').exec(README);
  if (!m) throw new Error(`README has no \`${prefix}...\``);
  return m[1]!;
}

/** A README command made to reach this demo: its folder and ports. */
function forDemo(cmd: string): string {
  let c = cmd.replaceAll('.demo', dir).replaceAll('-p 9999', `-p ${port}`).replaceAll('-p 9898', `-p ${pcpPort}`).replace('-T 30', '-T 3');
  if (/ctl\.js|pcp_/.test(c) && !/ -p /.test(c)) c = c.replace('-h localhost', `-h localhost -p ${pcpPort}`);
  return c;
}

const sh = (cmd: string, input?: string) =>
  new Promise<{ code: number | null; out: string }>((resolve) => {
    const p = spawn('bash', ['-c', cmd], { cwd: ROOT, env: { ...process.env, PCPPASSFILE: join(dir, 'pcppass') } });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.on('close', (code) => resolve({ code, out }));
    p.stdin.end(input ?? '');
  });

t.before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-demo-'));
  const base = await freePortRun(3);
  [port, pcpPort, httpPort] = [await freePortRun(1), await freePortRun(1), await freePortRun(1)];
  await run('chown', ['postgres:', dir]).catch(() => undefined);
  demo = spawn('bash', [join(ROOT, 'scripts', 'demo.sh')], {
    cwd: ROOT,
    env: { ...process.env, DEMO_DIR: dir, DEMO_BASE_PORT: String(base), DEMO_PORT: String(port), DEMO_PCP_PORT: String(pcpPort), DEMO_HTTP_PORT: String(httpPort), PG_FAST: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  demo.stdout!.on('data', (d: Buffer) => (demoOut += d.toString()));
  demo.stderr!.on('data', (d: Buffer) => (demoOut += d.toString()));
  await waitFor('the demo answering', async () => (await sh(`psql -h 127.0.0.1 -p ${port} -U postgres -Atc 'select 1' postgres`)).out.trim() === '1', 120_000);
});

t.teardown(async () => {
  if (demo && demo.exitCode === null) {
    const gone = new Promise((resolve) => demo!.once('exit', resolve));
    demo.kill('SIGTERM');
    await gone;
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

t.test('"With the demo running": psql, pgbench -i, pgbench', async (t) => {
  const [psql, init, bench] = shBlock('With the demo running:').map(forDemo);
  t.match(psql!, /^psql /);
  const p = await sh(psql!, 'select 40 + 2 as answer;\n');
  t.equal(p.code, 0, psql);
  t.match(p.out, /\b42\b/, 'psql answers');
  const i = await sh(init!);
  t.equal(i.code, 0, `${init}: ${i.out.slice(-300)}`);
  const b = await sh(bench!);
  t.equal(b.code, 0, bench);
  t.match(b.out, /number of failed transactions: 0 /, 'pgbench: no failed transaction');
  const page = await fetch(`http://localhost:${httpPort}/`);
  t.equal(page.status, 200, 'the status page');
});

t.test('the failover walkthrough: kill the primary, sessions carry on, the recovery command brings node 0 back', async (t) => {
  const session = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
  await session.connect();
  t.teardown(() => session.end());
  await session.query("set application_name = 'walkthrough'");
  await session.query('prepare answer as select 42 as v');
  const kill = forDemo(inline('bash scripts/cluster.sh kill'));
  t.equal((await sh(kill)).code, 0, kill);
  // As a person at the keyboard would, the session is used once Sluice has seen the node die:
  // a statement that reached the dying server first would end the session, as it would direct.
  await waitFor('node 0 detached', async () => / down /.test((await sh(forDemo('node dist/ctl.js node-info 0 -h localhost -U admin -w'))).out), 60_000);
  const answered = await waitFor('the open session answering again', async () => {
    try {
      return (await session.query('execute answer')).rows[0].v === 42;
    } catch {
      return false;
    }
  }, 60_000);
  t.ok(answered, 'the open session carried on, its prepared statement with it');
  t.equal((await session.query('show application_name')).rows[0].application_name, 'walkthrough', 'and its settings');
  const recover = forDemo(inline('PCPPASSFILE=.demo/pcppass node dist/ctl.js recovery-node'));
  // "Until the other standby follows the new primary (a few seconds), PCP commands answer
  // `failover is in progress`: run the recovery again then."
  const r = await waitFor('the recovery command succeeding', async () => {
    const x = await sh(recover);
    if (x.code === 0) return x;
    t.match(x.out, /failover is in progress/, 'the only refusal meanwhile');
    return false;
  }, 120_000);
  t.equal(r.code, 0, recover);
  const info = await sh(forDemo('node dist/ctl.js node-info -h localhost -U admin -w'));
  t.equal(info.code, 0);
  t.equal(info.out.trim().split('\n').length, 3, `three nodes: ${info.out}`);
  t.notMatch(info.out, /\bdown\b/, 'all up again');
  t.equal((await session.query('execute answer')).rows[0].v, 42, 'the session carried on through the recovery too');
});

const PCP_PROGRAMS = ['/usr/sbin/pcp_node_info', '/usr/bin/pcp_node_info'].some((f) => existsSync(f));

t.test("the PCP examples: pgpool's own pcp_* programs against the demo", { skip: !PCP_PROGRAMS && "pgpool's pcp_* programs are not installed" }, async (t) => {
  const lines = shBlock('PCPPASSFILE=.demo/pcppass', ADMIN).filter((l) => !l.startsWith('export') && !l.includes('…'));
  t.ok(lines.length >= 2, 'the runnable lines of the block');
  for (const line of lines.map(forDemo)) {
    const r = await sh(line);
    t.equal(r.code, 0, `${line}: ${r.out.slice(0, 200)}`);
  }
});

t.test("the demo's log is for a person to read, even through a pipe", async (t) => {
  const lines = demoOut.split('\n').filter((l) => /\b(INFO|WARN|ERROR)\b/.test(l));
  t.ok(lines.some((l) => /^\d\d:\d\d:\d\d\.\d{3} INFO .*listening/.test(l)), `a line like "12:00:00.000 INFO ... listening": ${lines[0]}`);
  t.notOk(demoOut.split('\n').some((l) => l.startsWith('{"level"')), 'no JSON line');
  t.notMatch(demoOut, /backend>/, "no single-user backend's prompt (pg_rewind runs one)");
});
