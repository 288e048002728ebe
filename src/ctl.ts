#!/usr/bin/env node
import { createInterface } from 'node:readline';
import { userInfo } from 'node:os';
import { PcpClient, PcpFailure } from './admin/pcp/client';
import { COMMANDS, CtlOptions, UsageError } from './ctl/commands';
import { pcpPassword } from './ctl/pcppass';

const USAGE = `usage: sluicectl COMMAND [N] [options]
commands: ${Object.keys(COMMANDS).join(', ')}
options:  -h HOST (a folder: Unix socket; default /tmp)  -p PORT (9898)  -U USER (the OS user)
          -w never prompt for a password  -W always prompt  -v verbose  -d debug  --json
          -n N node id  -a all  -g graceful  -s/--switchover (promote-node)  -m MODE (stop)
          -P PID (proc-info)  --wait (pause)
password: PCPPASSFILE or ~/.pcppass (hostname:port:username:password, mode 0600), as pgpool's`;

interface Args extends CtlOptions {
  command: string;
  host: string;
  port: number;
  user: string;
  noPassword: boolean;
  prompt: boolean;
  debug: boolean;
}

function parse(argv: string[]): Args {
  const a: Args = {
    command: '', host: '/tmp', port: 9898, user: userInfo().username, noPassword: false, prompt: false, debug: false,
    all: false, graceful: false, switchover: false, mode: 'smart', wait: false, verbose: false, json: false,
  };
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const x = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${x} needs a value`);
      return v;
    };
    const int = (v: string) => {
      if (!/^-?\d+$/.test(v)) throw new UsageError(`${x}: "${v}" is not a number`);
      return Number.parseInt(v, 10);
    };
    if (x === '-h' || x === '--host') a.host = value();
    else if (x === '-p' || x === '--port') a.port = int(value());
    else if (x === '-U' || x === '--username') a.user = value();
    else if (x === '-w' || x === '--no-password') a.noPassword = true;
    else if (x === '-W' || x === '--password') a.prompt = true;
    else if (x === '-v' || x === '--verbose') a.verbose = true;
    else if (x === '-d' || x === '--debug') a.debug = true;
    else if (x === '--json') a.json = true;
    else if (x === '-n' || x === '--node-id') a.node = int(value());
    else if (x === '-P' || x === '--process-id') a.pid = int(value());
    else if (x === '-a' || x === '--all') a.all = true;
    else if (x === '-g' || x === '--gracefully') a.graceful = true;
    else if (x === '-s' || x === '--switchover') a.switchover = true;
    else if (x === '-m' || x === '--mode') a.mode = value();
    else if (x === '--wait') a.wait = true;
    else if (x.startsWith('-') && x !== '-1') throw new UsageError(`unknown option "${x}"`);
    else positional.push(x);
  }
  a.command = positional.shift() ?? '';
  if (!(a.command in COMMANDS)) throw new UsageError(a.command ? `unknown command "${a.command}"` : 'no command given');
  const n = positional.shift();
  if (n !== undefined) {
    if (!/^-?\d+$/.test(n)) throw new UsageError(`"${n}" is not a number`);
    if (a.command === 'proc-info') a.pid = Number(n);
    else a.node = Number(n);
  }
  if (a.port < 1024 || a.port > 65535) throw new UsageError(`Invalid port number "${a.port}", must be between 1024 and 65535`);
  return a;
}

/** Reads one line; an input that ends first (no terminal, nothing piped) is an error, not a hang. */
function ask(question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: process.stdin.isTTY });
  return new Promise((resolve, reject) => {
    let answered = false;
    rl.question(question, (v) => {
      answered = true;
      rl.close();
      resolve(v);
    });
    rl.once('close', () => answered || reject(new Error('no password was given (the input ended)')));
  });
}

/**
 * -W prompts; else .pcppass (looked up as localhost for a socket folder, as pgpool does); -w:
 * empty. Without either and without a terminal there is nobody to ask: a script gets an error
 * and exit 1, not a prompt it cannot see.
 */
async function password(a: Args): Promise<string> {
  if (!a.prompt) {
    const host = a.host === '' || a.host === '/tmp' ? 'localhost' : a.host;
    const found = pcpPassword(host, a.port, a.user, (m) => process.stderr.write(`WARNING: ${m}\n`));
    if (found !== undefined) return found;
    if (a.noPassword) return '';
    if (!process.stdin.isTTY) {
      throw new Error(`no password for PCP user "${a.user}" at ${host}:${a.port}: add a line host:port:user:password to PCPPASSFILE (or ~/.pcppass), or run with -W on a terminal`);
    }
  }
  return ask('Password: ');
}

async function main(): Promise<number> {
  let a: Args;
  try {
    a = parse(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`sluicectl: ${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  let client: PcpClient | undefined;
  try {
    client = await PcpClient.open({
      host: a.host,
      port: a.port,
      user: a.user,
      password: await password(a),
      debug: a.debug ? (l) => process.stdout.write(l + '\n') : undefined,
      // Progress of long commands (recovery-node) on stderr: stdout keeps pgpool's layout.
      notice: (m) => process.stderr.write(`${m}\n`),
    });
    const out = await COMMANDS[a.command]!(client, a, a.command);
    process.stdout.write(a.json ? JSON.stringify(out.json, null, 2) + '\n' : out.text);
    return 0;
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`sluicectl: ${e.message}\n`);
      return 2;
    }
    if (e instanceof PcpFailure) {
      if (a.json) process.stdout.write(JSON.stringify({ command: a.command, ok: false, severity: e.severity, message: e.message, detail: e.detail }) + '\n');
      process.stderr.write(`${e.severity}:  ${e.message}\n${e.detail !== undefined ? `DETAIL:  ${e.detail}\n` : ''}\n`);
      return 1;
    }
    process.stderr.write(`ERROR:  ${(e as Error).message}\n\n`);
    return 1;
  } finally {
    client?.close();
  }
}

void main().then((code) => process.exit(code));
