import { StartupCode } from './codes';
import { ProtocolError, Reader } from './reader';
import { Writer } from './writer';

/**
 * The untyped first messages (PostgreSQL docs, "Message Formats": StartupMessage and friends).
 * `terminated`: the parameter list ended with its terminator as the packet's last byte (else
 * PostgreSQL refuses the layout, after looking at the parameters it could read).
 */
export type StartupPacket =
  | { kind: 'startup'; major: number; minor: number; params: Map<string, string>; terminated: boolean }
  | { kind: 'ssl' }
  | { kind: 'gssenc' }
  | { kind: 'cancel'; processId: number; secretKey: number }
  /** A CancelRequest of the wrong size. */
  | { kind: 'badCancel' }
  | { kind: 'unknown'; code: number };

const CANCEL_REQUEST_LENGTH = 16;

export function decodeStartupPacket(buf: Buffer, start: number, end: number): StartupPacket {
  const code = buf.readUInt32BE(start + 4);
  switch (code) {
    case StartupCode.SSLRequest:
      return { kind: 'ssl' };
    case StartupCode.GSSENCRequest:
      return { kind: 'gssenc' };
    case StartupCode.CancelRequest:
      if (end - start !== CANCEL_REQUEST_LENGTH) return { kind: 'badCancel' };
      return { kind: 'cancel', processId: buf.readInt32BE(start + 8), secretKey: buf.readInt32BE(start + 12) };
  }
  const major = code >>> 16;
  const minor = code & 0xffff;
  if (major !== 3) return { kind: 'unknown', code };
  // As ProcessStartupPacket scans it: name/value strings up to an empty name; a string may run
  // to the packet's end (PostgreSQL reads one zero byte past it); a name without a value ends the
  // scan. The last value of a repeated name wins.
  const params = new Map<string, string>();
  const stop = (i: number) => {
    const z = buf.indexOf(0, i);
    return z < 0 || z > end ? end : z;
  };
  let off = start + 8;
  while (off < end) {
    if (buf[off] === 0) break;
    const nameEnd = stop(off);
    const valueAt = nameEnd + 1;
    if (valueAt >= end) break;
    const valueEnd = stop(valueAt);
    params.set(buf.toString('utf8', off, nameEnd), buf.toString('utf8', valueAt, valueEnd));
    off = valueEnd + 1;
  }
  return { kind: 'startup', major, minor, params, terminated: off === end - 1 };
}

/** A StartupMessage for protocol 3.0 with exactly these parameters, in this order. */
export function encodeStartupMessage(params: ReadonlyMap<string, string>): Buffer {
  const w = new Writer(128).beginUntyped().int32(StartupCode.Protocol3);
  for (const [k, v] of params) w.cstring(k).cstring(v);
  return w.byte(0).end().finish();
}

/** The SQL text of a Query message. */
export function decodeQuery(buf: Buffer, start: number, end: number): string {
  return new Reader(buf, start + 5, end).cstring();
}

/** The statement name and SQL text of a Parse message. */
export function decodeParse(buf: Buffer, start: number, end: number): { name: string; query: string } {
  const r = new Reader(buf, start + 5, end);
  const name = r.cstring();
  return { name, query: r.cstring() };
}

export { ProtocolError };

/** The password of a PasswordMessage (cleartext or "md5..."). */
export function decodePassword(buf: Buffer, start: number, end: number): string {
  const r = new Reader(buf, start + 5, end);
  const pw = r.cstring();
  if (r.remaining !== 0) throw new ProtocolError('invalid password packet size');
  return pw;
}

/** SASLInitialResponse: the mechanism and the client's first message (-1: none). */
export function decodeSaslInitial(buf: Buffer, start: number, end: number): { mechanism: string; data: string } {
  const r = new Reader(buf, start + 5, end);
  const mechanism = r.cstring();
  const n = r.int32();
  const data = n < 0 ? '' : r.bytes(n).toString('utf8');
  if (r.remaining !== 0) throw new ProtocolError('invalid SASLInitialResponse size');
  return { mechanism, data };
}
