import { MAX_STARTUP_PACKET_LENGTH } from './codes';
import { ProtocolError } from './reader';

/**
 * Receives each whole frame as a range of a buffer: [start, end) holds the header and the body.
 * type is the message type byte, or -1 for an untyped (startup-family) message. Returning false
 * halts the framer with this frame not consumed: resume() delivers it again. The buffer is
 * the chunk it arrived in whenever the frame did not straddle chunks, so consecutive frames of
 * one chunk are adjacent and can be forwarded with a single write.
 */
export type FrameSink = (type: number, buf: Buffer, start: number, end: number) => void | false;

/**
 * Cuts a byte stream into frames by their headers (PostgreSQL docs, "Message Formats"). Lengths
 * are distrusted: below the minimum or above the cap is a ProtocolError before any body byte is
 * buffered. Only a frame that straddles chunks is copied, once, when it completes.
 */
const EMPTY = Buffer.alloc(0);

export class Framer {
  /** Untyped frames (StartupMessage, SSLRequest, CancelRequest) until the caller switches. */
  typed: boolean;
  /**
   * Set by a sink to stop delivering frames: the rest stays buffered until the caller clears it
   * and calls resume() (a session that must finish async work before reading on).
   */
  halted = false;
  private parts: Buffer[] = [];
  private partsLen = 0;
  private need = -1;

  constructor(
    private readonly maxLength: number,
    typed: boolean,
  ) {
    this.typed = typed;
  }

  push(chunk: Buffer, sink: FrameSink): void {
    let buf = chunk;
    if (this.partsLen > 0) {
      if (chunk.length > 0) this.parts.push(chunk);
      this.partsLen += chunk.length;
      if (this.need < 0) this.need = this.frameLengthOfParts();
      if (this.need < 0 || this.partsLen < this.need) return;
      buf = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.partsLen);
      this.parts = [];
      this.partsLen = 0;
      this.need = -1;
    }
    this.scan(buf, sink);
  }

  private scan(buf: Buffer, sink: FrameSink): void {
    let off = 0;
    const len = buf.length;
    while (off < len && !this.halted) {
      const header = this.typed ? 5 : 4;
      if (len - off < header) break;
      const frameLen = this.frameLength(buf, off);
      if (len - off < frameLen) {
        this.need = frameLen;
        break;
      }
      if (sink(this.typed ? buf[off]! : -1, buf, off, off + frameLen) === false) {
        this.halted = true;
        break;
      }
      off += frameLen;
    }
    if (off < len) {
      this.parts.push(buf.subarray(off));
      this.partsLen = len - off;
    }
  }

  /** Whole frame length (header included) read at off, validated. */
  private frameLength(buf: Buffer, off: number): number {
    if (this.typed) {
      const n = buf.readUInt32BE(off + 1);
      if (n < 4 || n > this.maxLength) {
        throw new ProtocolError(`invalid message length ${n} for message type "${String.fromCharCode(buf[off]!)}"`);
      }
      return n + 1;
    }
    const n = buf.readUInt32BE(off);
    // PostgreSQL caps the packet without its length word.
    if (n < 8 || n - 4 > MAX_STARTUP_PACKET_LENGTH) throw new ProtocolError(`invalid length of startup packet: ${n}`);
    return n;
  }

  private frameLengthOfParts(): number {
    const header = this.typed ? 5 : 4;
    if (this.partsLen < header) return -1;
    const head = Buffer.concat(this.parts, this.partsLen).subarray(0, header);
    return this.frameLength(head, 0);
  }

  /** Bytes received but not yet delivered as a whole frame. */
  get buffered(): number {
    return this.partsLen;
  }

  /** Delivers frames that were held back while halted. */
  resume(sink: FrameSink): void {
    this.halted = false;
    if (this.partsLen > 0) this.push(EMPTY, sink);
  }
}
