/** What happened to the cluster or to Sluice, as the status page lists it. */
export type EventKind = 'failover' | 'failback' | 'primary' | 'follow' | 'recovery' | 'reload' | 'shutdown' | 'watchdog';

export interface RecentEvent {
  time: Date;
  kind: EventKind;
  /** The node it concerns, if any. */
  node: number | null;
  message: string;
}

/**
 * The last events, newest last: enough for an operator to see what just happened without
 * reading the logs, and bounded so a flapping node cannot grow it.
 */
export class RecentEvents {
  private readonly items: RecentEvent[] = [];

  constructor(private readonly limit = 50) {}

  add(kind: EventKind, node: number | null, message: string): void {
    this.items.push({ time: new Date(), kind, node, message });
    if (this.items.length > this.limit) this.items.splice(0, this.items.length - this.limit);
  }

  list(): readonly RecentEvent[] {
    return this.items;
  }
}
