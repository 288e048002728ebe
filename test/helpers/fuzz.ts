import fc from 'fast-check';

// Generators of hostile protocol bytes for the fuzz tests: message lengths at and around every
// boundary, truncated and oversized fields, SCRAM messages with huge nonces.

/** Lengths a parser must survive: below the minimum, at the caps, just past them, absurd. */
export const BOUNDARY_LENGTHS = [0, 1, 3, 4, 5, 7, 8, 9, 9999, 10000, 10001, 10004, 10005, 8191, 8192, 8193, 0x3fffffff, 0x40000000, 0x7fffffff, 0x80000000, 0xffffffff];

const bytes = (max: number) => fc.uint8Array({ maxLength: max }).map((a) => Buffer.from(a));

/** A length field: right, off by a little, at a boundary, or anything. */
export const lengthFor = (real: number) =>
  fc.oneof(
    { weight: 4, arbitrary: fc.constant(real) },
    { weight: 2, arbitrary: fc.integer({ min: -3, max: 3 }).map((d) => Math.max(0, real + d)) },
    { weight: 2, arbitrary: fc.constantFrom(...BOUNDARY_LENGTHS) },
    { weight: 1, arbitrary: fc.nat({ max: 0xffffffff }) },
  );

const cstrings = (parts: string[]) => Buffer.concat(parts.map((p) => Buffer.from(`${p}\0`)));

/** An untyped message: StartupMessage (well-formed or not), SSLRequest, GSSENCRequest, CancelRequest, junk. */
export const startupPacket = (users: string[]) =>
  fc
    .tuple(
      fc.oneof(
        fc.tuple(fc.constantFrom(...users), fc.dictionary(fc.string({ maxLength: 12 }), fc.string({ maxLength: 40 }), { maxKeys: 4 })).map(([user, extra]) =>
          Buffer.concat([Buffer.from([0, 3, 0, 0]), cstrings(['user', user, 'database', 'postgres', ...Object.entries(extra).flat()]), Buffer.from([0])]),
        ),
        fc.constantFrom(Buffer.from([0x04, 0xd2, 0x16, 0x2f]), Buffer.from([0x04, 0xd2, 0x16, 0x30])),
        fc.tuple(fc.integer(), fc.integer()).map(([p, k]) => {
          const b = Buffer.alloc(12);
          b.writeInt32BE(80877102, 0);
          b.writeInt32BE(p, 4);
          b.writeInt32BE(k, 8);
          return b;
        }),
        fc.tuple(fc.integer(), bytes(64)).map(([code, rest]) => Buffer.concat([Buffer.from([code >>> 24, code >>> 16, code >>> 8, code].map((x) => x & 0xff)), rest])),
      ),
      fc.nat(),
    )
    .chain(([body]) => lengthFor(body.length + 4).map((len) => withLength(null, len, body)));

/** SASLInitialResponse / SASLResponse / PasswordMessage with hostile content. */
export const passwordMessage = fc.oneof(
  fc.tuple(fc.constantFrom('SCRAM-SHA-256', 'SCRAM-SHA-256-PLUS', 'PLAIN', ''), scramFirst(), fc.integer({ min: -2, max: 3 })).chain(([mech, data, skew]) => {
    const d = Buffer.from(data);
    const len = Buffer.alloc(4);
    len.writeInt32BE(skew === -2 ? -1 : d.length + (skew === 0 ? 0 : skew));
    const body = Buffer.concat([Buffer.from(`${mech}\0`), len, d]);
    return lengthFor(body.length + 4).map((l) => withLength(0x70, l, body));
  }),
  scramFinal().chain((s) => lengthFor(Buffer.byteLength(s) + 4).map((l) => withLength(0x70, l, Buffer.from(s)))),
  bytes(200).chain((b) => lengthFor(b.length + 4).map((l) => withLength(0x70, l, b))),
);

/** client-first-message shapes, with nonces up to 64 kB. */
export function scramFirst() {
  return fc.oneof(
    fc.tuple(fc.constantFrom('n,,', 'y,,', 'p=tls-server-end-point,,', 'p=x,,', 'n,a=admin,', 'x,,', ''), fc.string({ maxLength: 20 }), nonce()).map(([gs2, user, r]) => `${gs2}n=${user},r=${r}`),
    fc.string({ maxLength: 300 }),
  );
}

/** client-final-message shapes: right and wrong channel binding, nonce, proof. */
export function scramFinal() {
  return fc
    .tuple(fc.constantFrom('c=biws', 'c=eSws', 'c=', 'x=1', ''), nonce(), fc.oneof(fc.base64String({ maxLength: 64 }), fc.string({ maxLength: 2000 })))
    .map(([c, r, p]) => `${c},r=${r},p=${p}`);
}

function nonce() {
  return fc.oneof(
    { weight: 3, arbitrary: fc.string({ minLength: 1, maxLength: 40 }) },
    { weight: 1, arbitrary: fc.integer({ min: 1000, max: 65536 }).map((n) => 'A'.repeat(n)) },
  );
}

/** Message types a client may send (and a few it may not). */
const TYPES = [...'QPBEDCHSXdcfp', 'x', '\0', '\xff'].map((c) => c.charCodeAt(0));

/** A typed frontend message, its length field and body mutated. */
export const typedMessage = fc.oneof(
  { weight: 3, arbitrary: fc.tuple(fc.constantFrom(...TYPES), bytes(300)).chain(([type, body]) => lengthFor(body.length + 4).map((l) => withLength(type, l, body))) },
  {
    weight: 1,
    arbitrary: fc.tuple(fc.constantFrom(0x51, 0x50), fc.string({ maxLength: 200 })).map(([type, sql]) => withLength(type, Buffer.byteLength(sql) + (type === 0x50 ? 8 : 5), Buffer.from(type === 0x50 ? `\0${sql}\0\0\0` : `${sql}\0`))),
  },
  { weight: 1, arbitrary: fc.constantFrom(...BOUNDARY_LENGTHS).map((l) => withLength(0x51, l, Buffer.alloc(0))) },
);

/** A message: type byte (none for the startup family), a 4-byte length, the body. */
export function withLength(type: number | null, len: number, body: Buffer): Buffer {
  const head = Buffer.alloc(type === null ? 4 : 5);
  if (type !== null) head[0] = type;
  head.writeUInt32BE(len >>> 0, type === null ? 0 : 1);
  return Buffer.concat([head, body]);
}
