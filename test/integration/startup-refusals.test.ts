import { connect } from 'node:net';
import t from 'tap';
import { decodeFields } from '../../src/protocol/backend';
import { clusterWithSluice, waitFor } from '../helpers/sluice';
import { startupMessage } from '../helpers/raw-client';

// Every way a client can fail before authentication, sent byte for byte to PostgreSQL itself
// and to Sluice: each gets the server's exact answer (the same messages, the same fields, but for
// the server's source file and line), or the same close without a word. PostgreSQL only logs the
// silent ones; Sluice logs each by what happened. node-postgres's end() right after connect()
// writes a Terminate before its startup packet: it must end quietly, as it does directly.

const env = clusterWithSluice(0);

interface Step {
  send: Buffer;
  /** Bytes of answer to wait for before the next step (an SSLRequest's 'N'). */
  answer?: number;
}

/** Sends the steps, half-closes when asked, and collects everything until the server closes. */
function exchange(port: number, steps: Step[], end: boolean): Promise<{ bytes: Buffer; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const got: Buffer[] = [];
    let length = 0;
    let waiting: { n: number; go: () => void } | null = null;
    const s = connect({ host: '127.0.0.1', port });
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ bytes: Buffer.concat(got), closed: false });
    }, 5_000);
    s.on('data', (d: Buffer) => {
      got.push(d);
      length += d.length;
      if (waiting && length >= waiting.n) waiting.go();
    });
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ bytes: Buffer.concat(got), closed: true });
    });
    s.once('connect', () => {
      (async () => {
        let expected = 0;
        for (const step of steps) {
          s.write(step.send);
          if (step.answer) {
            expected += step.answer;
            await new Promise<void>((go) => (length >= expected ? go() : (waiting = { n: expected, go })));
          }
        }
        if (end) s.end();
      })().catch(reject);
    });
  });
}

/**
 * What a client sees, comparable between servers: single-byte answers, then each message (an
 * error's fields but F, L and R, which name the server's source); bytes that are not v3 messages
 * (the 2.0-style error) are shown as text.
 */
function transcript(bytes: Buffer, singleBytes: number): string[] {
  const out = [...bytes.subarray(0, singleBytes)].map((b) => `answer ${String.fromCharCode(b)}`);
  let i = singleBytes;
  while (i < bytes.length) {
    const len = i + 5 <= bytes.length ? bytes.readInt32BE(i + 1) : -1;
    if (len < 4 || i + 1 + len > bytes.length) {
      out.push(`not a v3 message: ${JSON.stringify(bytes.subarray(i).toString('latin1'))}`);
      break;
    }
    const type = String.fromCharCode(bytes[i]!);
    if (type === 'E') {
      const fields = [...decodeFields(bytes, i, i + 1 + len)].filter(([k]) => !'FLR'.includes(k));
      out.push(`E ${fields.map(([k, v]) => `${k}=${v}`).join(' | ')}`);
    } else {
      out.push(`${type} ${bytes.subarray(i + 5, i + 1 + len).toString('hex')}`);
    }
    i += 1 + len;
  }
  return out;
}

const int32s = (...ns: number[]) => {
  const b = Buffer.alloc(4 * ns.length);
  ns.forEach((n, i) => b.writeUInt32BE(n >>> 0, i * 4));
  return b;
};
const SSL_REQUEST = int32s(8, 80877103);
const packet = (code: number, body = Buffer.alloc(0)) => Buffer.concat([int32s(8 + body.length, code), body]);
const params = (text: string) => Buffer.from(text, 'latin1');

interface Case {
  name: string;
  steps: Step[];
  /** Half-close after sending (the server waits for more). */
  end?: boolean;
  /** The reason Sluice logs (null: it logs nothing, as PostgreSQL). */
  logged: string | null;
}

const CASES: Case[] = [
  { name: 'a connection closed without a byte', steps: [], end: true, logged: null },
  { name: "node-postgres's Terminate before its startup packet", steps: [{ send: Buffer.from([0x58, 0, 0, 0, 4]) }], logged: 'invalid length of startup packet' },
  { name: 'a length word below 8', steps: [{ send: int32s(4, 0) }], logged: 'invalid length of startup packet' },
  { name: 'a length word above 10004 (10000 without itself)', steps: [{ send: int32s(10_005, 196608) }], logged: 'invalid length of startup packet' },
  { name: 'part of a length word, then EOF', steps: [{ send: Buffer.from([0, 0]) }], end: true, logged: 'incomplete startup packet' },
  { name: 'part of a startup packet, then EOF', steps: [{ send: startupMessage({ user: 'postgres' }).subarray(0, 12) }], end: true, logged: 'incomplete startup packet' },
  { name: 'a CancelRequest of the wrong size', steps: [{ send: packet(80877102, int32s(1)) }], logged: 'invalid length of startup packet' },
  { name: 'a CancelRequest for no session', steps: [{ send: packet(80877102, int32s(12345, 67890)) }], logged: null },
  { name: 'protocol 2.0', steps: [{ send: startupMessage({ user: 'postgres' }, 0x00020000) }], logged: 'unsupported frontend protocol 2.0: server supports 3.0 to 3.0' },
  { name: 'protocol 1.5', steps: [{ send: packet(0x00010005) }], logged: 'unsupported frontend protocol 1.5: server supports 3.0 to 3.0' },
  { name: 'protocol 0.0', steps: [{ send: packet(0) }], logged: 'unsupported frontend protocol 0.0: server supports 3.0 to 3.0' },
  { name: 'protocol 0.6', steps: [{ send: packet(6) }], logged: 'unsupported frontend protocol 0.6: server supports 3.0 to 3.0' },
  { name: 'protocol 4.0', steps: [{ send: startupMessage({ user: 'postgres' }, 0x00040000) }], logged: 'unsupported frontend protocol 4.0: server supports 3.0 to 3.0' },
  {
    name: 'a second SSLRequest after N',
    steps: [{ send: SSL_REQUEST, answer: 1 }, { send: SSL_REQUEST }],
    logged: 'unsupported frontend protocol 1234.5679: server supports 3.0 to 3.0',
  },
  { name: 'a startup packet sent with the SSLRequest, before its answer', steps: [{ send: Buffer.concat([SSL_REQUEST, startupMessage({ user: 'postgres' })]), answer: 1 }], logged: 'received unencrypted data after SSL request' },
  { name: 'no terminator after the parameters', steps: [{ send: packet(196608, params('user\0postgres\0')) }], logged: 'invalid startup packet layout: expected terminator as last byte' },
  { name: 'a name without a value', steps: [{ send: packet(196608, params('user\0postgres\0database\0')) }], logged: 'invalid startup packet layout: expected terminator as last byte' },
  { name: 'a string running to the end', steps: [{ send: packet(196608, params('user\0postgres')) }], logged: 'invalid startup packet layout: expected terminator as last byte' },
  { name: 'no user', steps: [{ send: startupMessage({ database: 'postgres' }) }], logged: 'no PostgreSQL user name specified in startup packet' },
  { name: 'an empty user', steps: [{ send: startupMessage({ user: '' }) }], logged: 'no PostgreSQL user name specified in startup packet' },
  {
    name: 'protocol 3.2 with a _pq_ option and no user (NegotiateProtocolVersion first)',
    steps: [{ send: startupMessage({ '_pq_.compression': 'on', database: 'postgres' }, 0x00030002) }],
    logged: 'no PostgreSQL user name specified in startup packet',
  },
  { name: 'an invalid replication value', steps: [{ send: startupMessage({ user: 'postgres', replication: 'maybe' }) }], logged: 'invalid value for parameter "replication": "maybe"' },
  { name: 'an invalid replication value and a bad layout', steps: [{ send: packet(196608, params('replication\0sometimes\0user\0postgres\0')) }], logged: 'invalid value for parameter "replication": "sometimes"' },
];

t.test('each malformed start gets PostgreSQL\'s own answer, or its silent close, and is logged', async (t) => {
  const sluice = env.sluice;
  for (const c of CASES) {
    const answers = c.steps.filter((s) => s.answer).length;
    const direct = await exchange(env.cluster.port(0), c.steps, c.end ?? false);
    const before = sluice.logs.length;
    const through = await exchange(sluice.port, c.steps, c.end ?? false);
    t.ok(direct.closed, `${c.name}: PostgreSQL closes the connection`);
    t.ok(through.closed, `${c.name}: Sluice closes the connection`);
    t.same(transcript(through.bytes, answers), transcript(direct.bytes, answers), `${c.name}: the same answer as PostgreSQL's`);
    const refusal = () => sluice.logs.slice(before).find((l) => l.msg === 'connection refused at startup');
    if (c.logged === null) {
      t.equal(refusal(), undefined, `${c.name}: nothing logged`);
    } else {
      const line = await waitFor(`${c.name}: logged`, refusal, 2_000);
      t.equal(line.reason, c.logged, `${c.name}: Sluice logs what happened`);
    }
  }
});

t.test('the answers are not empty: most refusals are a FATAL, some a close without a word', async (t) => {
  // Guards the comparison above against two servers that both said nothing for every case.
  const v2 = await exchange(env.cluster.port(0), [{ send: startupMessage({ user: 'postgres' }, 0x00020000) }], false);
  t.equal(v2.bytes.toString('latin1'), 'EFATAL:  unsupported frontend protocol 2.0: server supports 3.0 to 3.0\n\0', 'the 2.0-style error, from the real server');
  const noUser = await exchange(env.sluice.port, [{ send: startupMessage({ '_pq_.x': '1' }, 0x00030002) }], false);
  t.same(
    transcript(noUser.bytes, 0).map((l) => l.slice(0, 1)),
    ['v', 'E'],
    'Sluice: NegotiateProtocolVersion, then the FATAL',
  );
  const terminate = await exchange(env.sluice.port, [{ send: Buffer.from([0x58, 0, 0, 0, 4]) }], false);
  t.equal(terminate.bytes.length, 0, 'a Terminate first: closed without a byte');
});

t.test('node-postgres: end() right after connect() ends as quietly through Sluice as directly', async (t) => {
  const { Client } = await import('pg');
  // What the application sees by the time end() has resolved: error events, and whether
  // connect() settled (directly it does not: the server closed without a word).
  const attempt = async (port: number) => {
    const seen: string[] = [];
    const c = new Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
    c.on('error', (e: Error) => seen.push(`error event: ${e.message}`));
    c.connect().then(
      () => seen.push('connected'),
      (e: Error) => seen.push(`connect rejected: ${e.message}`),
    );
    await c.end();
    await new Promise((r) => setImmediate(r));
    return seen;
  };
  const direct = await attempt(env.cluster.port(0));
  t.same(await attempt(env.sluice.port), direct, `the same outcome as directly (${JSON.stringify(direct)})`);
  t.notOk(direct.some((e) => /FATAL|invalid length/.test(e)), 'no server error reaches the application');
});

t.test('start-up logs no "sessions continue on the primary": there are none yet', async (t) => {
  t.ok(env.sluice.logs.some((l) => String(l.msg).length > 0), 'the start-up was logged');
  t.notOk(env.sluice.logs.some((l) => l.msg === 'sessions continue on the primary'), 'no line about sessions that do not exist');
});
