import type { Socket } from 'node:net';

/**
 * Collects frames bound for one socket and writes adjacent ones (consecutive ranges of the same
 * received chunk) with a single write: the common case is one write per chunk, with no copy.
 */
export class WriteBatch {
  private buf: Buffer | null = null;
  private start = 0;
  private end = 0;

  constructor(private readonly write: (b: Buffer) => boolean) {}

  add(buf: Buffer, start: number, end: number): void {
    if (this.buf === buf && this.end === start) {
      this.end = end;
      return;
    }
    this.flush();
    this.buf = buf;
    this.start = start;
    this.end = end;
  }

  /** Writes what is collected; false when the socket asks us to wait for 'drain'. */
  flush(): boolean {
    if (this.buf === null) return true;
    const b = this.start === 0 && this.end === this.buf.length ? this.buf : this.buf.subarray(this.start, this.end);
    this.buf = null;
    return this.write(b);
  }
}

/**
 * Calls `go` once the socket drains, or closes: a node that dies with a full socket must not
 * leave its client paused forever.
 */
export function untilWritable(sock: Socket, go: () => void): void {
  const done = () => {
    sock.off('drain', done);
    sock.off('close', done);
    go();
  };
  sock.once('drain', done);
  sock.once('close', done);
}
