/** What the client_idle_limit timer reads from its session. */
export interface IdleLimitHost {
  /** The session is still serving (a closed or starting one is not timed). */
  active(): boolean;
  /** A statement is in flight: a client waiting for its answer is not idle. */
  busy(): boolean;
  lastActivity(): number;
  expire(): void;
  /** Keeps the current timer so the session can clear it when it closes. */
  timer(t: NodeJS.Timeout): void;
}

/** client_idle_limit: a client silent that long while nothing is in flight is disconnected. */
export function armIdleLimit(limitMs: number, h: IdleLimitHost): void {
  if (limitMs <= 0) return;
  const check = () => {
    if (!h.active()) return;
    const busy = h.busy();
    const idleFor = Date.now() - h.lastActivity();
    if (!busy && idleFor >= limitMs) {
      h.expire();
      return;
    }
    const t = setTimeout(check, busy ? limitMs : limitMs - idleFor);
    t.unref();
    h.timer(t);
  };
  const t = setTimeout(check, limitMs);
  t.unref();
  h.timer(t);
}
