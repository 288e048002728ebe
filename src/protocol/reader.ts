/**
 * A cursor over one message body. Every read checks bounds and throws ProtocolError, so a
 * malformed message from a client can never read past its own frame.
 */
export class ProtocolError extends Error {
  override name = 'ProtocolError';
}

export class Reader {
  private pos: number;

  constructor(
    private readonly buf: Buffer,
    start = 0,
    private readonly end = buf.length,
  ) {
    this.pos = start;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  private need(n: number): void {
    if (n < 0 || this.pos + n > this.end) throw new ProtocolError('message too short');
  }

  byte(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }

  int16(): number {
    this.need(2);
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  int32(): number {
    this.need(4);
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  bytes(n: number): Buffer {
    this.need(n);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  /** A NUL-terminated string (the protocol's String type). */
  cstring(): string {
    const nul = this.buf.indexOf(0, this.pos);
    if (nul < 0 || nul >= this.end) throw new ProtocolError('string not terminated');
    const v = this.buf.toString('utf8', this.pos, nul);
    this.pos = nul + 1;
    return v;
  }

  rest(): Buffer {
    return this.bytes(this.remaining);
  }
}
