import type { BackendConnection } from '../backend/connection';
import type { DatabaseCatalog } from '../cluster/catalog-cache';
import type { RedirectRule } from '../config/patterns';
import type { Logger } from '../log/logger';
import { chooseLoadBalanceNode, matchRedirect } from '../router/balancer';
import type { SessionContext } from './session';
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

  /** The node for the next read: the session's, or a fresh choice per statement. */
  loadBalanceNode(): number | null {
    return this.ctx.routing.statementLevel ? chooseLoadBalanceNode(this.ctx.nodeViews(), this.rule, this.ctx.rng) : this.lbNode;
  }
}
