import { connect, Socket } from 'node:net';
import { serialize } from 'pg-protocol';
import { decodeFields } from '../../src/protocol/backend';
import { Backend } from '../../src/protocol/codes';
import { Framer } from '../../src/protocol/framer';

export interface Frame {
  type: string;
  body: Buffer;
}

/**
 * A protocol client that sends exactly the bytes a test gives it and records every frame it gets
 * back: for pipelines, malformed input and checks on ReadyForQuery status.
 */
export class RawClient {
  readonly frames: Frame[] = [];
  closed = false;
  private readonly framer = new Framer(1 << 30, true);
  private waiters: (() => void)[] = [];

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.framer.push(chunk, (type, buf, start, end) => {
        this.frames.push({ type: String.fromCharCode(type), body: Buffer.from(buf.subarray(start + 5, end)) });
      });
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  static open(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port }, () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  /** Connects and completes startup as `user` (trust), up to the first ReadyForQuery. */
  static async startup(port: number, params: Record<string, string> = {}): Promise<RawClient> {
    const c = await RawClient.open(port);
    c.send(startupMessage({ user: 'postgres', database: 'postgres', ...params }));
    await c.until((f) => f.type === 'Z' || f.type === 'E');
    return c;
  }

  send(...bufs: Buffer[]): void {
    this.socket.write(Buffer.concat(bufs));
  }

  /** Waits until a frame matches (returns it) or the connection closes or the deadline passes. */
  async until(match: (f: Frame) => boolean, timeoutMs = 10_000, from = 0): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const f = this.frames.slice(from).find(match);
      if (f) return f;
      if (this.closed) throw new Error(`connection closed; frames: ${this.frames.map((x) => x.type).join('')}`);
      if (Date.now() > deadline) throw new Error(`timeout; frames: ${this.frames.map((x) => x.type).join('')}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, deadline - Date.now());
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Waits for the connection to close. */
  async waitClosed(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('connection did not close');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 50);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Count of ReadyForQuery frames so far, and the status byte of the last one. */
  readyCount(): number {
    return this.frames.filter((f) => f.type === 'Z').length;
  }

  lastStatus(): string {
    const z = this.frames.filter((f) => f.type === 'Z').pop();
    return z ? String.fromCharCode(z.body[0]!) : '';
  }

  errors(): Map<string, string>[] {
    return this.frames.filter((f) => f.type === 'E').map((f) => fieldsOf(f));
  }

  close(): void {
    this.socket.destroy();
  }
}

export function fieldsOf(f: Frame): Map<string, string> {
  const whole = Buffer.concat([Buffer.from([Backend.ErrorResponse, 0, 0, 0, 0]), f.body]);
  whole.writeUInt32BE(whole.length - 1, 1);
  return decodeFields(whole, 0, whole.length);
}

export function startupMessage(params: Record<string, string>, version = 196608): Buffer {
  const parts: Buffer[] = [Buffer.alloc(8)];
  for (const [k, v] of Object.entries(params)) parts.push(Buffer.from(`${k}\0${v}\0`));
  parts.push(Buffer.from([0]));
  const b = Buffer.concat(parts);
  b.writeInt32BE(b.length, 0);
  b.writeInt32BE(version, 4);
  return b;
}

export { serialize };
