import { readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** One field of a .pcppass line: '*' matches anything; '\' escapes ':' and '\'. */
function splitLine(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === '\\' && i + 1 < line.length) cur += line[++i];
    else if (c === ':' && out.length < 3) {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out;
}

const matches = (pattern: string, value: string): boolean => pattern === '*' || pattern === value;

/**
 * The password for host:port:user from PCPPASSFILE or ~/.pcppass, as pgpool's clients read it:
 * `hostname:port:username:password` lines, '*' wildcards, first match wins, and a file that is
 * not a regular file of mode 0600 or stricter is ignored (with a warning).
 */
export function pcpPassword(host: string, port: number, user: string, warn: (m: string) => void, env = process.env): string | undefined {
  const file = env.PCPPASSFILE || join(homedir(), '.pcppass');
  let st;
  try {
    st = statSync(file);
  } catch {
    return undefined;
  }
  if (!st.isFile()) {
    warn(`password file "${file}" is not a plain file`);
    return undefined;
  }
  if ((st.mode & 0o077) !== 0) {
    warn(`password file "${file}" has group or world access; permissions should be u=rw (0600) or less`);
    return undefined;
  }
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const [h = '', p = '', u = '', pw = ''] = splitLine(line);
    if (matches(h, host) && matches(p, String(port)) && matches(u, user)) return pw;
  }
  return undefined;
}
