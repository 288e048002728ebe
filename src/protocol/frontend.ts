import { StartupCode } from './codes';
import { ProtocolError, Reader } from './reader';
import { Writer } from './writer';

/** The untyped first messages (PostgreSQL docs, "Message Formats": StartupMessage and friends). */
export type StartupPacket =
  | { kind: 'startup'; major: number; minor: number; params: Map<string, string> }
  | { kind: 'ssl' }
  | { kind: 'gssenc' }
  | { kind: 'cancel'; processId: number; secretKey: number }
  | { kind: 'unknown'; code: number };

export function decodeStartupPacket(buf: Buffer, start: number, end: number): StartupPacket {
  const r = new Reader(buf, start + 4, end);
  const code = r.int32();
  switch (code) {
    case StartupCode.SSLRequest:
      return { kind: 'ssl' };
    case StartupCode.GSSENCRequest:
      return { kind: 'gssenc' };
    case StartupCode.CancelRequest:
      return { kind: 'cancel', processId: r.int32(), secretKey: r.int32() };
  }
  const major = code >>> 16;
  const minor = code & 0xffff;
  if (major !== 3) return { kind: 'unknown', code };
  const params = new Map<string, string>();
  for (;;) {
    const name = r.cstring();
    if (name === '') break;
    const value = r.cstring();
    params.set(name, value);
  }
  return { kind: 'startup', major, minor, params };
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
