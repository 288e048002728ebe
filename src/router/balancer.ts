import type { RedirectRule } from '../config/patterns';
import type { Rng } from '../util/rng';

/** What choosing a node needs to know about one node right now. */
export interface NodeView {
  readonly id: number;
  readonly weight: number;
  readonly up: boolean;
  readonly primary: boolean;
  /** Replication delay over the configured threshold (never true for the primary). */
  readonly delayed: boolean;
  /** Delay in bytes (or ms when delay_threshold_by_time is used); 0 for the primary. */
  readonly delay: number;
}

/** Weighted random choice (pgpool's select_load_balancing_node()); null when no node qualifies. */
export function weightedChoice(nodes: readonly NodeView[], rng: Rng): number | null {
  let total = 0;
  for (const n of nodes) if (n.up && n.weight > 0) total += n.weight;
  if (total <= 0) return null;
  let r = rng() * total;
  let last: number | null = null;
  for (const n of nodes) {
    if (!n.up || n.weight <= 0) continue;
    last = n.id;
    r -= n.weight;
    if (r < 0) return n.id;
  }
  return last;
}

/**
 * The session's load-balance node. A matching redirect rule sends the session to its target
 * with probability `ratio`; otherwise the choice is among the other nodes (or the primary when
 * the target was 'standby'), as pgpool does.
 */
export function chooseLoadBalanceNode(nodes: readonly NodeView[], rule: RedirectRule | null, rng: Rng): number | null {
  const primary = nodes.find((n) => n.primary && n.up);
  if (!rule) return weightedChoice(nodes, rng);
  const hit = rng() < rule.ratio;
  const standbys = nodes.filter((n) => !n.primary);
  if (rule.target === 'primary') {
    if (hit && primary) return primary.id;
    return weightedChoice(standbys, rng) ?? primary?.id ?? null;
  }
  if (rule.target === 'standby') {
    if (hit) return weightedChoice(standbys, rng) ?? primary?.id ?? null;
    return primary?.id ?? null;
  }
  const target = nodes.find((n) => n.id === rule.target && n.up);
  if (hit && target) return target.id;
  return weightedChoice(nodes.filter((n) => n.id !== rule.target), rng) ?? weightedChoice(nodes, rng);
}

/**
 * Where a read for this load-balance node actually goes: the node itself when it is up and not
 * delayed; else, with prefer_lower_delay_standby, the least-delayed standby with weight > 0;
 * else the primary.
 */
export function readNode(nodes: readonly NodeView[], lbNode: number, preferLowerDelay: boolean): number | null {
  const lb = nodes.find((n) => n.id === lbNode);
  if (lb && lb.up && !lb.delayed) return lb.id;
  const primary = nodes.find((n) => n.primary && n.up)?.id ?? null;
  if (!preferLowerDelay) return primary;
  let best: NodeView | null = null;
  for (const n of nodes) {
    if (n.primary || !n.up || n.weight <= 0) continue;
    if (!best || n.delay < best.delay) best = n;
  }
  return best && !best.delayed ? best.id : (primary ?? best?.id ?? null);
}

/** The first rule whose pattern matches the value, as pgpool applies each list. */
export function matchRedirect(rules: readonly RedirectRule[], value: string | undefined): RedirectRule | null {
  if (value === undefined) return null;
  return rules.find((r) => r.pattern.test(value)) ?? null;
}
