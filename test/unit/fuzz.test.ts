import fc from 'fast-check';
import t from 'tap';
import { ClientError } from '../../src/protocol/client-error';
import { Framer } from '../../src/protocol/framer';
import { decodeParse, decodePassword, decodeQuery, decodeSaslInitial, decodeStartupPacket } from '../../src/protocol/frontend';
import { parseProxyHeader, ProxyHeaderError } from '../../src/protocol/proxy-header';
import { ProtocolError } from '../../src/protocol/reader';
import { ScramServer } from '../../src/protocol/auth/scram-server';
import { scramSecret } from '../../src/protocol/auth/secret';
import { passwordMessage, scramFinal, scramFirst, startupPacket, typedMessage, withLength, lengthFor } from '../helpers/fuzz';
import { ExtendedState } from '../../src/session/extended';

// Property-based fuzzing of every parser that reads client bytes: the only way any of them may
// fail is the error the session turns into 08P01 (or 28P01 for a SCRAM proof). 20,000 runs
// each, 180,000 messages in all.

const RUNS = 20_000;
const expected = (e: unknown) => e instanceof ProtocolError || e instanceof ClientError || e instanceof ProxyHeaderError;
const survives = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    if (!expected(e)) throw e;
  }
};

/** Feeds bytes to a framer in random chunk sizes; every frame it yields lies inside its buffer. */
function frame(typed: boolean, data: Buffer, cuts: number[], max: number, onFrame: (type: number, buf: Buffer, s: number, e: number) => void): void {
  const f = new Framer(max, typed);
  let off = 0;
  for (const c of [...cuts, data.length]) {
    const end = Math.min(data.length, off + c);
    f.push(data.subarray(off, end), (type, buf, s, e) => {
      // A typed frame is at most max plus its type byte; a startup packet 10000 plus its length word.
      if (s < 0 || e > buf.length || e - s < (typed ? 5 : 8) || e - s > (typed ? max + 1 : max + 4)) throw new Error(`frame out of bounds ${s}..${e}`);
      onFrame(type, buf, s, e);
    });
    off = end;
    if (off >= data.length) break;
  }
}

const cuts = fc.array(fc.integer({ min: 1, max: 64 }), { maxLength: 8 });

t.test('startup packets through the framer and the decoder', async (t) => {
  fc.assert(
    fc.property(fc.array(startupPacket(['postgres', 'x', '']), { minLength: 1, maxLength: 3 }), cuts, (msgs, c) =>
      survives(() => frame(false, Buffer.concat(msgs), c, 10000, (_t, buf, s, e) => void decodeStartupPacket(buf, s, e))),
    ),
    { numRuns: RUNS },
  );
  t.pass(`${RUNS} runs`);
});

t.test('typed frontend messages through the framer and each decoder', async (t) => {
  fc.assert(
    fc.property(fc.array(typedMessage, { minLength: 1, maxLength: 4 }), cuts, fc.constantFrom(8192, 1 << 20), (msgs, c, max) =>
      survives(() =>
        frame(true, Buffer.concat(msgs), c, max, (type, buf, s, e) => {
          if (type === 0x51) decodeQuery(buf, s, e);
          else if (type === 0x50) decodeParse(buf, s, e);
        }),
      ),
    ),
    { numRuns: RUNS },
  );
  t.pass(`${RUNS} runs`);
});

t.test('the extended-protocol messages the session reads: Parse, Bind, Describe, Execute, Close', async (t) => {
  // CopyData, CopyDone, CopyFail, FunctionCall and Flush are forwarded without being read: the
  // framer above is all they meet. These five are decoded into the session's statement state.
  const extended = fc.tuple(fc.constantFrom(...'PBDEC').map((c) => c.charCodeAt(0)), fc.uint8Array({ maxLength: 120 }), fc.boolean()).chain(([type, body, zeros]) => {
    // Bodies rich in zero bytes reach past the names into the counts and values that follow.
    const b = Buffer.from(zeros ? body.map((x) => (x % 3 === 0 ? 0 : x)) : body);
    return lengthFor(b.length + 4).map((l) => withLength(type, l, b));
  });
  fc.assert(
    fc.property(fc.array(extended, { minLength: 1, maxLength: 6 }), cuts, (msgs, c) => {
      const state = new ExtendedState();
      survives(() => frame(true, Buffer.concat(msgs), c, 8192, (type, buf, s, e) => survives(() => state.add(type, buf, s, e))));
    }),
    { numRuns: RUNS },
  );
  t.pass(`${RUNS} runs`);
});

t.test('password, SASLInitialResponse and SASLResponse messages', async (t) => {
  fc.assert(
    fc.property(passwordMessage, cuts, (msg, c) =>
      survives(() =>
        frame(true, msg, c, 8192, (_t, buf, s, e) => {
          survives(() => decodePassword(buf, s, e));
          decodeSaslInitial(buf, s, e);
        }),
      ),
    ),
    { numRuns: RUNS },
  );
  t.pass(`${RUNS} runs`);
});

const verifier = scramSecret('pw', 4096);

t.test('the SCRAM server with hostile client-first and client-final messages (huge nonces included)', async (t) => {
  fc.assert(
    fc.property(fc.constantFrom('SCRAM-SHA-256', 'SCRAM-SHA-256-PLUS', 'x'), scramFirst(), scramFinal(), fc.boolean(), fc.boolean(), (mech, first, final, known, tls) => {
      const s = new ScramServer('u', known ? verifier : null, Buffer.alloc(32, 1), tls ? Buffer.alloc(32, 2) : null);
      survives(() => {
        s.first(mech, first);
        s.final(final);
        throw new Error('a forged proof was accepted');
      });
    }),
    { numRuns: RUNS * 2 },
  );
  t.pass(`${RUNS * 2} runs`);
});

t.test('PROXY v1 and v2 headers, mutated', async (t) => {
  const v1 = fc.tuple(fc.constantFrom('TCP4', 'TCP6', 'UNKNOWN', 'UDP', ''), fc.string({ maxLength: 20 }), fc.string({ maxLength: 20 }), fc.string({ maxLength: 8 })).map(([p, a, b, port]) => Buffer.from(`PROXY ${p} ${a} ${b} ${port} 1\r\n`));
  // Mostly well-formed v2 headers (LOCAL and PROXY, IPv4, IPv6, UNSPEC, a length that fits the
  // body or nearly), so that complete headers are parsed often, not only rejected ones.
  const v2 = fc
    .tuple(
      fc.oneof(fc.constantFrom(0x20, 0x21), fc.nat({ max: 255 })),
      fc.oneof(fc.constantFrom(0x00, 0x11, 0x12, 0x21, 0x22, 0x31), fc.nat({ max: 255 })),
      fc.uint8Array({ maxLength: 300 }),
      fc.oneof(fc.integer({ min: -3, max: 3 }), fc.nat({ max: 0xffff })),
    )
    .map(([vc, fam, body, skew]) => {
      const len = Math.max(0, Math.min(0xffff, skew >= -3 && skew <= 3 ? body.length + skew : skew));
      const h = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, vc, fam, len >> 8, len & 0xff]);
      return Buffer.concat([h, Buffer.from(body)]);
    });
  fc.assert(
    fc.property(fc.oneof(v1, v2, fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.concat([Buffer.from('PROXY '), Buffer.from(a)]))), fc.nat({ max: 300 }), (h, cut) =>
      survives(() => {
        const slice = h.subarray(0, Math.max(1, cut));
        const r = parseProxyHeader(slice);
        if (r && (r.length > slice.length || r.length < 8)) throw new Error(`header length ${r.length} outside the bytes parsed (${slice.length})`);
      }),
    ),
    { numRuns: RUNS * 2 },
  );
  t.pass(`${RUNS * 2} runs`);
});
