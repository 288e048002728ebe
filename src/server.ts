import type { Server as NetServer, Socket } from 'node:net';
import { AdminCommands } from './admin/commands';
import type { AdminHost, ShutdownMode } from './admin/host';
import { PcpServer } from './admin/pcp/listener';
import { ShowCommands } from './admin/show';
import { loadConfig } from './config/load';
import { BackendStats } from './session/backend-stats';
import { PauseGate } from './session/pause-gate';
import type { SessionInfo } from './session/session-info';
import { boundPort, listenAll } from './util/listen';
import { connectBackend } from './backend/connect';
import type { BackendConnection, NodeAddress } from './backend/connection';
import { CatalogCache } from './cluster/catalog-cache';
import { ClusterManager } from './cluster/manager';
import type { ReplicationMonitor } from './cluster/replication';
import type { Config } from './config/load';
import type { Logger } from './log/logger';
import { PoolSet } from './pool/pool-set';
import { CompiledRouting, routingOptions } from './router/options';
import { loadParser } from './router/parse-tree';
import { ClientError } from './protocol/client-error';
import { SqlState } from './protocol/sqlstate';
import { SessionRegistry } from './session/registry';
import { Session } from './session/session';
import type { SessionContext } from './session/session-context';

export type { ShutdownMode };

// eslint-disable-next-line @typescript-eslint/no-require-imports
const VERSION: string = require('../package.json').version;

/** How long a smart shutdown waits for sessions before it turns fast. */
const SMART_SHUTDOWN_LIMIT_MS = 300_000;

export interface ServerOptions {
  /** -D: forget the saved node statuses. */
  discardStatus?: boolean;
  /** Where the config came from (reload reads it again); none for an inline config. */
  configFile?: string;
  /** A stop asked for over PCP (the CLI exits after it); default: stop this server. */
  stopRequested?: (mode: ShutdownMode) => void;
}

/** The composition root: builds every component from a config snapshot and owns their life. */
export class Server implements AdminHost {
  readonly cluster: ClusterManager;
  readonly startedAt = new Date();
  readonly backendStats: BackendStats;
  readonly gate: PauseGate;
  readonly admission: PauseGate;
  readonly commands: AdminCommands;
  private readonly pcp: PcpServer;
  readonly pool: PoolSet;
  readonly registry: SessionRegistry;
  readonly routing: CompiledRouting;
  readonly catalogs: CatalogCache;
  /** Reads sent to each node (pgpool's select_cnt). */
  readonly selectCount: number[];
  private readonly listeners: NetServer[] = [];
  private readonly sessions_ = new Set<Session>();
  private nextSessionId = 1;
  private stopping: Promise<void> | null = null;

  private constructor(
    readonly config: Config,
    readonly log: Logger,
    private readonly opts: ServerOptions,
  ) {
    this.backendStats = new BackendStats(config.backend.length);
    this.gate = new PauseGate(config.failover_hold_timeout * 1000);
    this.admission = new PauseGate(config.recovery_timeout * 1000, {
      message: 'online recovery is in progress',
      setting: 'recovery_timeout',
      until: 'its second stage did not end',
    });
    this.commands = new AdminCommands(this);
    this.pcp = new PcpServer(this, this.commands, log.child({ component: 'pcp' }));
    this.pool = new PoolSet(
      {
        maxPerNode: config.num_init_children * config.max_pool,
        idleLifetimeMs: config.connection_life_time * 1000,
        resetQueries: config.reset_query_list.split(';').map((q) => q.trim()).filter(Boolean),
        resetTimeoutMs: 10_000,
      },
      log.child({ component: 'pool' }),
    );
    this.registry = new SessionRegistry(config.num_init_children, config.reserved_connections);
    this.routing = routingOptions(config);
    this.catalogs = new CatalogCache(config.relcache_expire * 1000, log.child({ component: 'catalog' }));
    this.selectCount = config.backend.map(() => 0);
    this.cluster = new ClusterManager(
      config,
      (node, user, database, password, timeoutMs) =>
        connectBackend({
          node,
          params: new Map([
            ['user', user],
            ['database', database],
            ['application_name', 'sluice'],
          ]),
          poolKey: '',
          password: password ?? this.passwordFor(user),
          timeoutMs,
        }),
      {
        nodeDown: (id) => this.nodeDown(id),
        primaryFound: (id) => log.info({ primary: id, sessions: this.sessions_.size }, 'sessions continue on the primary'),
      },
      log.child({ component: 'cluster' }),
    );
  }

  static async start(config: Config, log: Logger, opts: ServerOptions = {}): Promise<Server> {
    const s = new Server(config, log, opts);
    await loadParser();
    await s.cluster.start(opts.discardStatus ?? false);
    await s.listen();
    try {
      await s.pcp.start();
    } catch (err) {
      await s.stop('immediate');
      throw err;
    }
    return s;
  }

  /** The port the proxy listens on (useful when the config said 0). */
  get port(): number {
    return boundPort(this.listeners);
  }

  get pcpPort(): number {
    return this.pcp.port;
  }

  sessions(): SessionInfo[] {
    return [...this.sessions_].map((s) => s.info());
  }

  /** Online recovery's second stage: idle sessions leave per client_idle_limit_in_recovery. */
  onlineRecovery(on: boolean): void {
    for (const s of this.sessions_) s.onlineRecovery(on);
  }

  /** A stop asked for over PCP. */
  requestStop(mode: ShutdownMode): void {
    if (this.opts.stopRequested) this.opts.stopRequested(mode);
    else void this.stop(mode);
  }

  /**
   * pcp_reload_config: the file is read and validated again. Applying a changed config while
   * running is the operations issue; until then a valid file is reported and nothing changes.
   */
  reload(): void {
    if (this.opts.configFile) loadConfig(this.opts.configFile);
    this.log.warn({ file: this.opts.configFile }, 'config file is valid; applying changes while running is not built yet (operations issue)');
  }

  get replication(): ReplicationMonitor {
    return this.cluster.replication;
  }

  private passwordFor(user: string): string | undefined {
    return this.config.user.find((u) => u.name === user)?.password;
  }

  private openBackend = (node: NodeAddress, params: ReadonlyMap<string, string>, key: string): Promise<BackendConnection> =>
    connectBackend({ node, params, poolKey: key, password: this.passwordFor(params.get('user') ?? ''), timeoutMs: this.config.connect_timeout });

  /** A node left service: pooled connections to it go, and every session lets go of it. */
  private nodeDown(id: number): void {
    this.pool.discardNode(id);
    for (const s of this.sessions_) s.nodeDown(id);
  }

  private context(): SessionContext {
    return {
      config: this.config,
      pool: this.pool,
      registry: this.registry,
      log: this.log.child({ component: 'session' }),
      routing: this.routing,
      catalogs: this.catalogs,
      rng: Math.random,
      waitForPrimary: (timeoutMs, not) => this.cluster.waitForPrimary(timeoutMs, not),
      node: (id) => this.cluster.topology.nodes[id],
      nodeViews: () => this.cluster.nodeViews(),
      countSelect: (node) => this.selectCount[node]!++,
      replication: this.cluster.replication,
      confirmDown: (node, shutdown) => this.cluster.confirmDown(node, shutdown),
      holdTimeoutMs: this.config.failover_hold_timeout * 1000,
      canFailOver: this.config.backend.length > 1,
      openBackend: this.openBackend,
      gate: this.gate,
      admission: this.admission,
      backendStats: this.backendStats,
      local: new ShowCommands(this, VERSION),
    };
  }

  private async listen(): Promise<void> {
    const ctx = this.context();
    const onConnection = (socket: Socket) => {
      socket.on('error', () => undefined); // the session adds its own; this covers the gap
      if (this.stopping) {
        socket.end(new ClientError('FATAL', SqlState.CannotConnectNow, 'the database system is shutting down').toFrame());
        return;
      }
      const session = new Session(socket, ctx, this.nextSessionId++);
      this.sessions_.add(session);
      socket.once('close', () => this.sessions_.delete(session));
    };
    this.listeners.push(...(await listenAll(this.config.listen_addresses, this.config.port, onConnection)));
    this.log.info({ addresses: this.config.listen_addresses, port: this.port }, 'listening');
  }

  /** Shutdown as pgpool: smart waits for sessions, fast ends them with 57P01, immediate drops. */
  stop(mode: ShutdownMode): Promise<void> {
    if (!this.stopping) this.stopping = this.doStop(mode);
    return this.stopping;
  }

  private async doStop(mode: ShutdownMode): Promise<void> {
    this.log.info({ mode }, 'shutting down');
    this.cluster.stop();
    this.gate.open();
    this.admission.open();
    await this.pcp.stop();
    await Promise.all(this.listeners.map((l) => new Promise((r) => l.close(r))));
    this.registry.rejectWaiters(new ClientError('FATAL', SqlState.AdminShutdown, 'terminating connection due to administrator command'));
    if (mode === 'smart') await this.waitForSessions(SMART_SHUTDOWN_LIMIT_MS);
    const bye = new ClientError('FATAL', SqlState.AdminShutdown, 'terminating connection due to administrator command');
    for (const s of this.sessions_) {
      if (mode === 'immediate') s.close('immediate shutdown');
      else s.fail(bye);
    }
    this.pool.closeAll();
  }

  private waitForSessions(limitMs: number): Promise<void> {
    return new Promise((resolve) => {
      const deadline = Date.now() + limitMs;
      const poll = () => {
        if (this.sessions_.size === 0 || Date.now() >= deadline) resolve();
        else setTimeout(poll, 100);
      };
      poll();
    });
  }
}
