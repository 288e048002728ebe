// A small client of etcd's v3 API through its HTTP/JSON gateway (etcd 3.4's /v3/ paths), the way
// Patroni talks to etcd: plain HTTP POSTs of JSON, keys and values in base64, 64-bit integers as
// strings. Only what the watchdog needs: leases, put, range over a prefix, delete, and the
// create-if-absent transaction behind a leader key. No watches: the watchdog reads its prefix
// once per loop, as Patroni does without them. https endpoints (a CA to trust, a client
// certificate) and etcd's password authentication (a token from /v3/auth/authenticate, taken
// again when etcd says it is no longer valid) as Patroni's etcd3 settings offer them.
import http from 'node:http';
import https from 'node:https';

/** A key as etcd returns it, decoded. */
export interface EtcdKey {
  key: string;
  value: string;
  /** The lease that holds it ('0' or absent: none). */
  lease: string;
  createRevision: string;
  modRevision: string;
}

/** etcd could not be reached, or answered with an error (every endpoint was tried). */
export class EtcdUnavailable extends Error {
  override name = 'EtcdUnavailable';
}

interface RawKv {
  key?: string;
  value?: string;
  lease?: string;
  create_revision?: string;
  mod_revision?: string;
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: string | undefined) => Buffer.from(s ?? '', 'base64').toString('utf8');

/** The first key after every key that starts with `prefix` (etcd's range_end for a prefix). */
function prefixEnd(prefix: string): string {
  const b = Buffer.from(prefix, 'utf8');
  for (let i = b.length - 1; i >= 0; i--) {
    if (b[i]! < 0xff) {
      const end = Buffer.from(b.subarray(0, i + 1));
      end[i]!++;
      return end.toString('base64');
    }
  }
  return b64('\0');
}

function decodeKv(kv: RawKv): EtcdKey {
  return {
    key: unb64(kv.key),
    value: unb64(kv.value),
    lease: kv.lease ?? '0',
    createRevision: kv.create_revision ?? '0',
    modRevision: kv.mod_revision ?? '0',
  };
}

export interface EtcdOptions {
  /** Client URLs, e.g. http://10.0.0.1:2379; tried in turn, the last that answered first. */
  endpoints: readonly string[];
  /** How long one request may take before the next endpoint is tried (ms). */
  requestTimeoutMs: number;
  /** For https endpoints: the CAs to trust (PEM; none: the system's) and a client certificate. */
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
  /** etcd's own users (auth enabled): the name and password a token is asked with. */
  auth?: { username: string; password: string };
}

/** etcd's answer when a request's token is missing, unknown or expired (gRPC Unauthenticated, or 3.4's "user name is empty"). */
const TOKEN_REFUSED = /invalid auth token|user name is empty|"code":\s*16\b/;

export class EtcdClient {
  /** The endpoint that answered last: asked first next time. */
  private current = 0;
  private readonly agent: http.Agent;
  /** The auth token in use (null: none taken yet, or etcd refused the last). */
  private token: string | null = null;

  constructor(private readonly opts: EtcdOptions) {
    if (opts.endpoints.length === 0) throw new Error('no etcd endpoints');
    const secure = opts.endpoints.map((e) => new URL(e).protocol === 'https:');
    if (secure.some((x) => x !== secure[0])) throw new Error('etcd endpoints mix http and https');
    this.agent = secure[0] ? new https.Agent({ keepAlive: true, maxSockets: 4, ...opts.tls }) : new http.Agent({ keepAlive: true, maxSockets: 4 });
  }

  /** Grants a lease of `ttl` seconds; its id. */
  async grant(ttl: number): Promise<string> {
    const r = (await this.call('/v3/lease/grant', { TTL: ttl })) as { ID?: string };
    if (!r.ID) throw new EtcdUnavailable('lease grant answered without an id');
    return r.ID;
  }

  /** Renews a lease; its remaining TTL in seconds, 0 when it has expired (or never existed). */
  async keepAlive(lease: string): Promise<number> {
    const r = (await this.call('/v3/lease/keepalive', { ID: lease })) as { result?: { TTL?: string } };
    return Number(r.result?.TTL ?? 0);
  }

  async revoke(lease: string): Promise<void> {
    await this.call('/v3/lease/revoke', { ID: lease });
  }

  async put(key: string, value: string, lease?: string): Promise<void> {
    await this.call('/v3/kv/put', { key: b64(key), value: b64(value), ...(lease ? { lease } : {}) });
  }

  async get(key: string): Promise<EtcdKey | null> {
    const r = (await this.call('/v3/kv/range', { key: b64(key) })) as { kvs?: RawKv[] };
    return r.kvs?.[0] ? decodeKv(r.kvs[0]) : null;
  }

  /** Every key that starts with `prefix`, in key order. */
  async list(prefix: string): Promise<EtcdKey[]> {
    const r = (await this.call('/v3/kv/range', { key: b64(prefix), range_end: prefixEnd(prefix) })) as { kvs?: RawKv[] };
    return (r.kvs ?? []).map(decodeKv);
  }

  async delete(key: string): Promise<void> {
    await this.call('/v3/kv/deleterange', { key: b64(key) });
  }

  /**
   * Creates `key` on `lease` only if no such key exists (a transaction comparing its create
   * revision with 0). True: created; false: the key that is there.
   */
  async createIfAbsent(key: string, value: string, lease: string): Promise<true | EtcdKey> {
    const k = b64(key);
    const r = (await this.call('/v3/kv/txn', {
      compare: [{ key: k, result: 'EQUAL', target: 'CREATE', create_revision: '0' }],
      success: [{ request_put: { key: k, value: b64(value), lease } }],
      failure: [{ request_range: { key: k } }],
    })) as { succeeded?: boolean; responses?: { response_range?: { kvs?: RawKv[] } }[] };
    if (r.succeeded) return true;
    const kv = r.responses?.[0]?.response_range?.kvs?.[0];
    // Gone between the compare and the range cannot happen in one transaction; an empty answer is etcd's error.
    if (!kv) throw new EtcdUnavailable('transaction answered without the key');
    return decodeKv(kv);
  }

  /** Deletes `key` only while it is on `lease` (a leader giving up its own key, never another's). */
  async deleteIfHeld(key: string, lease: string): Promise<boolean> {
    const k = b64(key);
    const r = (await this.call('/v3/kv/txn', {
      compare: [{ key: k, result: 'EQUAL', target: 'LEASE', lease }],
      success: [{ request_delete_range: { key: k } }],
    })) as { succeeded?: boolean };
    return r.succeeded === true;
  }

  /** Writes `key` only while `holder` (the leader key) is on `lease`: a deposed writer's write fails. */
  async putIfHeld(key: string, value: string, holder: string, lease: string): Promise<boolean> {
    const r = (await this.call('/v3/kv/txn', {
      compare: [{ key: b64(holder), result: 'EQUAL', target: 'LEASE', lease }],
      success: [{ request_put: { key: b64(key), value: b64(value) } }],
    })) as { succeeded?: boolean };
    return r.succeeded === true;
  }

  close(): void {
    this.agent.destroy();
  }

  /**
   * One request, to each endpoint in turn until one answers. With auth, a token is taken first
   * and once more when etcd refuses it (simple tokens expire, a restarted member forgets them).
   */
  private async call(path: string, body: unknown): Promise<unknown> {
    const payload = JSON.stringify(body);
    const auth = this.opts.auth;
    if (!auth) return this.anyEndpoint(path, payload, null);
    for (let attempt = 0; ; attempt++) {
      this.token ??= await this.authenticate(auth);
      try {
        return await this.anyEndpoint(path, payload, this.token);
      } catch (err) {
        if (attempt > 0 || !TOKEN_REFUSED.test((err as Error).message)) throw err;
        this.token = null;
      }
    }
  }

  private async authenticate(auth: { username: string; password: string }): Promise<string> {
    const r = (await this.anyEndpoint('/v3/auth/authenticate', JSON.stringify({ name: auth.username, password: auth.password }), null)) as { token?: string };
    if (!r.token) throw new EtcdUnavailable(`etcd authentication as "${auth.username}" answered without a token (is auth enabled on etcd?)`);
    return r.token;
  }

  private async anyEndpoint(path: string, payload: string, token: string | null): Promise<unknown> {
    const n = this.opts.endpoints.length;
    let last: Error | null = null;
    for (let i = 0; i < n; i++) {
      const at = (this.current + i) % n;
      try {
        const r = await this.post(this.opts.endpoints[at]!, path, payload, token);
        this.current = at;
        return r;
      } catch (err) {
        last = err as Error;
        // A member that refuses the token has answered: the others would too (a new one is due).
        if (token && TOKEN_REFUSED.test(last.message)) break;
      }
    }
    throw new EtcdUnavailable(`etcd unreachable (${this.opts.endpoints.join(', ')}): ${last?.message ?? 'no endpoint'}`);
  }

  private post(endpoint: string, path: string, payload: string, token: string | null): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const url = new URL(path, endpoint);
      const headers: http.OutgoingHttpHeaders = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) };
      if (token) headers.authorization = token;
      const req = (url.protocol === 'https:' ? https : http).request(url, { method: 'POST', agent: this.agent, headers, timeout: this.opts.requestTimeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if (res.statusCode !== 200) return reject(new Error(`${url.href}: HTTP ${res.statusCode}: ${text.slice(0, 200)}`));
          try {
            const j = JSON.parse(text) as { error?: unknown };
            // A streamed call (lease keepalive) can carry its error in the body.
            if (j.error) return reject(new Error(`${url.href}: ${JSON.stringify(j.error).slice(0, 200)}`));
            resolve(j);
          } catch {
            reject(new Error(`${url.href}: not JSON: ${text.slice(0, 200)}`));
          }
        });
      });
      req.on('timeout', () => req.destroy(new Error(`${url.href}: no answer in ${this.opts.requestTimeoutMs} ms`)));
      req.on('error', reject);
      req.end(payload);
    });
  }
}
