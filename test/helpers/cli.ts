import { ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitFor } from './sluice';

/** A TOML document from a plain object: scalars first, then arrays of tables ([[backend]]). */
export function toToml(o: Record<string, unknown>): string {
  const scalar = (v: unknown) => (typeof v === 'string' ? JSON.stringify(v) : String(v));
  const lines: string[] = [];
  const tables: string[] = [];
  for (const [k, v] of Object.entries(o)) {
    if (v === undefined) continue;
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) lines.push(`${k} = ${JSON.stringify(v)}`);
    else if (Array.isArray(v)) {
      for (const entry of v as Record<string, unknown>[]) {
        tables.push('', `[[${k}]]`, ...Object.entries(entry).filter(([, x]) => x !== undefined).map(([ek, ev]) => `${ek} = ${scalar(ev)}`));
      }
    } else lines.push(`${k} = ${scalar(v)}`);
  }
  return `${[...lines, ...tables].join('\n')}\n`;
}

export interface CliSluice {
  proc: ChildProcess;
  file: string;
  port: number;
  pcpPort: number;
  httpPort: number;
  /** Log records written so far (the JSON lines on stdout). */
  logs: Record<string, unknown>[];
  /** Resolves with the exit code when the process ends. */
  exited: Promise<number | null>;
  /** Writes a new config file (the process reads it on SIGHUP or pcp_reload_config). */
  write(config: Record<string, unknown>): void;
  /** Waits for a log record with this message (after `from` records). */
  logged(msg: string, from?: number): Promise<Record<string, unknown>>;
}

/** `sluice -f FILE` from the build, as an operator runs it; the ports come from its log. */
export async function startCli(dir: string, config: Record<string, unknown>, name = 'sluice.toml'): Promise<CliSluice> {
  const file = join(dir, name);
  writeFileSync(file, toToml(config));
  const proc = spawn(process.execPath, [join(__dirname, '..', '..', 'dist', 'cli.js'), '-f', file], { stdio: ['ignore', 'pipe', 'inherit'] });
  const logs: Record<string, unknown>[] = [];
  let pending = '';
  proc.stdout!.on('data', (chunk: Buffer) => {
    pending += chunk.toString();
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const l of lines) if (l) logs.push(JSON.parse(l) as Record<string, unknown>);
  });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const logged = (msg: string, from = 0) => waitFor(`log "${msg}"`, () => logs.slice(from).find((l) => l.msg === msg), 30_000);
  const port = (await logged('listening')).port as number;
  const pcpPort = (await logged('PCP listening')).port as number;
  // http_port 0 disables HTTP (the contract), so tests give it a free port of their own.
  const httpPort = typeof config.http_port === 'number' && config.http_port > 0 ? ((await logged('HTTP listening')).port as number) : 0;
  return { proc, file, port, pcpPort, httpPort, logs, exited, write: (c) => writeFileSync(file, toToml(c)), logged };
}
