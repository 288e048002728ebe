/**
 * Builds one or more messages into a single Buffer. The length of each message is back-patched
 * when it ends, so callers never count bytes by hand.
 */
export class Writer {
  private buf: Buffer;
  private pos = 0;
  private lengthAt = -1;

  constructor(size = 256) {
    this.buf = Buffer.allocUnsafe(size);
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  /** Starts a typed message (type byte, then a length filled in by end()). */
  begin(type: number): this {
    this.ensure(5);
    this.buf[this.pos++] = type;
    return this.beginUntyped();
  }

  /** Starts an untyped message (the startup family: length first). */
  beginUntyped(): this {
    this.ensure(4);
    this.lengthAt = this.pos;
    this.pos += 4;
    return this;
  }

  end(): this {
    if (this.lengthAt < 0) throw new Error('end() without begin()');
    this.buf.writeInt32BE(this.pos - this.lengthAt, this.lengthAt);
    this.lengthAt = -1;
    return this;
  }

  byte(v: number): this {
    this.ensure(1);
    this.buf[this.pos++] = v;
    return this;
  }

  int16(v: number): this {
    this.ensure(2);
    this.buf.writeInt16BE(v, this.pos);
    this.pos += 2;
    return this;
  }

  int32(v: number): this {
    this.ensure(4);
    this.buf.writeInt32BE(v | 0, this.pos);
    this.pos += 4;
    return this;
  }

  bytes(v: Uint8Array): this {
    this.ensure(v.length);
    this.buf.set(v, this.pos);
    this.pos += v.length;
    return this;
  }

  cstring(v: string): this {
    const n = Buffer.byteLength(v);
    this.ensure(n + 1);
    this.buf.write(v, this.pos);
    this.pos += n;
    this.buf[this.pos++] = 0;
    return this;
  }

  /** The bytes written so far (a copy-free view). */
  finish(): Buffer {
    if (this.lengthAt >= 0) throw new Error('finish() inside a message');
    return this.buf.subarray(0, this.pos);
  }
}
