/**
 * Hands the client's messages to the authentication exchange one at a time. A message is taken
 * from the framer only when the exchange waits for one; anything else stays in the framer
 * (halted), so a client that sends ahead loses nothing and cannot make us buffer.
 */
export class AuthInbox {
  private waiter: { resolve: (m: Buffer) => void; reject: (e: Error) => void } | null = null;
  private closed = false;

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
    if (this.closed) return Promise.reject(sessionClosed());
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

  /**
   * The session ended: a pending receive() fails. Every session closes its inbox, so the Error
   * (whose stack capture is not cheap) is made only when someone is there to get it.
   */
  close(): void {
    this.closed = true;
    this.waiter?.reject(sessionClosed());
    this.waiter = null;
  }
}

const sessionClosed = () => new Error('session closed');
