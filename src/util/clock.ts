// The global `performance` is a getter on globalThis, run at every read: the module's is a plain value.
import { performance } from 'node:perf_hooks';

/** An armed timer, to cancel with the clock that made it. */
export type TimerHandle = { readonly id: unknown };

/**
 * Time as a parameter (DESIGN.md rule 10): the system's in production, a fake one in unit tests,
 * which then never sleep and get exact answers.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Milliseconds from an arbitrary start, fractional and never going back: for durations. */
  monotonic(): number;
  /** Runs `f` once after `ms` milliseconds; the timer keeps the process alive only if asked. */
  setTimeout(f: () => void, ms: number, keepAlive?: boolean): TimerHandle;
  clearTimeout(t: TimerHandle | undefined): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimeout(f, ms, keepAlive = false) {
    const t = setTimeout(f, ms);
    if (!keepAlive) t.unref();
    return { id: t };
  },
  clearTimeout(t) {
    if (t) clearTimeout(t.id as NodeJS.Timeout);
  },
};

/**
 * Resolves after `ms` on the clock's time (a fake clock: when the test moves it). `keepAlive`:
 * the wait keeps the process running (someone awaits it to finish work).
 */
export function delay(clock: Pick<Clock, 'setTimeout'>, ms: number, keepAlive = false): Promise<void> {
  return new Promise((resolve) => clock.setTimeout(resolve, ms, keepAlive));
}
