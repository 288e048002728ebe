import { spawn } from 'node:child_process';
import { isAbsolute, resolve } from 'node:path';
import type { Logger } from '../log/logger';

/**
 * The values behind pgpool's placeholders for failover_command, failback_command and
 * follow_primary_command (pgpool.md a.7). Ids are numbers; -1 when there is no such node.
 */
export interface HookValues {
  /** %d %h %p %D: the failed (or attached, or following) node. */
  nodeId: number;
  host: string;
  port: number;
  dataDirectory: string;
  /** %m %H %r %R: the new main node (the promotion candidate, or the new primary). */
  newMainId: number;
  newMainHost: string;
  newMainPort: number | '';
  newMainDataDirectory: string;
  /** %M: the old main node; %P %N %S: the old primary. */
  oldMainId: number;
  oldPrimaryId: number;
  oldPrimaryHost: string;
  oldPrimaryPort: number | '';
  /** %E (Sluice's): the cluster's epoch after the change, to fence an old primary with. */
  epoch: number;
}

/** Each placeholder letter, its value and the environment variable that carries it too. */
const PLACEHOLDERS: Record<string, [keyof HookValues, string]> = {
  d: ['nodeId', 'SLUICE_FAILED_NODE_ID'],
  h: ['host', 'SLUICE_FAILED_HOST'],
  p: ['port', 'SLUICE_FAILED_PORT'],
  D: ['dataDirectory', 'SLUICE_FAILED_DATA_DIRECTORY'],
  m: ['newMainId', 'SLUICE_NEW_MAIN_NODE_ID'],
  H: ['newMainHost', 'SLUICE_NEW_MAIN_HOST'],
  r: ['newMainPort', 'SLUICE_NEW_MAIN_PORT'],
  R: ['newMainDataDirectory', 'SLUICE_NEW_MAIN_DATA_DIRECTORY'],
  M: ['oldMainId', 'SLUICE_OLD_MAIN_NODE_ID'],
  P: ['oldPrimaryId', 'SLUICE_OLD_PRIMARY_NODE_ID'],
  N: ['oldPrimaryHost', 'SLUICE_OLD_PRIMARY_HOST'],
  S: ['oldPrimaryPort', 'SLUICE_OLD_PRIMARY_PORT'],
  E: ['epoch', 'SLUICE_EPOCH'],
};

/** A value as one shell word that the shell takes verbatim: nothing in it is expanded or run. */
export function shellQuote(v: string): string {
  return `'${v.replace(/'/g, `'\\''`)}'`;
}

/**
 * The command line with every placeholder replaced by its shell-quoted value (pgpool pastes the
 * raw value, so a data directory with a space or a `$(...)` in it broke or ran; quoting fixes
 * that). `%%` is a literal %; an unknown `%x` is left as it is, as pgpool does.
 */
export function expandPlaceholders(command: string, v: HookValues): string {
  return expandLetters(command, (c) => {
    const p = PLACEHOLDERS[c];
    return p && String(v[p[0]]);
  });
}

/** `%x` replaced by valueOf('x') as one shell-quoted word, unless undefined (left as it is); `%%` is %. */
export function expandLetters(command: string, valueOf: (letter: string) => string | undefined): string {
  return command.replace(/%(.)/g, (whole, c: string) => {
    if (c === '%') return '%';
    const v = valueOf(c);
    return v === undefined ? whole : shellQuote(v);
  });
}

/** The same values as environment variables (SLUICE_FAILED_NODE_ID and so on). */
export function hookEnvironment(v: HookValues): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, name] of Object.values(PLACEHOLDERS)) env[name] = String(v[key]);
  return env;
}

export interface ScriptResult {
  code: number | null;
  signal: string | null;
  timedOut: boolean;
  /** The last lines the script wrote to stderr (for the error a caller sees). */
  errorTail: string[];
}

/** pgpool's hooks: the command with its placeholders expanded, the values in the environment too. */
export function runHook(name: string, command: string, values: HookValues, opts: ScriptOptions): Promise<ScriptResult> {
  return runScript(name, expandPlaceholders(command, values), hookEnvironment(values), opts);
}

export interface ScriptOptions {
  cwd: string;
  timeoutMs: number;
  log: Logger;
}

const TAIL_LINES = 5;

/**
 * Runs a command line through /bin/sh in the config file's folder (so relative script paths
 * work), with extra environment, its output logged line by line, and killed (with its whole
 * process group) after timeoutMs (0 = no limit).
 */
export function runScript(name: string, line: string, env: Record<string, string>, opts: ScriptOptions): Promise<ScriptResult> {
  const log = opts.log.child({ hook: name });
  log.info({ command: line }, 'running hook');
  return new Promise((done) => {
    const child = spawn('/bin/sh', ['-c', line], {
      cwd: opts.cwd && isAbsolute(opts.cwd) ? opts.cwd : resolve(opts.cwd || '.'),
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let timedOut = false;
    const errorTail: string[] = [];
    const timer =
      opts.timeoutMs > 0
        ? setTimeout(() => {
            timedOut = true;
            if (child.pid) process.kill(-child.pid, 'SIGKILL');
          }, opts.timeoutMs)
        : undefined;
    // Both streams are logged as information while the script runs: many tools write their
    // normal progress to stderr (pg_rewind, pg_basebackup). Whether it was a failure is known at
    // the exit, where a failure is a warning with the last stderr lines.
    const relay = (stream: NodeJS.ReadableStream, name: 'stdout' | 'stderr') => {
      let rest = '';
      const emit = (line: string) => {
        // PostgreSQL in single-user mode (pg_rewind runs one to finish crash recovery) prompts
        // "backend> " on its standard output: the prompts are not output.
        const l = line.replace(/^(backend> ?)+/, '');
        if (!l.trim()) return;
        log.info(name === 'stderr' ? { output: l, stream: name } : { output: l }, 'hook output');
        if (name !== 'stderr') return;
        errorTail.push(l);
        if (errorTail.length > TAIL_LINES) errorTail.shift();
      };
      stream.setEncoding('utf8');
      stream.on('data', (s: string) => {
        const lines = (rest + s).split('\n');
        rest = lines.pop()!;
        for (const l of lines) if (l) emit(l);
      });
      stream.on('end', () => {
        if (rest) emit(rest);
      });
    };
    relay(child.stdout, 'stdout');
    relay(child.stderr, 'stderr');
    child.on('error', (err) => log.error({ err: err.message }, 'hook could not be started'));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const result = { code, signal, timedOut };
      if (code === 0) log.info(result, 'hook finished');
      else log.warn({ ...result, stderr: errorTail }, 'hook failed');
      done({ ...result, errorTail });
    });
  });
}
