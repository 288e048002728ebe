import { randomBytes } from 'node:crypto';
import type { Config } from '../config/load';
import { compileHba, HbaMethod, HbaRule, matchHba, Peer } from '../config/hba';
import type { Logger } from '../log/logger';
import { parseSecret, ScramSecret, scramSecret, Secret } from '../protocol/auth/secret';
import { ClientError } from '../protocol/client-error';
import { Errors } from '../protocol/errors';
import { SqlState } from '../protocol/sqlstate';
import type { AuthQuery } from './auth-query';
import { AuthIo, cleartextExchange, md5Exchange, scramExchange } from './exchange';

export interface Login {
  readonly user: string;
  readonly database: string;
}

/**
 * Client authentication, done by Sluice before any backend connection is opened for the client:
 * the [[hba]] rules pick a method, the secret comes from [[user]] or auth_query, and the
 * exchange runs with the client. What the client proved (its ClientKey, or its password under
 * method "password") is kept per user, so backend connections log in as that user.
 */
export class Authenticator {
  private rules: HbaRule[] = [];
  private rulesOf: Config | null = null;
  /** Secrets learned from clients' successful logins (for the nodes): user -> secret. */
  private readonly learned = new Map<string, Secret>();
  /** SCRAM verifiers made from [[user]] plain passwords, once each (PBKDF2 is slow on purpose). */
  private readonly derived = new Map<string, { password: string; verifier: ScramSecret }>();
  /** Salts the mock exchange for unknown users: stable for this process, unguessable. */
  private readonly mockKey = randomBytes(32);

  constructor(
    private readonly config: () => Config,
    private readonly authQuery: AuthQuery,
    private readonly log: Logger,
  ) {}

  private hba(): HbaRule[] {
    const c = this.config();
    if (this.rulesOf !== c) {
      this.rules = compileHba(c.hba);
      this.rulesOf = c;
    }
    return this.rules;
  }

  /** Resolves when the client proved who it is; throws the ClientError to send it otherwise. */
  async authenticate(login: Login, peer: Peer, cbData: Buffer | null, io: AuthIo): Promise<void> {
    const { user } = login;
    // One lookup per login at most (auth_query is a round trip to the primary), and none for trust.
    let stored: Promise<Secret | null> | undefined;
    const secret = () => (stored ??= this.stored(user));
    const method = await this.method(login, peer, secret);
    if (method === 'trust') return;
    try {
      await this.exchange(method, user, peer, cbData, io, secret);
    } catch (err) {
      if (err instanceof ClientError && err.code === SqlState.InvalidPassword) {
        this.log.info({ user, database: login.database, address: peer.address, method }, 'password authentication failed');
      }
      throw err;
    }
  }

  /**
   * The login is trusted, as decided without a wait or a refusal: a session starts without
   * authenticate() then (false: authenticate() decides, refusals included).
   */
  trusts(login: Login, peer: Peer): boolean {
    const rules = this.hba();
    // No [[hba]]: users Sluice holds a secret for must prove it (else a pooled connection
    // would be theirs for the asking); the others meet the nodes' own authentication.
    if (rules.length === 0) return !this.config().auth_user && !this.entry(login.user);
    return matchHba(rules, peer, login.database, login.user)?.method === 'trust';
  }

  private async method(login: Login, peer: Peer, secret: () => Promise<Secret | null>): Promise<Exclude<HbaMethod, 'reject'>> {
    const rules = this.hba();
    if (rules.length === 0) return this.trusts(login, peer) ? 'trust' : (await secret())?.kind === 'md5' ? 'md5' : 'scram-sha-256';
    // The rule's own method, 'trust' included (what trusts() would match again).
    const rule = matchHba(rules, peer, login.database, login.user);
    // Made only for a refusal: the peer's address is read when something needs it.
    const where = () => `host "${peer.local ? '[local]' : peer.address}", user "${login.user}", database "${login.database}", ${peer.ssl ? 'SSL encryption' : 'no encryption'}`;
    if (!rule) throw Errors.noHbaEntry(where());
    if (rule.method === 'reject') throw Errors.hbaRejects(where());
    return rule.method;
  }

  private async exchange(
    method: Exclude<HbaMethod, 'trust' | 'reject'>,
    user: string,
    peer: Peer,
    cbData: Buffer | null,
    io: AuthIo,
    lookup: () => Promise<Secret | null>,
  ): Promise<void> {
    if (method === 'password') {
      if (!peer.ssl && !peer.local && !this.config().allow_password_without_ssl) {
        throw Errors.passwordWithoutTls();
      }
      const password = await cleartextExchange(io, user, await lookup());
      this.learned.set(user, { kind: 'plain', password });
      return;
    }
    const secret = await lookup();
    // As PostgreSQL: "md5" with a SCRAM verifier on file runs SCRAM; "scram-sha-256" with only an
    // md5 hash on file cannot succeed (the exchange runs on a mock verifier and fails).
    if (method === 'md5' && secret?.kind !== 'scram') {
      await md5Exchange(io, user, secret);
      if (secret) this.learned.set(user, secret);
      return;
    }
    const verifier = secret?.kind === 'scram' ? secret : secret?.kind === 'plain' ? this.derive(user, secret.password) : null;
    const clientKey = await scramExchange(io, user, verifier, this.mockKey, cbData);
    if (verifier) this.learned.set(user, { ...verifier, clientKey });
  }

  private entry(user: string): Secret | undefined {
    const e = this.config().user.find((u) => u.name === user);
    return e ? parseSecret(e.password) : undefined;
  }

  /** The user's secret on file: [[user]] first, then auth_query (null: unknown, expired, no login). */
  private async stored(user: string): Promise<Secret | null> {
    const e = this.entry(user);
    if (e) return e;
    if (!this.config().auth_user) return null;
    const text = await this.authQuery.lookup(user);
    if (text === null || text === '') return null;
    try {
      return parseSecret(text);
    } catch {
      this.log.warn({ user }, 'auth_query returned a malformed secret');
      return null;
    }
  }

  private derive(user: string, password: string): ScramSecret {
    const d = this.derived.get(user);
    if (d && d.password === password) return d.verifier;
    const verifier = scramSecret(password);
    this.derived.set(user, { password, verifier });
    return verifier;
  }

  /** What Sluice logs in to a node with as this user: a password on file, else what a client proved. */
  backendSecret(user: string): Secret | undefined {
    const e = this.entry(user);
    if (e?.kind === 'plain') return e;
    return this.learned.get(user) ?? e;
  }
}
