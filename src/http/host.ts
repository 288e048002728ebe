import type { AdminHost } from '../admin/host';
import type { RecentEvent } from '../metrics/events';
import type { Metrics } from '../metrics/metrics';
import type { NodePoolCounts } from '../pool/pool-set';

/** What the HTTP endpoints read (the server implements it). */
export interface HttpHost extends AdminHost {
  readonly metrics: Metrics;
  readonly version: string;
  /** Listening and not shutting down. */
  readonly serving: boolean;
  recentEvents(): readonly RecentEvent[];
  /** Client sessions open now (what sessions() lists, without making the list). */
  readonly sessionCount: number;
  /** Backend connections per node: idle, in use, opening. */
  poolCounts(): NodePoolCounts[];
}
