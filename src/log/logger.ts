import pino, { Logger } from 'pino';

export type { Logger };

const LEVELS = { debug: 'debug', info: 'info', warning: 'warn', error: 'error' } as const;

/** pino's name for a log_min_messages value. */
export function pinoLevel(level: keyof typeof LEVELS): string {
  return LEVELS[level];
}

/**
 * The root logger: JSON lines on stdout, batched asynchronously so that logging never blocks the
 * data path; secrets redacted wherever they appear in a logged object.
 */
export function createLogger(level: keyof typeof LEVELS, destination: pino.DestinationStream | number = 1): Logger {
  const dest = typeof destination === 'number' ? pino.destination({ dest: destination, sync: false, minLength: 0 }) : destination;
  return pino(
    {
      name: 'sluice',
      level: LEVELS[level],
      base: { pid: process.pid },
      redact: { paths: ['password', '*.password', 'secret', '*.secret', 'params.password'], censor: '[redacted]' },
      serializers: { err: pino.stdSerializers.err },
    },
    dest,
  );
}
