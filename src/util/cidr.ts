import { isIPv4, isIPv6 } from 'node:net';

/** An address range: the network's 16 bytes (IPv4 as IPv4-mapped IPv6) and the prefix length. */
export interface Cidr {
  readonly bytes: Buffer;
  readonly bits: number;
}

/** 16 bytes for an IPv4 or IPv6 address; IPv4 becomes ::ffff:a.b.c.d, as Node reports it on a dual-stack socket. */
export function addressBytes(address: string): Buffer | null {
  if (isIPv4(address)) return Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...address.split('.').map(Number)]);
  if (!isIPv6(address)) return null;
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes its two hex words first.
  const text = address.split('%')[0]!.replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_, a, b, c, d) =>
    `${((+a << 8) | +b).toString(16)}:${((+c << 8) | +d).toString(16)}`,
  );
  const [head, rest] = text.includes('::') ? text.split('::') : [text, undefined];
  const words = (s: string | undefined) => (s ? s.split(':').filter(Boolean).map((w) => parseInt(w, 16)) : []);
  const left = words(head);
  const right = words(rest);
  const fill = rest === undefined ? [] : new Array<number>(8 - left.length - right.length).fill(0);
  const all = [...left, ...fill, ...right];
  const out = Buffer.alloc(16);
  all.forEach((w, i) => out.writeUInt16BE(w, i * 2));
  return out;
}

/** "10.0.0.0/8", "2001:db8::/32", or one address (a host: /32 or /128). */
export function parseCidr(text: string): Cidr {
  const [addr, prefix, extra] = text.trim().split('/');
  const bytes = addressBytes(addr ?? '');
  if (!bytes || extra !== undefined) throw new Error(`"${text}" is not an IP address or CIDR range`);
  const v4 = isIPv4(addr!);
  const max = v4 ? 32 : 128;
  const n = prefix === undefined ? max : Number(prefix);
  if (!/^\d+$/.test(prefix ?? String(max)) || n > max) throw new Error(`"${text}": prefix length must be 0 to ${max}`);
  return { bytes, bits: v4 ? n + 96 : n };
}

export function cidrContains(c: Cidr, address: string): boolean {
  const a = addressBytes(address);
  if (!a) return false;
  let bits = c.bits;
  for (let i = 0; i < 16 && bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((a[i]! & mask) !== (c.bytes[i]! & mask)) return false;
  }
  return true;
}

/** A comma-separated list of ranges (proxy_protocol_trusted_addresses and the like). */
export const parseCidrList = (text: string): Cidr[] =>
  text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(parseCidr);
