import { execFileSync } from 'node:child_process';
import t from 'tap';
import { expandPlaceholders, HookValues, hookEnvironment, shellQuote } from '../../src/cluster/hooks';

// failover_command's placeholders (pgpool.md a.7): every value arrives as one verbatim shell word.

const values: HookValues = {
  nodeId: 2,
  host: 'db two',
  port: 5434,
  dataDirectory: `/data/it's $(touch /tmp/pwned); "x" \`id\``,
  newMainId: 1,
  newMainHost: 'db-one',
  newMainPort: 5433,
  newMainDataDirectory: '/data/one',
  oldMainId: 0,
  oldPrimaryId: 0,
  oldPrimaryHost: 'db-zero',
  oldPrimaryPort: 5432,
  epoch: 17,
};

const argsOf = (command: string): string[] =>
  JSON.parse(execFileSync('/bin/sh', ['-c', `node -e 'console.log(JSON.stringify(process.argv.slice(1)))' -- ${command}`]).toString()) as string[];

t.test('each placeholder becomes its value, shell-quoted; %% is a percent sign', async (t) => {
  const line = expandPlaceholders('%d %h %p %D %m %H %M %P %r %R %N %S %E %% %x', values);
  t.same(argsOf(line), ['2', 'db two', '5434', values.dataDirectory, '1', 'db-one', '0', '0', '5433', '/data/one', 'db-zero', '5432', '17', '%', '%x']);
});

t.test('metacharacters are not run', async (t) => {
  t.equal(shellQuote("a'b"), `'a'\\''b'`);
  t.same(argsOf(shellQuote('$(echo no) `echo no` ; echo no')), ['$(echo no) `echo no` ; echo no']);
});

t.test('missing nodes are -1 and empty strings', async (t) => {
  const none = { ...values, newMainId: -1, newMainHost: '', newMainPort: '' as const, newMainDataDirectory: '' };
  t.same(argsOf(expandPlaceholders('%m %H %r %R', none)), ['-1', '', '', '']);
});

t.test('the same values are in the environment', async (t) => {
  const env = hookEnvironment(values);
  t.equal(env.SLUICE_FAILED_NODE_ID, '2');
  t.equal(env.SLUICE_FAILED_DATA_DIRECTORY, values.dataDirectory);
  t.equal(env.SLUICE_NEW_MAIN_NODE_ID, '1');
  t.equal(env.SLUICE_OLD_PRIMARY_PORT, '5432');
  t.equal(env.SLUICE_EPOCH, '17');
  // pgpool's twelve, and Sluice's epoch.
  t.equal(Object.keys(env).length, 13);
});

t.test('a hook run for real: hostile values arrive verbatim and nothing in them is executed', async (t) => {
  const { mkdtempSync, existsSync, readFileSync, rmSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const { runHook } = await import('../../src/cluster/hooks');
  const { createLogger } = await import('../../src/log/logger');
  const dir = mkdtempSync(join(tmpdir(), 'sluice-hook-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const marker = join(dir, 'pwned');
  const hostile: HookValues = {
    ...values,
    host: `h; touch ${marker}`,
    dataDirectory: `/d/$(touch ${marker}) \`touch ${marker}\` it's "quoted" && touch ${marker} | cat > ${marker}`,
    newMainHost: `'; touch ${marker}; echo '`,
    oldPrimaryHost: `a b\tc\nd`,
  };
  const out = join(dir, 'args.json');
  const command = `node -e 'require("fs").writeFileSync(process.argv[1], JSON.stringify(process.argv.slice(2)))' -- ${out} %h %D %H %N %d`;
  const r = await runHook('failover_command', command, hostile, { cwd: dir, timeoutMs: 10_000, log: createLogger('error') });
  t.equal(r.code, 0);
  t.same(JSON.parse(readFileSync(out, 'utf8')), [hostile.host, hostile.dataDirectory, hostile.newMainHost, hostile.oldPrimaryHost, '2']);
  t.notOk(existsSync(marker), 'no command inside a value ran');
});

t.test("a script's stderr is information while it runs (pg_rewind's progress goes there); a failure is a warning with its last stderr lines", async (t) => {
  const { runScript } = await import('../../src/cluster/hooks');
  const { createLogger } = await import('../../src/log/logger');
  const run = async (line: string) => {
    const lines: { level: number; msg: string; stream?: string; stderr?: string[]; output?: string }[] = [];
    const log = createLogger('info', { write: (s: string) => void lines.push(JSON.parse(s)) });
    const r = await runScript('recovery_1st_stage_command', line, {}, { cwd: '/', timeoutMs: 10_000, log });
    return { r, lines };
  };
  const ok = await run('echo "pg_rewind: servers diverged" >&2; echo done');
  t.equal(ok.r.code, 0);
  t.same(ok.lines.filter((l) => l.level >= 40), [], 'a script that succeeds logs no warning');
  t.ok(ok.lines.some((l) => l.level === 30 && l.msg === 'hook output' && l.stream === 'stderr'), 'its stderr is logged as information');
  const single = await run('printf "\\nPostgreSQL stand-alone backend 15\\nbackend> backend> \\n"');
  t.same(single.lines.filter((l) => l.msg === 'hook output').map((l) => l.output), ['PostgreSQL stand-alone backend 15'], "a single-user backend's prompts are not logged as output");
  const bad = await run('echo "could not connect" >&2; exit 3');
  const warned = bad.lines.filter((l) => l.level === 40);
  t.same(warned.map((l) => [l.msg, l.stderr]), [['hook failed', ['could not connect']]], 'a failure: one warning with the last stderr lines');
});
