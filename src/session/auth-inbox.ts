/**
 * Hands the client's messages to the authentication exchange one at a time. A message is taken
 * from the framer only when the exchange waits for one; anything else stays in the framer
 * (halted), so a client that sends ahead loses nothing and cannot make us buffer.
 */
export class AuthInbox {
  private waiter: { resolve: (m: Buffer) => void; reject: (e: Error) => void } | null = null;
  private error: Error | null = null;

  constructor(private readonly resumeFramer: () => void) {}

  /** A frame from the client; false: nobody waits, so the framer keeps it. */
  push(buf: Buffer, start: number, end: number): boolean {
    const w = this.waiter;
    if (!w) return false;
    this.waiter = null;
    w.resolve(Buffer.from(buf.subarray(start, end)));
    return true;
  }

  receive(): Promise<Buffer> {
    if (this.error) return Promise.reject(this.error);
    const p = new Promise<Buffer>((resolve, reject) => (this.waiter = { resolve, reject }));
    try {
      // Delivers a held frame at once, or throws on a malformed one (the exchange's error then).
      this.resumeFramer();
    } catch (err) {
      this.waiter = null;
      p.catch(() => undefined);
      return Promise.reject(err as Error);
    }
    return p;
  }

  /** The client left: a pending receive() fails. */
  close(err: Error): void {
    this.error = err;
    this.waiter?.reject(err);
    this.waiter = null;
  }
}
