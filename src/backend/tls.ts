import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect as netConnect, Socket } from 'node:net';
import { checkServerIdentity, connect as tlsConnect, ConnectionOptions, createSecureContext, SecureContext, SecureVersion } from 'node:tls';
import { SlabReads, withSlabReads } from '../net/slab-reads';
import { isSocketDir, nodeEndpoint } from './endpoint';

// TLS on both sides: the client-facing context (ssl, ssl_cert, ...: pgpool's and PostgreSQL's
// names) and the negotiation with a node (backend_sslmode, libpq's sslmode values).

export interface ServerTlsSettings {
  readonly ssl: boolean;
  readonly ssl_cert: string;
  readonly ssl_key: string;
  readonly ssl_ca_cert: string;
  readonly ssl_crl_file: string;
  readonly ssl_ciphers: string;
  readonly ssl_min_protocol_version: string;
  readonly ssl_max_protocol_version: string;
  readonly ssl_prefer_server_ciphers: boolean;
}

/** What the client listener needs to answer an SSLRequest with 'S'. */
export interface ServerTls {
  readonly context: SecureContext;
  /** ssl_ca_cert given: clients may present certificates, which must verify against it. */
  readonly requestCert: boolean;
  /** tls-server-end-point channel binding data (RFC 5929) for SCRAM-SHA-256-PLUS. */
  readonly endPoint: Buffer;
}

/** A file a config key names (a certificate, a key), read; the error names the key. */
export const readKeyFile = (key: string, file: string): Buffer => {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new Error(`key "${key}": cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
};

const version = (key: string, v: string): SecureVersion | undefined => {
  if (v === '') return undefined;
  if (!['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'].includes(v)) throw new Error(`key "${key}": expected TLSv1.2 or TLSv1.3, got "${v}"`);
  return v as SecureVersion;
};

/** The client-facing TLS context, or null when ssl is off. Errors name the key (config mistakes). */
export function serverTls(s: ServerTlsSettings): ServerTls | null {
  if (!s.ssl) return null;
  if (!s.ssl_cert || !s.ssl_key) throw new Error('key "ssl_cert": ssl = true needs ssl_cert and ssl_key');
  const cert = readKeyFile('ssl_cert', s.ssl_cert);
  let context: SecureContext;
  try {
    context = createSecureContext({
      cert,
      key: readKeyFile('ssl_key', s.ssl_key),
      ...(s.ssl_ca_cert ? { ca: readKeyFile('ssl_ca_cert', s.ssl_ca_cert) } : {}),
      ...(s.ssl_crl_file ? { crl: readKeyFile('ssl_crl_file', s.ssl_crl_file) } : {}),
      ...(s.ssl_ciphers ? { ciphers: s.ssl_ciphers } : {}),
      minVersion: version('ssl_min_protocol_version', s.ssl_min_protocol_version) ?? 'TLSv1.2',
      ...(s.ssl_max_protocol_version ? { maxVersion: version('ssl_max_protocol_version', s.ssl_max_protocol_version)! } : {}),
      honorCipherOrder: s.ssl_prefer_server_ciphers,
    });
  } catch (err) {
    throw new Error(`key "ssl_cert": ${(err as Error).message}`);
  }
  return { context, requestCert: s.ssl_ca_cert !== '', endPoint: endPointHash(firstCertificate(cert)) };
}

/** The first certificate of a PEM file, as DER. */
function firstCertificate(pem: Buffer): Buffer {
  const m = /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/.exec(pem.toString('latin1'));
  if (!m) throw new Error('key "ssl_cert": no PEM certificate in the file');
  return Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
}

// Signature algorithm OIDs whose hash is not SHA-256 (RFC 5929 §4.1: MD5 and SHA-1 become SHA-256).
const SHA384 = ['2a864886f70d01010c', '2a8648ce3d040303'];
const SHA512 = ['2a864886f70d01010d', '2a8648ce3d040304'];

/** tls-server-end-point: the certificate hashed with its signature's hash function. */
export function endPointHash(der: Buffer): Buffer {
  const hex = der.toString('hex');
  const has = (oids: string[]) => oids.some((o) => hex.includes(`06${(o.length / 2).toString(16).padStart(2, '0')}${o}`));
  const algorithm = has(SHA512) ? 'sha512' : has(SHA384) ? 'sha384' : 'sha256';
  return createHash(algorithm).update(der).digest();
}

export type SslMode = 'disable' | 'prefer' | 'require' | 'verify-ca' | 'verify-full';

/** backend_sslmode with its files already read (once per config, not once per connection). */
export interface BackendTlsSettings {
  readonly mode: SslMode;
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
}

export interface BackendTlsConfig {
  readonly backend_sslmode: SslMode;
  readonly backend_sslrootcert: string;
  readonly backend_sslcert: string;
  readonly backend_sslkey: string;
}

/** Reads backend_sslrootcert / backend_sslcert / backend_sslkey; an unreadable one names its key. */
export function backendTls(c: BackendTlsConfig): BackendTlsSettings {
  if (c.backend_sslmode === 'disable') return { mode: 'disable' };
  return {
    mode: c.backend_sslmode,
    ...(c.backend_sslrootcert ? { ca: readKeyFile('backend_sslrootcert', c.backend_sslrootcert) } : {}),
    ...(c.backend_sslcert ? { cert: readKeyFile('backend_sslcert', c.backend_sslcert), key: readKeyFile('backend_sslkey', c.backend_sslkey) } : {}),
  };
}

/** SSLRequest: length 8, code 80877103. */
const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);

/** A TCP or Unix-domain connection; `slab`: read through SlabReads (a socket that will not become TLS). */
function dial(host: string, port: number, signal: AbortSignal | undefined, slab: boolean): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const reads = slab ? new SlabReads() : null;
    const s = netConnect({ ...nodeEndpoint(host, port), noDelay: true, ...(reads ? { onread: reads.options() } : {}) });
    if (reads) withSlabReads(s, reads);
    const abort = () => s.destroy(new Error('timeout'));
    signal?.addEventListener('abort', abort, { once: true });
    s.once('connect', () => {
      signal?.removeEventListener('abort', abort);
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** The server's one-byte answer to SSLRequest (anything more before the handshake is an attack). */
function sslAnswer(s: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    const onData = (d: Buffer) => {
      cleanup();
      if (d.length !== 1) reject(new Error('received unencrypted data after SSL response'));
      else resolve(String.fromCharCode(d[0]!));
    };
    const onEnd = (err?: Error) => {
      cleanup();
      reject(err ?? new Error('closed during SSL negotiation'));
    };
    const cleanup = () => {
      s.off('data', onData);
      s.off('error', onEnd);
      s.off('close', onEnd);
    };
    s.on('data', onData);
    s.once('error', onEnd);
    s.once('close', () => onEnd());
  });
}

/**
 * A connected socket to a node, TLS as backend_sslmode says: prefer takes TLS when the node
 * offers it, require insists, verify-ca checks the chain against backend_sslrootcert (or the
 * system's CAs), verify-full also checks the host name.
 */
export async function openTransport(host: string, port: number, tls: BackendTlsSettings, signal?: AbortSignal): Promise<Socket> {
  // libpq never negotiates TLS on a Unix-domain socket: the kernel is the only one in between.
  const plain = tls.mode === 'disable' || isSocketDir(host);
  const raw = await dial(host, port, signal, plain);
  if (plain) return raw;
  const abort = () => raw.destroy(new Error('timeout'));
  signal?.addEventListener('abort', abort, { once: true });
  try {
    raw.write(SSL_REQUEST);
    const answer = await sslAnswer(raw);
    if (answer === 'N') {
      if (tls.mode === 'prefer') return raw;
      throw new Error('server does not support SSL, but SSL was required');
    }
    if (answer !== 'S') throw new Error(`unexpected answer to SSLRequest: ${JSON.stringify(answer)}`);
    const verify = tls.mode === 'verify-ca' || tls.mode === 'verify-full';
    const opts: ConnectionOptions = {
      socket: raw,
      rejectUnauthorized: verify,
      host,
      ...(/^[\d.:]+$/.test(host) ? {} : { servername: host }),
      ...(tls.ca ? { ca: tls.ca } : {}),
      ...(tls.cert ? { cert: tls.cert, key: tls.key } : {}),
      checkServerIdentity: tls.mode === 'verify-full' ? checkServerIdentity : () => undefined,
    };
    return await new Promise<Socket>((resolve, reject) => {
      const s = tlsConnect(opts, () => {
        s.off('error', reject);
        resolve(s);
      });
      s.once('error', reject);
    });
  } catch (err) {
    raw.destroy();
    throw err;
  } finally {
    signal?.removeEventListener('abort', abort);
  }
}
