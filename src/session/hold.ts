// A held client message: what it waits for, in words for the log and the admin views, and
// when a wait of Sluice's own has lasted too long.
import { assertNever } from '../util/assert-never';

/** Why a session's next client message is held: what it waits for. */
export type HoldReason =
  /** Sluice is paused (sluicectl pause, a switchover). */
  | { readonly kind: 'paused' }
  /** The primary was lost while the session was idle: the new one (a failover hold). */
  | { readonly kind: 'newPrimary' }
  /** A backend connection to a node, being opened for this session. */
  | { readonly kind: 'connecting'; readonly node: number }
  /** The session's settings and statements, being replayed on a node before it serves it. */
  | { readonly kind: 'replaying'; readonly node: number }
  /** A standby's replay position, asked before a read (read_your_writes). */
  | { readonly kind: 'checkingLag'; readonly node: number }
  /** A node that still owes replies (the message's answer must come after them). */
  | { readonly kind: 'nodeAnswering'; readonly node: number }
  /** A command Sluice answers itself (SHOW POOL_*, PGPOOL ...), being answered. */
  | { readonly kind: 'answering'; readonly command: string }
  /** The volatility of functions the statement calls, asked of the primary. */
  | { readonly kind: 'functionLookup'; readonly names: readonly string[] };

export type HoldKind = HoldReason['kind'];

/** What a held message waits for, in words for the log. */
export function describeHold(r: HoldReason): string {
  switch (r.kind) {
    case 'paused':
      return 'Sluice to be resumed';
    case 'newPrimary':
      return 'the new primary';
    case 'connecting':
      return `a connection to node ${r.node}`;
    case 'replaying':
      return `the session's state to be replayed on node ${r.node}`;
    case 'checkingLag':
      return `node ${r.node}'s replay position`;
    case 'nodeAnswering':
      return `node ${r.node} to finish answering`;
    case 'answering':
      return `Sluice's answer to ${r.command}`;
    case 'functionLookup':
      return `the volatility of ${r.names.join(', ')}`;
    default:
      return assertNever(r);
  }
}

/**
 * Holds that wait on something outside Sluice with a bound of its own: an operator's pause, a
 * failover, a connection being made (connect_timeout). The others end when a node answers or when
 * Sluice's own work ends; held with no node owing anything, they are stuck.
 */
const WAITS_OUTSIDE: ReadonlySet<HoldKind> = new Set<HoldKind>(['paused', 'newPrimary', 'connecting']);

/** A held message is reported once it has waited this long for a reason of Sluice's own. */
export const HELD_TOO_LONG_MS = 5_000;

/**
 * The hold on one client message: when it began (a message decided again and held again keeps its
 * first time) and why it waits now.
 */
export class Hold {
  /** Reported already (once per message). */
  reported = false;

  constructor(
    public reason: HoldReason,
    readonly since: number,
  ) {}

  /**
   * Stuck: held past HELD_TOO_LONG_MS for an internal reason while no node owes the session
   * anything (so no reply will come to wake it).
   */
  stuck(now: number, nodeOwes: boolean): boolean {
    return !nodeOwes && !WAITS_OUTSIDE.has(this.reason.kind) && now - this.since >= HELD_TOO_LONG_MS;
  }
}
