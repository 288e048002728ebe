#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { ConfigError, loadConfig } from './config/load';
import { importPgpoolConf } from './config/pgpool-import';
import { createLogger } from './log/logger';
import { prettyStream } from './log/pretty';
import { Server, ShutdownMode } from './server';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const VERSION: string = require('../package.json').version;

const USAGE = `usage: sluice -f FILE [-D] [--log-format pretty|json]
                                   run the proxy with that TOML config (the log: lines a person
                                   reads on a terminal, else JSON lines, unless --log-format says)
       sluice --check-config FILE  validate a config and exit
       sluice import-pgpool-conf PGPOOL_CONF [PCP_CONF]
                                   print an equivalent Sluice TOML (what could not be carried
                                   over is listed at its end and on stderr)
       sluice --version`;

/** import-pgpool-conf: the TOML on stdout, what was left out on stderr. */
function importConf(files: string[]): number {
  if (files.length < 1 || files.length > 2) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  const [conf, pcp] = files.map((f) => readFileSync(f, 'utf8'));
  const r = importPgpoolConf(conf!, pcp);
  process.stdout.write(r.toml);
  if (r.skipped.length > 0) process.stderr.write(`sluice: ${r.skipped.length} pgpool parameters not carried over (listed at the end of the output)\n`);
  return 0;
}

interface Args {
  config?: string;
  check?: string;
  discardStatus: boolean;
  version: boolean;
  logFormat?: 'pretty' | 'json';
}

function parseArgs(argv: string[]): Args {
  const a: Args = { discardStatus: false, version: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    if (arg === '-f' || arg === '--config') a.config = value();
    else if (arg === '--check-config') a.check = value();
    else if (arg === '-D' || arg === '--discard-status') a.discardStatus = true;
    else if (arg === '--version' || arg === '-v') a.version = true;
    else if (arg === '--log-format') {
      const f = value();
      if (f !== 'pretty' && f !== 'json') throw new Error(`--log-format is pretty or json, not "${f}"`);
      a.logFormat = f;
    }
    else throw new Error(`unknown argument "${arg}"`);
  }
  return a;
}

async function main(): Promise<number> {
  if (process.argv[2] === 'import-pgpool-conf') return importConf(process.argv.slice(3));
  let args: Args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`sluice: ${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (args.version) {
    process.stdout.write(`sluice ${VERSION}\n`);
    return 0;
  }
  const file = args.check ?? args.config;
  if (!file) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  let config;
  try {
    config = loadConfig(file);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`sluice: ${file}: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
  if (args.check) {
    process.stdout.write(`${file}: ok\n`);
    return 0;
  }
  const pretty = (args.logFormat ?? (process.stdout.isTTY ? 'pretty' : 'json')) === 'pretty';
  const log = createLogger(config.log_min_messages, pretty ? prettyStream(process.stdout) : 1);
  for (const key of config.pendingKeys) log.warn({ key }, 'config key accepted but not active yet');
  let stop: (mode: ShutdownMode) => void = () => undefined;
  const server = await Server.start(config, log, { discardStatus: args.discardStatus, configFile: file, stopRequested: (mode) => stop(mode) });
  stop = (mode: ShutdownMode) => {
    server.stop(mode).then(
      () => log.flush(() => process.exit(0)),
      (err) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('smart'));
  process.on('SIGINT', () => stop('fast'));
  process.on('SIGQUIT', () => stop('immediate'));
  process.on('SIGHUP', () => {
    try {
      server.reload();
    } catch {
      // Logged by reload; the running config stays.
    }
  });
  return -1;
}

main().then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err) => {
    process.stderr.write(`sluice: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
