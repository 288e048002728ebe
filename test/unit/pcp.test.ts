import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { pcpAuthenticate, pcpPasswordHash, pcpResponse } from '../../src/admin/pcp/auth';
import { PcpReply, PcpRequest } from '../../src/admin/pcp/codes';
import { decodePcpError, pcpError, pcpFields, pcpPacket, PcpReader } from '../../src/admin/pcp/packet';
import { pcpPassword } from '../../src/ctl/pcppass';
import { mayBeLocal } from '../../src/session/local-commands';
import { serialize } from 'pg-protocol';

t.test('every request type and every reply type is its own letter (Sluice\'s own never take one of pgpool\'s)', async (t) => {
  for (const [what, codes] of [['request', PcpRequest], ['reply', PcpReply]] as const) {
    const seen = new Map<number, string>();
    for (const [name, code] of Object.entries(codes)) {
      t.notOk(seen.has(code), `${what} ${name} (${String.fromCharCode(code)}) is not ${seen.get(code) ?? 'taken'}`);
      seen.set(code, name);
    }
  }
});

t.test("salted md5: pgpool.md's verified vector", async (t) => {
  const h1 = pcpPasswordHash('pcppass');
  t.equal(h1, '0d0e5266f9ff6a4235a45222acf90cbb');
  const salt = Buffer.from([0x53, 0x11, 0xcf, 0xad]);
  t.equal(pcpResponse('pgt', h1, salt), '7bcf6460a33cc1f95034cd90f040798f');
  t.ok(pcpAuthenticate([{ name: 'pgt', md5: h1 }], 'pgt', '7bcf6460a33cc1f95034cd90f040798f', salt));
  t.notOk(pcpAuthenticate([{ name: 'pgt', md5: h1 }], 'other', '7bcf6460a33cc1f95034cd90f040798f', salt), 'user must match');
  t.ok(pcpAuthenticate([{ name: 'pgt', md5: 'x' }, { name: 'pgt', md5: h1 }], 'pgt', '7bcf6460a33cc1f95034cd90f040798f', salt), 'duplicate users: any entry');
});

t.test('PCP framing: packets across chunks, the 260-byte limit', async (t) => {
  const r = new PcpReader();
  const a = pcpPacket(0x4c);
  const b = pcpPacket(0x49, ['-1']);
  const both = Buffer.concat([a, b]);
  t.same(r.push(both.subarray(0, 3)), []);
  const got = r.push(both.subarray(3));
  t.same(got.map((p) => [p.type, pcpFields(p.payload)]), [[0x4c, []], [0x49, ['-1']]]);
  const big = Buffer.from([0x52, 0, 0, 1, 4]);
  t.throws(() => new PcpReader().push(big), { message: 'incorrect packet length (260)' });
  t.throws(() => new PcpReader().push(Buffer.from([0x52, 0, 0, 0, 0])), { message: 'incorrect packet length (0)' });
  t.equal(new PcpReader().push(Buffer.concat([Buffer.from([0x52, 0, 0, 1, 3]), Buffer.alloc(255)])).length, 1, '259 is allowed');
});

t.test('error packets: pgpool fields only, values cut at 255', async (t) => {
  const e = pcpError('ERROR', 'informing node info failed', 'invalid node ID : 5');
  t.equal(e.subarray(5).toString('latin1'), 'SERROR\0CXX000\0Minforming node info failed\0Dinvalid node ID : 5\0Fsluice\0L0\0\0');
  t.equal(e.readInt32BE(1), e.length - 1);
  t.same(decodePcpError(e.subarray(5)), { severity: 'ERROR', message: 'informing node info failed', detail: 'invalid node ID : 5' });
  t.equal(pcpError('WARNING', 'x')[0], 0x4e, 'below ERROR: a notice');
  t.equal(decodePcpError(pcpError('FATAL', 'a'.repeat(400)).subarray(5)).message.length, 255);
});

t.test('.pcppass: wildcards, escapes, first match, the 0600 rule', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pcppass-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'p');
  writeFileSync(file, '# comment\nother:*:admin:no\nlocalhost:9898:admin:yes\\:really\n*:*:*:any\n');
  chmodSync(file, 0o600);
  const warnings: string[] = [];
  const env = { PCPPASSFILE: file };
  t.equal(pcpPassword('localhost', 9898, 'admin', (m) => warnings.push(m), env), 'yes:really');
  t.equal(pcpPassword('elsewhere', 1, 'bob', (m) => warnings.push(m), env), 'any');
  chmodSync(file, 0o644);
  t.equal(pcpPassword('localhost', 9898, 'admin', (m) => warnings.push(m), env), undefined, 'ignored when group or world may read it');
  t.match(warnings.join(), /permissions should be u=rw/);
  t.equal(pcpPassword('localhost', 9898, 'admin', () => undefined, { PCPPASSFILE: join(dir, 'missing') }), undefined);
});

t.test('local commands: only SHOW POOL_* / PGPOOL shapes are decoded', async (t) => {
  const q = (s: string) => {
    const b = serialize.query(s);
    return mayBeLocal(b, 0, b.length);
  };
  t.ok(q('SHOW POOL_NODES'));
  t.ok(q('  \n pgpool show all'));
  t.ok(q('show pool_version;'));
  t.notOk(q('SELECT 1'));
  t.notOk(q('set x = 1'));
  t.notOk(q(''));
});
