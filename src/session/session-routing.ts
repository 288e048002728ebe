import type { BackendConnection } from '../backend/connection';
import type { DatabaseCatalog } from '../cluster/catalog-cache';
import type { RedirectRule } from '../config/patterns';
import type { Logger } from '../log/logger';
import { chooseLoadBalanceNode, matchRedirect, NodeView } from '../router/balancer';
import type { SessionContext } from './session-context';
import type { StartupRequest } from './startup';

/**
 * What routing fixes for a session when it starts: its load-balance node (pgpool's
 * select_load_balancing_node(), redirect lists first) and its database's catalog facts.
 */
export class SessionRouting {
  lbNode: number | null = null;
  catalog: DatabaseCatalog | null = null;
  private rule: RedirectRule | null = null;

  constructor(
    private readonly ctx: SessionContext,
    private readonly log: Logger,
  ) {}

  async load(req: StartupRequest, conn: BackendConnection): Promise<void> {
    const r = this.ctx.routing;
    this.rule = matchRedirect(r.appNameRedirects, req.params.get('application_name')) ?? matchRedirect(r.databaseRedirects, req.database);
    this.lbNode = chooseLoadBalanceNode(this.ctx.nodeViews(), this.rule, this.ctx.rng);
    this.catalog = this.ctx.catalogs.get(req.database);
    if (this.catalog) return;
    try {
      this.catalog = await this.ctx.catalogs.load(req.database, conn, this.ctx.config.connect_timeout || 10_000);
    } catch (err) {
      this.log.warn({ err: (err as Error).message, database: req.database }, 'cannot read function volatility; reads that call functions go to the primary');
    }
  }

  /**
   * The node for the next read: a fresh choice per statement, or the session's, chosen again
   * when its node left service or failed this session (`avoid`).
   */
  loadBalanceNode(avoid: ReadonlyMap<number, number>): number | null {
    const views = this.ctx.nodeViews();
    if (this.ctx.routing.statementLevel) return chooseLoadBalanceNode(usable(views, avoid), this.rule, this.ctx.rng);
    const lb = this.lbNode;
    if (lb !== null && views[lb]?.up && !avoid.has(lb)) return lb;
    this.lbNode = chooseLoadBalanceNode(usable(views, avoid), this.rule, this.ctx.rng);
    if (lb !== null) this.log.debug({ from: lb, to: this.lbNode }, 'load-balance node changed');
    return this.lbNode;
  }
}

/** The views with the avoided nodes marked down (copied only when there are some). */
function usable(views: readonly NodeView[], avoid: ReadonlyMap<number, number>): readonly NodeView[] {
  return avoid.size === 0 ? views : views.map((v) => (avoid.has(v.id) ? { ...v, up: false } : v));
}
