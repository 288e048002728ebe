/** An armed timer, to cancel with the clock that made it. */
export type TimerHandle = { readonly id: unknown };

/**
 * Time as a parameter (DESIGN.md rule 10): the system's in production, a fake one in unit tests,
 * which then never sleep and get exact answers.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Runs `f` once after `ms` milliseconds; the timer does not keep the process alive. */
  setTimeout(f: () => void, ms: number): TimerHandle;
  clearTimeout(t: TimerHandle | undefined): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(f, ms) {
    const t = setTimeout(f, ms);
    t.unref();
    return { id: t };
  },
  clearTimeout(t) {
    if (t) clearTimeout(t.id as NodeJS.Timeout);
  },
};
