// event_command (repmgr's event_notification_command): a command run on every cluster event,
// one at a time and in the order the events happened, so that operators can page or record
// without reading logs. With use_watchdog only the leader runs it (one call per event for the
// whole group); a single instance runs it itself.
import type { Logger } from '../log/logger';
import { expandLetters, runScript } from './hooks';

/** The events, by the names the command receives. */
export type ClusterEventName = 'failover' | 'switchover' | 'new_primary' | 'follow' | 'failback' | 'recovery' | 'leader_change';

export interface ClusterEvent {
  event: ClusterEventName;
  /** The node it concerns; -1 for none (a leader change). */
  node: number;
  /** The cluster's epoch after the event (Topology.epoch). */
  epoch: number;
  time: Date;
  ok: boolean;
  detail: string;
}

/** repmgr's placeholders (%n %e %s %t %d) and Sluice's %E, each with its environment variable. */
const PLACEHOLDERS: Record<string, [(e: ClusterEvent) => string, string]> = {
  e: [(e) => e.event, 'SLUICE_EVENT'],
  n: [(e) => String(e.node), 'SLUICE_EVENT_NODE_ID'],
  s: [(e) => (e.ok ? '1' : '0'), 'SLUICE_EVENT_SUCCESS'],
  t: [(e) => e.time.toISOString(), 'SLUICE_EVENT_TIME'],
  d: [(e) => e.detail, 'SLUICE_EVENT_DETAIL'],
  E: [(e) => String(e.epoch), 'SLUICE_EPOCH'],
};

/** The command line with each placeholder as one shell-quoted word; %% is a percent sign. */
export function expandEventPlaceholders(command: string, e: ClusterEvent): string {
  return expandLetters(command, (c) => PLACEHOLDERS[c]?.[0](e));
}

export function eventEnvironment(e: ClusterEvent): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [value, name] of Object.values(PLACEHOLDERS)) env[name] = value(e);
  return env;
}

export interface EventCommandOptions {
  /** event_command as the config says now ('' = none). */
  command(): string;
  cwd(): string;
  timeoutMs(): number;
}

/** Runs event_command for each event, strictly one after another. */
export class EventCommand {
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly opts: EventCommandOptions,
    private readonly log: Logger,
  ) {}

  notify(e: ClusterEvent): void {
    const line = this.opts.command();
    if (!line) return;
    this.chain = this.chain
      .then(async () => {
        await runScript('event_command', expandEventPlaceholders(line, e), eventEnvironment(e), { cwd: this.opts.cwd(), timeoutMs: this.opts.timeoutMs(), log: this.log });
      })
      // One event's failure to start is logged; the next events still run.
      .catch((err: Error) => this.log.error({ event: e.event, err: err.message }, 'event_command could not be run'));
  }

  /** Resolves when every event notified so far has been handled. */
  drained(): Promise<void> {
    return this.chain;
  }
}

/** The event a cluster event of the status page is, by its kind (and a switchover's words). */
export function eventName(kind: 'failover' | 'failback' | 'primary' | 'follow' | 'recovery', message: string): ClusterEventName {
  switch (kind) {
    case 'failover':
      return message.includes('(switchover)') ? 'switchover' : 'failover';
    case 'primary':
      return 'new_primary';
    default:
      return kind;
  }
}
