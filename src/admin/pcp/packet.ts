import { Writer } from '../../protocol/writer';
import { MAX_PCP_PACKET_LENGTH, PcpReply } from './codes';

/** One PCP packet: its type and its payload (the bytes after the length). */
export interface PcpPacket {
  type: number;
  payload: Buffer;
}

/** A request whose length pgpool would refuse (pgpool.md c.2). */
export class PcpLengthError extends Error {
  constructor(readonly length: number) {
    super(`incorrect packet length (${length})`);
  }
}

/**
 * Cuts a PCP byte stream into packets: type byte, Int32 length counting itself, payload (the
 * PostgreSQL v3 frame shape). Lengths are checked before any payload is buffered.
 */
export class PcpReader {
  private buf: Buffer = Buffer.alloc(0);

  constructor(private readonly maxLength = MAX_PCP_PACKET_LENGTH) {}

  push(chunk: Buffer): PcpPacket[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: PcpPacket[] = [];
    while (this.buf.length >= 5) {
      const len = this.buf.readInt32BE(1);
      if (len < 4 || len >= this.maxLength) throw new PcpLengthError(len);
      if (this.buf.length < len + 1) break;
      out.push({ type: this.buf[0]!, payload: Buffer.from(this.buf.subarray(5, len + 1)) });
      this.buf = this.buf.subarray(len + 1);
    }
    return out;
  }
}

/** A packet of NUL-terminated strings (how PCP sends every field, numbers included). */
export function pcpPacket(type: number, fields: readonly string[] = []): Buffer {
  const w = new Writer(64).begin(type);
  for (const f of fields) w.cstring(f);
  return w.end().finish();
}

/** The NUL-terminated strings of a payload. */
export function pcpFields(payload: Buffer): string[] {
  const out: string[] = [];
  let start = 0;
  for (let i = 0; i < payload.length; i++) {
    if (payload[i] !== 0) continue;
    out.push(payload.toString('utf8', start, i));
    start = i + 1;
  }
  if (start < payload.length) out.push(payload.toString('utf8', start));
  return out;
}

export type PcpSeverity = 'ERROR' | 'FATAL' | 'WARNING' | 'NOTICE';

/**
 * pgpool's error and notice packets (pgpool.md c.4): PostgreSQL's field layout with only
 * S, C, M, D, F and L, each value cut at 255 characters. pgpool's client re-reads the first
 * character of an S, M or D value as a field code, so Sluice's messages never start with a
 * capital S, M or D (the texts below are pgpool's own).
 */
export function pcpError(severity: PcpSeverity, message: string, detail?: string): Buffer {
  const cut = (s: string) => s.slice(0, 255);
  const type = severity === 'ERROR' || severity === 'FATAL' ? PcpReply.Error : PcpReply.Notice;
  const w = new Writer(64 + message.length).begin(type);
  w.byte(0x53).cstring(severity);
  w.byte(0x43).cstring('XX000');
  w.byte(0x4d).cstring(cut(message));
  if (detail !== undefined) w.byte(0x44).cstring(cut(detail));
  w.byte(0x46).cstring('sluice');
  w.byte(0x4c).cstring('0');
  return w.byte(0).end().finish();
}

/** An error packet decoded (by sluicectl). */
export function decodePcpError(payload: Buffer): { severity: string; message: string; detail?: string } {
  const out: { severity: string; message: string; detail?: string } = { severity: 'ERROR', message: '' };
  let i = 0;
  while (i < payload.length && payload[i] !== 0) {
    const code = payload[i]!;
    const end = payload.indexOf(0, i + 1);
    const value = payload.toString('utf8', i + 1, end < 0 ? payload.length : end);
    if (code === 0x53) out.severity = value;
    else if (code === 0x4d) out.message = value;
    else if (code === 0x44) out.detail = value;
    i = end < 0 ? payload.length : end + 1;
  }
  return out;
}
