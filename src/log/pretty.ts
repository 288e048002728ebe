import { Writable } from 'node:stream';

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
/** Fields every line has, or that the line's start already shows. */
const SHOWN = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'name', 'component']);

function value(v: unknown): string {
  if (typeof v === 'string') return /[\s"=]/.test(v) || v === '' ? JSON.stringify(v) : v;
  return JSON.stringify(v);
}

/** One pino JSON line as a person reads it: time, level, component, message, then key=value. */
export function prettyLine(line: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const time = new Date(typeof o.time === 'number' ? o.time : Date.now()).toISOString().slice(11, 23);
  const level = (LEVEL_NAMES[o.level as number] ?? String(o.level)).padEnd(5);
  const component = o.component ? `[${String(o.component)}] ` : '';
  const rest = Object.entries(o)
    .filter(([k]) => !SHOWN.has(k))
    .map(([k, v]) => `${k}=${value(v)}`)
    .join(' ');
  return `${time} ${level} ${component}${String(o.msg ?? '')}${rest ? `  ${rest}` : ''}`;
}

/**
 * pino's destination when stdout is a terminal: the same records (secrets already redacted by
 * pino), one readable line each. A pipe or a file gets the JSON lines unchanged.
 */
export function prettyStream(out: NodeJS.WritableStream): Writable {
  let pending = '';
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      pending += chunk.toString('utf8');
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      if (lines.length > 0) out.write(lines.map((l) => `${prettyLine(l)}\n`).join(''));
      done();
    },
  });
}
