import type { BackendConnection, NodeAddress } from '../backend/connection';
import { runParameterised } from '../backend/query';
import type { Logger } from '../log/logger';
import type { Secret } from '../protocol/auth/secret';
import { Errors } from '../protocol/errors';
import { SqlState } from '../protocol/sqlstate';

/** What the client hears when the lookup itself failed: the cause is for the log, not for it. */
const lookupFailed = Errors.credentialsLookupFailed;

export interface AuthQuerySettings {
  readonly query: string;
  readonly user: string;
  readonly database: string;
  readonly secret: Secret | undefined;
  readonly timeoutMs: number;
}

export interface AuthQueryHost {
  settings(): AuthQuerySettings;
  waitForPrimary(timeoutMs: number): Promise<NodeAddress | null>;
  connect(node: NodeAddress, params: ReadonlyMap<string, string>, secret: Secret | undefined, timeoutMs: number): Promise<BackendConnection>;
}

/**
 * Looks up a user's stored secret with auth_query, on the primary, as auth_user (PgBouncer's
 * design). The user name is a bound parameter, never part of the SQL text; the connection is
 * Sluice's own with fixed startup parameters (a client's search_path never reaches it) and
 * search_path pinned to pg_catalog, pg_temp, so an unqualified name in the query cannot be
 * redirected by objects someone else created. One connection, kept open, one lookup at a time.
 */
export class AuthQuery {
  private conn: BackendConnection | null = null;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly host: AuthQueryHost,
    private readonly log: Logger,
  ) {}

  /** The secret text (rolpassword) or null: no such role, it cannot log in, or it expired. */
  lookup(user: string): Promise<string | null> {
    const run = this.queue.then(() => this.run(user));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async run(user: string): Promise<string | null> {
    const s = this.host.settings();
    const conn = await this.connection(s);
    let result;
    try {
      result = await runParameterised(conn, s.query, [user], s.timeoutMs);
    } catch (err) {
      this.drop();
      this.log.error({ err: (err as Error).message }, 'auth_query failed');
      throw lookupFailed(SqlState.ConnectionFailure);
    }
    if (result.error) {
      this.log.error({ code: result.error.code, err: result.error.message, auth_user: s.user }, 'auth_query returned an error');
      throw lookupFailed(SqlState.InvalidAuthorizationSpecification);
    }
    const row = result.rows[0];
    return row?.[row.length - 1] ?? null;
  }

  private async connection(s: AuthQuerySettings): Promise<BackendConnection> {
    const primary = await this.host.waitForPrimary(s.timeoutMs);
    if (!primary) throw Errors.noPrimaryForAuthQuery();
    if (this.conn && !this.conn.isClosed && this.conn.node.id === primary.id) return this.conn;
    this.drop();
    const params = new Map([
      ['user', s.user],
      ['database', s.database],
      ['application_name', 'sluice auth_query'],
      ['options', '-c search_path=pg_catalog,pg_temp'],
    ]);
    try {
      this.conn = await this.host.connect(primary, params, s.secret, s.timeoutMs);
    } catch (err) {
      this.log.error({ err: (err as Error).message, auth_user: s.user, node: primary.id }, 'auth_query could not connect');
      throw lookupFailed(SqlState.ConnectionFailure);
    }
    return this.conn;
  }

  private drop(): void {
    this.conn?.destroy();
    this.conn = null;
  }

  close(): void {
    this.drop();
  }
}
