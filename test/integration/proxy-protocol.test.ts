import t, { Test } from 'tap';
import { RawClient, startupMessage } from '../helpers/raw-client';
import { clusterWithSluice, startSluice, TestSluice, waitFor } from '../helpers/sluice';

// PROXY protocol v1 and v2 on the client port: believed from proxy_protocol_trusted_addresses
// (the real client address reaches hba rules and the logs), refused from anyone else.

const env = clusterWithSluice(0);

async function withSluice(t: Test, overrides: Record<string, unknown>): Promise<TestSluice> {
  const s = await startSluice(env.cluster, overrides);
  t.teardown(() => s.stop());
  return s;
}

const v1 = (line: string) => Buffer.from(`PROXY ${line}\r\n`);

function v2(command: 'PROXY' | 'LOCAL', family: 'TCP4' | 'TCP6', src: number[], sport: number, tlv = Buffer.alloc(0)): Buffer {
  const sig = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
  const addrLen = family === 'TCP4' ? 4 : 16;
  const body = Buffer.alloc(addrLen * 2 + 4);
  Buffer.from(src).copy(body, 0);
  body.writeUInt16BE(sport, addrLen * 2);
  body.writeUInt16BE(5432, addrLen * 2 + 2);
  const head = Buffer.alloc(4);
  head[0] = command === 'PROXY' ? 0x21 : 0x20;
  head[1] = family === 'TCP4' ? 0x11 : 0x21;
  head.writeUInt16BE(body.length + tlv.length, 2);
  return Buffer.concat([sig, head, body, tlv]);
}

/** Starts a session after `header`; returns the first answer: ReadyForQuery or an error. */
async function startAfter(s: TestSluice, header: Buffer, split = false): Promise<RawClient> {
  const c = await RawClient.open(s.port);
  const startup = startupMessage({ user: 'postgres', database: 'postgres', application_name: 'proxied' });
  if (split) {
    // Byte by byte: the header may arrive in pieces.
    for (const b of header) c.send(Buffer.from([b]));
    c.send(startup);
  } else c.send(header, startup);
  await c.until((f) => f.type === 'Z' || f.type === 'E').catch(() => undefined);
  return c;
}

const started = (s: TestSluice, client: string) => waitFor(`a session from ${client}`, () => s.logs.some((l) => l.msg === 'session started' && l.client === client));

t.test('from a trusted balancer, v1 and v2 headers give the real address to hba and the logs', async (t) => {
  const s = await withSluice(t, {
    proxy_protocol_trusted_addresses: '10.9.9.9/32, 127.0.0.1/32',
    hba: [
      { type: 'host', database: 'all', user: 'all', address: '203.0.113.0/24', method: 'trust' },
      { type: 'host', database: 'all', user: 'all', address: '2001:db8::/32', method: 'trust' },
      { type: 'host', database: 'all', user: 'all', address: '127.0.0.1/32', method: 'reject' },
    ],
  });
  const a = await startAfter(s, v1('TCP4 203.0.113.7 198.51.100.1 40000 9999'));
  t.equal(a.lastStatus(), 'I', 'v1 TCP4: admitted by the 203.0.113.0/24 rule');
  await started(s, '203.0.113.7');
  const b = await startAfter(s, v2('PROXY', 'TCP4', [203, 0, 113, 8], 40001), true);
  t.equal(b.lastStatus(), 'I', 'v2 TCP4, sent a byte at a time');
  await started(s, '203.0.113.8');
  const ip6 = [0x20, 0x01, 0x0d, 0xb8, ...new Array(11).fill(0), 0x42];
  const c = await startAfter(s, v2('PROXY', 'TCP6', ip6, 40002, Buffer.from([0x04, 0x00, 0x01, 0x00])));
  t.equal(c.lastStatus(), 'I', 'v2 TCP6 with a TLV');
  await started(s, '2001:db8:0:0:0:0:0:42');

  // The balancer's own connections (LOCAL, UNKNOWN) and no header at all: the socket's address.
  for (const header of [v2('LOCAL', 'TCP4', [0, 0, 0, 0], 0), v1('UNKNOWN'), Buffer.alloc(0)]) {
    const d = await startAfter(s, header);
    t.match(d.errors()[0]?.get('M'), /pg_hba\.conf rejects connection for host "127\.0\.0\.1"/);
  }
  for (const x of [a, b, c]) x.close();
});

t.test('from an untrusted address a PROXY header is refused; malformed headers are refused', async (t) => {
  const s = await withSluice(t, { proxy_protocol_trusted_addresses: '10.0.0.0/8' });
  for (const header of [v1('TCP4 203.0.113.7 198.51.100.1 40000 9999'), v2('PROXY', 'TCP4', [203, 0, 113, 7], 1)]) {
    const c = await startAfter(s, header);
    const e = c.errors()[0];
    t.equal(e?.get('C'), '08P01');
    t.match(e?.get('M'), /not in proxy_protocol_trusted_addresses/);
    await c.waitClosed();
  }
  const plain = await startAfter(s, Buffer.alloc(0));
  t.equal(plain.lastStatus(), 'I', 'a client without a header is served as usual');
  plain.close();

  const trusting = await withSluice(t, { proxy_protocol_trusted_addresses: '127.0.0.1' });
  for (const bad of [v1('TCP4 not-an-address 1.2.3.4 1 2'), v1('TCP4 1.2.3.4 5.6.7.8 99999 1'), Buffer.from('PROXY ' + 'x'.repeat(200))]) {
    const c = await startAfter(trusting, bad);
    t.equal(c.errors()[0]?.get('C'), '08P01', `refused: ${bad.toString('latin1', 0, 30)}`);
    await c.waitClosed();
  }
});
