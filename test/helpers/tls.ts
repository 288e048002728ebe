import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TestPki {
  dir: string;
  ca: string;
  cert: string;
  key: string;
  /** A second CA that signed nothing of ours (verification against it must fail). */
  otherCa: string;
  remove(): void;
}

async function selfSignedCa(dir: string, name: string): Promise<{ crt: string; key: string }> {
  const crt = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', crt, '-subj', `/CN=${name}`, '-days', '2']);
  return { crt, key };
}

/**
 * A client certificate from the test CA with `subject` (e.g. "/O=sluice": no Common Name, which
 * etcd's gateway refuses once its auth is on).
 */
export async function clientCert(pki: TestPki, name: string, subject: string): Promise<{ cert: string; key: string }> {
  const key = join(pki.dir, `${name}.key`);
  const csr = join(pki.dir, `${name}.csr`);
  const cert = join(pki.dir, `${name}.crt`);
  await run('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', csr, '-subj', subject]);
  await run('openssl', ['x509', '-req', '-in', csr, '-CA', pki.ca, '-CAkey', pki.ca.replace(/\.crt$/, '.key'), '-CAcreateserial', '-out', cert, '-days', '2']);
  return { cert, key };
}

/** A test CA and a server certificate for localhost and 127.0.0.1, made with openssl. */
export async function makePki(): Promise<TestPki> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-pki-'));
  const ca = await selfSignedCa(dir, 'sluice-test-ca');
  const other = await selfSignedCa(dir, 'other-ca');
  const key = join(dir, 'server.key');
  const csr = join(dir, 'server.csr');
  const cert = join(dir, 'server.crt');
  const ext = join(dir, 'server.ext');
  writeFileSync(ext, 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n');
  await run('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', csr, '-subj', '/CN=localhost']);
  await run('openssl', ['x509', '-req', '-in', csr, '-CA', ca.crt, '-CAkey', ca.key, '-CAcreateserial', '-out', cert, '-days', '2', '-extfile', ext]);
  return { dir, ca: ca.crt, cert, key, otherCa: other.crt, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
