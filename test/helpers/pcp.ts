import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { PCP_PASSWORD, PCP_USER } from './sluice';

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program to its end and keeps its exit code and output (never throws on exit != 0). */
export function runProgram(file: string, args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 120_000): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(file, args, { env: { ...process.env, ...env }, timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** A .pcppass (mode 0600) for the tests' PCP user, removed when the test file ends. */
export function pcpPassFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-pcppass-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'pcppass');
  writeFileSync(file, `*:*:${PCP_USER}:${PCP_PASSWORD}\n`);
  chmodSync(file, 0o600);
  return file;
}

/** pgpool's own pcp_* programs against a PCP port (Debian package pgpool2, in /usr/sbin). */
export function pcp(tool: string, port: number, passFile: string, ...args: string[]): Promise<Ran> {
  return runProgram(`/usr/sbin/${tool}`, ['-h', '127.0.0.1', '-p', String(port), '-U', PCP_USER, '-w', ...args], { PCPPASSFILE: passFile });
}

/** sluicectl from the build. */
export function sluicectl(port: number, passFile: string, ...args: string[]): Promise<Ran> {
  const ctl = join(__dirname, '..', '..', 'dist', 'ctl.js');
  return runProgram(process.execPath, [ctl, ...args, '-h', '127.0.0.1', '-p', String(port), '-U', PCP_USER, '-w'], { PCPPASSFILE: passFile });
}
