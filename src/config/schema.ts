import { bool, INT_MAX, int, num, oneOf, optInt, optStr, SpecTable, str, strList } from './spec';

// Every config key (CONTRACT.md), pgpool-II's names and meanings. Durations are seconds unless
// the name says otherwise (connect_timeout is milliseconds, as in pgpool).

export const topLevel = {
  listen_addresses: str('localhost', { reload: 'restart' }),
  port: int(9999, 0, 65535, { reload: 'restart' }),
  pcp_listen_addresses: str('localhost', { reload: 'restart' }),
  pcp_port: int(9898, 0, 65535, { reload: 'restart' }),
  /** pgpool's: the PCP Unix socket's folder (.s.PGSQL.<pcp_port>); '' = none. */
  pcp_socket_dir: str('/tmp', { reload: 'restart' }),
  http_listen_addresses: str('localhost', { reload: 'restart' }),
  /** 0 disables the HTTP endpoints. */
  http_port: int(9899, 0, 65535, { reload: 'restart' }),
  work_dir: str('/tmp', { reload: 'restart' }),

  num_init_children: int(32, 1, 100000, { reload: 'restart' }),
  max_pool: int(4, 1, 100000, { reload: 'restart' }),
  reserved_connections: int(0, 0, 100000, { reload: 'restart' }),
  /**
   * PgBouncer's: session (a client keeps its backend connections for its whole life, pgpool's
   * way) or transaction (a client borrows a connection per transaction; docs/pooling.md).
   */
  pool_mode: oneOf(['session', 'transaction'] as const, 'session', { reload: 'restart' }),
  /** PgBouncer's: in transaction mode, server connections per (node, database, user). */
  default_pool_size: int(20, 1, 100000, { reload: 'restart' }),
  /** PgBouncer's: in transaction mode, the most client connections (num_init_children's role). */
  max_client_conn: int(10000, 1, 1000000, { reload: 'restart' }),
  /** PgBouncer's: seconds a client waits for a server connection before it is given an error; 0 = forever. */
  query_wait_timeout: int(120, 0, INT_MAX),
  /**
   * PgBouncer's: in transaction mode, the most protocol-level prepared statements Sluice keeps
   * on one server connection (the least recently used is closed past it; a client's statement
   * is parsed again where it runs next); 0 = no limit.
   */
  max_prepared_statements: int(200, 0, INT_MAX),
  connection_life_time: int(0, 0, INT_MAX),
  client_idle_limit: int(0, 0, INT_MAX),
  authentication_timeout: int(60, 0, INT_MAX),
  reset_query_list: str('ABORT; DISCARD ALL'),
  max_message_size: int(1073741823, 1024, 1073741823),

  load_balance_mode: bool(true),
  statement_level_load_balance: bool(false),
  disable_load_balance_on_write: oneOf(
    ['off', 'transaction', 'trans_transaction', 'always', 'dml_adaptive'] as const,
    'transaction',
  ),
  read_only_function_list: str(''),
  write_function_list: str(''),
  primary_routing_query_pattern_list: str(''),
  database_redirect_preference_list: str(''),
  app_name_redirect_preference_list: str(''),
  allow_sql_comments: bool(false),
  // pgpool's: catalog and trace both track the session's own CREATE TEMP TABLE (docs/routing.md).
  check_temp_table: oneOf(['catalog', 'trace', 'none'] as const, 'catalog'),
  check_unlogged_table: bool(true),
  /** Sluice's: reads of pg_catalog / information_schema go to the primary (pgpool always does). */
  check_system_catalog: bool(true),
  /** pgpool's relcache_expire: seconds a cached function volatility lives; 0 = until reload. */
  relcache_expire: int(0, 0, INT_MAX),
  /** Sluice's: after a commit that wrote, reads wait for a standby that replayed it (docs/routing.md). */
  read_your_writes: bool(false),
  /** Sluice's: whose writes a read must see: any session's (cluster) or its own session's. */
  read_your_writes_scope: oneOf(['cluster', 'session'] as const, 'cluster'),

  health_check_period: int(10, 0, INT_MAX),
  health_check_timeout: int(20, 0, INT_MAX),
  health_check_user: str('postgres'),
  health_check_password: str(''),
  health_check_database: str('postgres'),
  health_check_max_retries: int(0, 0, INT_MAX),
  health_check_retry_delay: int(1, 0, INT_MAX),
  connect_timeout: int(10000, 0, INT_MAX),

  sr_check_period: int(10, 0, INT_MAX),
  sr_check_user: str('postgres'),
  sr_check_password: str(''),
  sr_check_database: str('postgres'),
  delay_threshold: int(0, 0, Number.MAX_SAFE_INTEGER),
  delay_threshold_by_time: int(0, 0, INT_MAX),
  prefer_lower_delay_standby: bool(false),

  failover_command: str(''),
  failback_command: str(''),
  follow_primary_command: str(''),
  failover_on_backend_error: bool(true),
  failover_on_backend_shutdown: bool(false),
  search_primary_node_timeout: int(300, 0, INT_MAX),
  auto_failback: bool(false),
  /** Sluice's: seconds a statement (or a new session) waits for a primary during a failover. */
  failover_hold_timeout: int(60, 0, INT_MAX),
  /** Sluice's: seconds a failover, failback or follow_primary command may run before it is killed. */
  hook_timeout: int(300, 0, INT_MAX),
  /**
   * repmgr's event_notification_command: run on every cluster event (failover, switchover,
   * new_primary, follow, failback, recovery, leader_change), by the watchdog leader alone.
   */
  event_command: str(''),

  recovery_user: str('postgres'),
  recovery_password: str(''),
  recovery_1st_stage_command: str(''),
  recovery_2nd_stage_command: str(''),
  remote_start_command: str(''),
  recovery_timeout: int(90, 1, INT_MAX),
  client_idle_limit_in_recovery: int(0, -1, INT_MAX),
  /** pgpool 4.7's: the database recovery connects to on the primary (pgpool_recovery lives there). */
  recovery_database: str('postgres'),
  /** Sluice's: run the stages and the remote start through pgpool's pgpool_recovery extension. */
  recovery_via_pgpool_recovery: bool(false),

  log_min_messages: oneOf(['debug', 'info', 'warning', 'error'] as const, 'info'),
  log_statement: bool(false),
  /** pgpool's: each client message's kind and length (never its content). */
  log_client_messages: bool(false),
  log_per_node_statement: bool(false),
  notice_per_node_statement: bool(false),

  // Client authentication ([[hba]] and [[user]] hold the rest). auth_query is PgBouncer's:
  // secrets looked up on the primary as auth_user; '' auth_user turns it off.
  auth_user: str(''),
  auth_password: str(''),
  auth_dbname: str('postgres'),
  auth_query: str(
    'SELECT rolpassword FROM pg_catalog.pg_authid WHERE rolname OPERATOR(pg_catalog.=) $1 AND rolcanlogin ' +
      'AND (rolvaliduntil IS NULL OR rolvaliduntil OPERATOR(pg_catalog.>) pg_catalog.now())',
  ),
  /** Method "password" sends the password in clear: only over TLS unless this is set. */
  allow_password_without_ssl: bool(false),

  // Client-facing TLS, pgpool's and PostgreSQL's names. Hot: a reload loads new files (a
  // certificate rotation), and refuses the reload if they cannot be read.
  ssl: bool(false),
  ssl_cert: str(''),
  ssl_key: str(''),
  /** CA for client certificates: a client that presents one must be verified by it. */
  ssl_ca_cert: str(''),
  ssl_crl_file: str(''),
  ssl_ciphers: str('HIGH:MEDIUM:+3DES:!aNULL'),
  ssl_min_protocol_version: oneOf(['TLSv1.2', 'TLSv1.3'] as const, 'TLSv1.2'),
  ssl_max_protocol_version: oneOf(['', 'TLSv1.2', 'TLSv1.3'] as const, ''),
  ssl_prefer_server_ciphers: bool(true),
  /** Sluice's: TLS to the nodes, libpq's sslmode values; root cert '' = the system's CAs. */
  backend_sslmode: oneOf(['disable', 'prefer', 'require', 'verify-ca', 'verify-full'] as const, 'disable'),
  backend_sslrootcert: str(''),
  backend_sslcert: str(''),
  backend_sslkey: str(''),
  /** Sluice's: CIDR list of load balancers whose PROXY v1/v2 header is believed ('' = none). */
  proxy_protocol_trusted_addresses: str('', { reload: 'restart' }),

  // Several instances as one, through etcd (docs/watchdog.md): pgpool's watchdog names where the
  // meaning is pgpool's, Patroni's timing (ttl, loop_wait, retry_timeout) under wd_ names.
  use_watchdog: bool(false, { reload: 'restart' }),
  /** etcd client URLs (http://host:2379), tried in turn. */
  etcd_endpoints: strList([], { reload: 'restart' }),
  /** Patroni's etcd3 cacert: the CA (PEM) that signed etcd's certificate ('' = the system's CAs). */
  etcd_cacert: str('', { reload: 'restart' }),
  /** Patroni's etcd3 cert and key: this instance's client certificate (etcd --client-cert-auth). */
  etcd_cert: str('', { reload: 'restart' }),
  etcd_key: str('', { reload: 'restart' }),
  /** Patroni's etcd3 username and password: an etcd user (etcd auth enabled). */
  etcd_username: str('', { reload: 'restart' }),
  etcd_password: str('', { reload: 'restart' }),
  /** The etcd key prefix the instances of one group share. */
  watchdog_cluster_name: str('sluice', { reload: 'restart' }),
  /** This instance's member name; '' = "<wd_hostname>:<port>". */
  wd_name: str('', { reload: 'restart' }),
  /** Where the other instances and operators reach this one; '' = the machine's host name. */
  wd_hostname: str('', { reload: 'restart' }),
  /** pgpool's: the live instance with the highest priority stands for leader. */
  wd_priority: int(1, 0, INT_MAX, { reload: 'restart' }),
  /** Patroni's ttl: seconds the member and leader keys outlive their last renewal. */
  wd_lease_ttl: int(10, 2, 3600, { reload: 'restart' }),
  /** Patroni's loop_wait: seconds between two rounds (renew the lease, read the group). */
  wd_loop_wait: int(1, 1, 3600, { reload: 'restart' }),
  /** Patroni's retry_timeout: seconds a round's etcd request may take. */
  wd_retry_timeout: int(3, 1, 3600, { reload: 'restart' }),
  /**
   * pgpool's: failover only with the group's quorum (this instance reaches etcd). false: one
   * instance's vote is enough, and an instance cut off from etcd fails over on its own checks.
   */
  failover_when_quorum_exists: bool(true, { reload: 'restart' }),
  /** pgpool's: a node is failed over only when a majority of the live instances see it down. */
  failover_require_consensus: bool(true, { reload: 'restart' }),
  /** pgpool's: with an even number of live instances, half of them are enough. */
  enable_consensus_with_half_votes: bool(false, { reload: 'restart' }),
  /** pgpool's: run when this instance becomes the leader (bring up a virtual IP, say). */
  wd_escalation_command: str(''),
  /** pgpool's: run when this instance stops being the leader. */
  wd_de_escalation_command: str(''),
} satisfies SpecTable;

export const backendKeys = {
  hostname: str('', { required: true, reload: 'restart' }),
  port: int(5432, 1, 65535, { required: true, reload: 'restart' }),
  weight: num(1, 0, 1e9),
  data_directory: str(''),
  flag: str('ALLOW_TO_FAILOVER'),
  application_name: str(''),
  // Per-node health check settings (pgpool's health_check_period0 and so on); unset = top level.
  health_check_period: optInt(0, INT_MAX),
  health_check_timeout: optInt(0, INT_MAX),
  health_check_user: optStr(),
  health_check_password: optStr(),
  health_check_database: optStr(),
  health_check_max_retries: optInt(0, INT_MAX),
  health_check_retry_delay: optInt(0, INT_MAX),
} satisfies SpecTable;

export const pcpUserKeys = {
  name: str('', { required: true }),
  md5: str('', { required: true }),
} satisfies SpecTable;

export const userKeys = {
  name: str('', { required: true }),
  password: str('', { required: true }),
} satisfies SpecTable;

/**
 * [[pool]]: pool_mode for some databases and users (PgBouncer sets it per database and per user);
 * the first entry that matches a client's (database, user) decides, else the global pool_mode.
 */
export const poolKeys = {
  database: str('all'),
  user: str('all'),
  pool_mode: oneOf(['session', 'transaction'] as const, 'session', { required: true }),
} satisfies SpecTable;

export const hbaKeys = {
  type: oneOf(['local', 'host', 'hostssl', 'hostnossl'] as const, 'host'),
  database: str('all'),
  user: str('all'),
  address: str(''),
  // Required: a forgotten method must not quietly mean trust.
  method: oneOf(['trust', 'reject', 'password', 'md5', 'scram-sha-256'] as const, 'reject', { required: true }),
} satisfies SpecTable;

/** The arrays of tables, with the spec of their entries. */
export const sections = {
  backend: backendKeys,
  pcp_user: pcpUserKeys,
  user: userKeys,
  hba: hbaKeys,
  pool: poolKeys,
} as const;

export const BACKEND_FLAGS = ['ALLOW_TO_FAILOVER', 'DISALLOW_TO_FAILOVER', 'ALWAYS_PRIMARY'] as const;
