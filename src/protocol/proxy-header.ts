// The PROXY protocol (HAProxy's proxy-protocol.txt), versions 1 and 2: a load balancer in front
// of Sluice prefixes each connection with the client's real address.

const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_PREFIX = Buffer.from('PROXY ');
/** v1's longest line (proxy-protocol.txt §2.1), CRLF included. */
const V1_MAX = 107;
/** v2 addresses plus TLVs: a balancer sends far less; more is refused rather than buffered. */
const V2_MAX_BODY = 2048;

export type ProxyHeader =
  /** The connection is the balancer's own (health check, LOCAL, UNKNOWN): keep the socket's address. */
  | { kind: 'local'; length: number }
  | { kind: 'proxied'; length: number; address: string; port: number };

export class ProxyHeaderError extends Error {
  override name = 'ProxyHeaderError';
}

/** Whether the bytes so far start (or could start) a PROXY header. */
export function looksLikeProxyHeader(b: Buffer): boolean {
  // Checked on every new connection: a startup packet (its first byte a length's high byte, 0) is told apart at once.
  if (b[0] !== V1_PREFIX[0] && b[0] !== V2_SIGNATURE[0]) return false;
  const sig = b[0] === 0x50 ? V1_PREFIX : V2_SIGNATURE;
  const n = Math.min(b.length, sig.length);
  return n > 0 && b.subarray(0, n).equals(sig.subarray(0, n));
}

/** The header at the start of `b`, or null when more bytes are needed; throws when malformed. */
export function parseProxyHeader(b: Buffer): ProxyHeader | null {
  return b[0] === 0x50 ? parseV1(b) : parseV2(b);
}

function parseV1(b: Buffer): ProxyHeader | null {
  const eol = b.indexOf('\r\n');
  if (eol < 0) {
    if (b.length >= V1_MAX) throw new ProxyHeaderError('PROXY v1 header too long');
    return null;
  }
  if (eol + 2 > V1_MAX) throw new ProxyHeaderError('PROXY v1 header too long');
  const parts = b.toString('latin1', 0, eol).split(' ');
  const length = eol + 2;
  if (parts[1] === 'UNKNOWN') return { kind: 'local', length };
  const [, proto, src, , sport] = parts;
  const port = Number(sport);
  const ipv4 = /^\d{1,3}(\.\d{1,3}){3}$/;
  const valid = parts.length === 6 && ((proto === 'TCP4' && ipv4.test(src!)) || (proto === 'TCP6' && /^[0-9a-fA-F:.]+$/.test(src!) && src!.includes(':')));
  if (!valid || !/^\d{1,5}$/.test(sport!) || port > 65535) throw new ProxyHeaderError('malformed PROXY v1 header');
  return { kind: 'proxied', length, address: src!, port };
}

function parseV2(b: Buffer): ProxyHeader | null {
  if (b.length < 16) return null;
  if (!b.subarray(0, 12).equals(V2_SIGNATURE)) throw new ProxyHeaderError('malformed PROXY v2 signature');
  const verCmd = b[12]!;
  const family = b[13]!;
  const bodyLength = b.readUInt16BE(14);
  if (verCmd >> 4 !== 2) throw new ProxyHeaderError(`unsupported PROXY protocol version ${verCmd >> 4}`);
  if (bodyLength > V2_MAX_BODY) throw new ProxyHeaderError('PROXY v2 header too long');
  const length = 16 + bodyLength;
  if (b.length < length) return null;
  const command = verCmd & 0x0f;
  if (command === 0) return { kind: 'local', length };
  if (command !== 1) throw new ProxyHeaderError(`unsupported PROXY v2 command ${command}`);
  if (family === 0x11 || family === 0x12) {
    if (bodyLength < 12) throw new ProxyHeaderError('PROXY v2 address block too short');
    return { kind: 'proxied', length, address: [...b.subarray(16, 20)].join('.'), port: b.readUInt16BE(24) };
  }
  if (family === 0x21 || family === 0x22) {
    if (bodyLength < 36) throw new ProxyHeaderError('PROXY v2 address block too short');
    const words: string[] = [];
    for (let i = 0; i < 8; i++) words.push(b.readUInt16BE(16 + i * 2).toString(16));
    return { kind: 'proxied', length, address: words.join(':'), port: b.readUInt16BE(48) };
  }
  // UNSPEC or a Unix socket: no IP address to report, as for LOCAL.
  return { kind: 'local', length };
}
