import { AuthRequest, Backend, StartupCode, TxStatus, txStatusByte, txStatusFromByte } from './codes';
import { Reader } from './reader';
import { Writer } from './writer';

// Decoders for the server messages Sluice acts on, and encoders for the ones it sends itself.

export function decodeReadyForQuery(buf: Buffer, start: number): TxStatus {
  return txStatusFromByte(buf[start + 5]!);
}

export function decodeParameterStatus(buf: Buffer, start: number, end: number): [string, string] {
  const r = new Reader(buf, start + 5, end);
  return [r.cstring(), r.cstring()];
}

export function decodeBackendKeyData(buf: Buffer, start: number, end: number): { processId: number; secretKey: number } {
  const r = new Reader(buf, start + 5, end);
  return { processId: r.int32(), secretKey: r.int32() };
}

/** ErrorResponse / NoticeResponse fields by their one-letter codes (S, V, C, M, D, ...). */
export function decodeFields(buf: Buffer, start: number, end: number): Map<string, string> {
  const r = new Reader(buf, start + 5, end);
  const fields = new Map<string, string>();
  while (r.remaining > 0) {
    const t = r.byte();
    if (t === 0) break;
    fields.set(String.fromCharCode(t), r.cstring());
  }
  return fields;
}

export type AuthMessage =
  | { kind: 'ok' }
  | { kind: 'cleartext' }
  | { kind: 'md5'; salt: Buffer }
  | { kind: 'sasl'; mechanisms: string[] }
  | { kind: 'saslContinue'; data: string }
  | { kind: 'saslFinal'; data: string }
  | { kind: 'other'; code: number };

export function decodeAuthentication(buf: Buffer, start: number, end: number): AuthMessage {
  const r = new Reader(buf, start + 5, end);
  const code = r.int32();
  switch (code) {
    case AuthRequest.Ok:
      return { kind: 'ok' };
    case AuthRequest.CleartextPassword:
      return { kind: 'cleartext' };
    case AuthRequest.MD5Password:
      return { kind: 'md5', salt: r.bytes(4) };
    case AuthRequest.SASL: {
      const mechanisms: string[] = [];
      for (let m = r.cstring(); m !== ''; m = r.remaining > 0 ? r.cstring() : '') mechanisms.push(m);
      return { kind: 'sasl', mechanisms };
    }
    case AuthRequest.SASLContinue:
      return { kind: 'saslContinue', data: r.rest().toString('utf8') };
    case AuthRequest.SASLFinal:
      return { kind: 'saslFinal', data: r.rest().toString('utf8') };
    default:
      return { kind: 'other', code };
  }
}

export type Severity = 'ERROR' | 'FATAL' | 'PANIC' | 'WARNING' | 'NOTICE' | 'LOG' | 'INFO' | 'DEBUG';

/** ErrorResponse or NoticeResponse with the fields PostgreSQL always sends. */
export function encodeNotice(
  type: typeof Backend.ErrorResponse | typeof Backend.NoticeResponse,
  severity: Severity,
  code: string,
  message: string,
  detail?: string,
  hint?: string,
): Buffer {
  const w = new Writer(64 + message.length).begin(type);
  w.byte(0x53).cstring(severity); // S: localised severity
  w.byte(0x56).cstring(severity); // V: severity, never localised
  w.byte(0x43).cstring(code); // C: SQLSTATE
  w.byte(0x4d).cstring(message); // M: primary message
  if (detail !== undefined) w.byte(0x44).cstring(detail); // D: detail
  if (hint !== undefined) w.byte(0x48).cstring(hint); // H: hint
  return w.byte(0).end().finish();
}

export function encodeError(severity: 'ERROR' | 'FATAL', code: string, message: string, detail?: string, hint?: string): Buffer {
  return encodeNotice(Backend.ErrorResponse, severity, code, message, detail, hint);
}

export function encodeAuthenticationOk(w: Writer): Writer {
  return w.begin(Backend.Authentication).int32(AuthRequest.Ok).end();
}

export function encodeParameterStatus(w: Writer, name: string, value: string): Writer {
  return w.begin(Backend.ParameterStatus).cstring(name).cstring(value).end();
}

export function encodeBackendKeyData(w: Writer, processId: number, secretKey: number): Writer {
  return w.begin(Backend.BackendKeyData).int32(processId).int32(secretKey).end();
}

export function encodeCommandComplete(tag: string): Buffer {
  return new Writer(16).begin(Backend.CommandComplete).cstring(tag).end().finish();
}

export function encodeReadyForQuery(w: Writer, status: TxStatus): Writer {
  return w.begin(Backend.ReadyForQuery).byte(txStatusByte(status)).end();
}

/**
 * NegotiateProtocolVersion: the newest protocol version we speak and the options we ignored. The
 * docs call the first field the newest minor version; PostgreSQL sends the whole version code
 * (PG_PROTOCOL_LATEST, 3.0 = 196608), and libpq reads it so.
 */
export function encodeNegotiateProtocolVersion(w: Writer, unsupported: readonly string[]): Writer {
  w.begin(Backend.NegotiateProtocolVersion).int32(StartupCode.Protocol3).int32(unsupported.length);
  for (const o of unsupported) w.cstring(o);
  return w.end();
}

/** An authentication request of ours to a client (cleartext, MD5 with its salt, SASL steps). */
export function encodeAuthRequest(code: number, payload?: Buffer | string): Buffer {
  const w = new Writer(16).begin(Backend.Authentication).int32(code);
  if (payload !== undefined) w.bytes(typeof payload === 'string' ? Buffer.from(payload) : payload);
  return w.end().finish();
}

/** AuthenticationSASL: the mechanisms offered, each a C string, then an empty one. */
export function encodeAuthSasl(mechanisms: readonly string[]): Buffer {
  const w = new Writer(64).begin(Backend.Authentication).int32(AuthRequest.SASL);
  for (const m of mechanisms) w.cstring(m);
  return w.byte(0).end().finish();
}
