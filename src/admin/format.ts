// Value formats of pgpool's admin output (pgpool.md b.1, c.5).

const pad = (n: number): string => String(n).padStart(2, '0');

/** `%F %T` in local time, or '' when never. */
export function timestamp(d: Date | null | undefined): string {
  if (!d) return '';
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** C's `%f`: six decimals. */
export const fixed6 = (v: number): string => v.toFixed(6);

/** Epoch seconds, as PCP's NodeInfo sends the last status change. */
export const epochSeconds = (d: Date): string => String(Math.floor(d.getTime() / 1000));
