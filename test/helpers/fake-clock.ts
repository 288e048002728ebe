import type { Clock, TimerHandle } from '../../src/util/clock';

/** A clock that moves only when the test says: tick() runs the timers that fall due, in order. */
export class FakeClock implements Clock {
  private t: number;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; f: () => void }>();

  constructor(start = 1_000_000) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  monotonic(): number {
    return this.t;
  }

  setTimeout(f: () => void, ms: number): TimerHandle {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), f });
    return { id };
  }

  clearTimeout(h: TimerHandle | undefined): void {
    if (h) this.timers.delete(h.id as number);
  }

  /** Moves time on by `ms`, running each timer at its own time (earliest first). */
  tick(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: [number, { at: number; f: () => void }] | undefined;
      for (const e of this.timers) if (e[1].at <= end && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].f();
    }
    this.t = end;
  }

  get pending(): number {
    return this.timers.size;
  }
}
