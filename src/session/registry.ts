// Live sessions, server-wide: the client limit, the cancel keys, and what the admin views list.
import { randomFillSync } from 'node:crypto';
import { Errors } from '../protocol/errors';
import { LiveMap } from '../util/live-set';

export interface Cancellable {
  /** The process id this session's client was given in BackendKeyData. */
  readonly processId: number;
  cancel(): void;
}

/**
 * Several instances (use_watchdog): this one's slot, held in the top byte of every secret it
 * gives, and the way to the instance that holds another slot.
 */
export interface CancelPeers {
  /** This instance's slot (1..255), or 0 while it has none (secrets are then random throughout). */
  slot(): number;
  /** Sends the CancelRequest on to the instance with this slot (nothing when none has it). */
  forward(slot: number, processId: number, secret: number): void;
}

/** A CancelRequest forwarded is not forwarded again for this long (two instances with stale views of the slots cannot bounce it). */
const FORWARD_QUIET_MS = 5000;

interface Waiter {
  token: object;
  resolve(): void;
  reject(err: Error): void;
}

/**
 * Live sessions: the num_init_children cap (with pgpool's reserved_connections rule) and the
 * cancel keys. Cancel secrets are random 32-bit values from crypto (24 random bits behind the
 * instance's slot when several instances coordinate), unique among live sessions, and a cancel
 * needs both the process id and the secret to match.
 */
export class SessionRegistry {
  private active = 0;
  private readonly waiters: Waiter[] = [];
  /** A LiveMap: a closed session must not outlive its close in a stale table (live-set.ts). */
  private readonly bySecret = new LiveMap<number, Cancellable>();
  private peers: CancelPeers | null = null;
  private readonly randoms = new Int32Array(1024);
  private nextRandom = 1024;
  /** Cancel keys forwarded lately, and when. */
  private readonly forwarded = new Map<string, number>();

  constructor(
    private readonly maxSessions: number,
    private readonly reserved: number,
  ) {}

  get activeCount(): number {
    return this.active;
  }

  get waitingCount(): number {
    return this.waiters.length;
  }

  /**
   * A session slot. Past the cap, clients wait in line (pgpool leaves them in the listen queue),
   * unless reserved_connections is set: then they are refused with 53300, as pgpool does.
   */
  acquireSlot(token: object): Promise<void> {
    if (this.takeSlot()) return Promise.resolve();
    if (this.reserved > 0) return Promise.reject(Errors.tooManyClients());
    return new Promise((resolve, reject) => this.waiters.push({ token, resolve, reject }));
  }

  /**
   * A slot at once when one is free (false: acquireSlot waits, or refuses). The last
   * reserved_connections slots are never taken.
   */
  takeSlot(): boolean {
    if (this.active >= this.maxSessions - this.reserved) return false;
    this.active++;
    return true;
  }

  /** Gives the slot to the next client in line, or frees it. */
  releaseSlot(): void {
    const next = this.waiters.shift();
    if (next) next.resolve();
    else this.active--;
  }

  /** Removes a waiting client that went away (its promise is left pending). */
  abandonWait(token: object): void {
    const i = this.waiters.findIndex((w) => w.token === token);
    if (i >= 0) this.waiters.splice(i, 1);
  }

  /** Rejects every waiting client (shutdown). */
  rejectWaiters(err: Error): void {
    for (const w of this.waiters.splice(0)) w.reject(err);
  }

  /** With several instances: secrets carry this instance's slot; other slots' cancels are sent on. */
  setPeers(peers: CancelPeers | null): void {
    this.peers = peers;
  }

  newSecret(session: Cancellable): number {
    const slot = this.peers?.slot() ?? 0;
    for (;;) {
      // PgBouncer's peering does the same with two bytes of the key; the process id must match too.
      const r = this.randomInt32();
      const s = slot > 0 ? ((slot << 24) | (r & 0xffffff)) | 0 : r;
      // 0 is no secret at all (a session that never started has it).
      if (s !== 0 && !this.bySecret.has(s)) {
        this.bySecret.set(s, session);
        return s;
      }
    }
  }

  /** Random 32-bit integers, drawn from the system 1024 at a time (one per session start). */
  private randomInt32(): number {
    if (this.nextRandom === this.randoms.length) {
      randomFillSync(this.randoms);
      this.nextRandom = 0;
    }
    return this.randoms[this.nextRandom++]!;
  }

  forgetSecret(secret: number): void {
    this.bySecret.delete(secret);
  }

  /** A CancelRequest: only the session whose process id and secret both match is cancelled. */
  cancel(processId: number, secret: number, now = Date.now()): boolean {
    const s = this.bySecret.get(secret);
    if (s && s.processId === processId) {
      s.cancel();
      return true;
    }
    const slot = secret >>> 24;
    if (this.peers && slot !== 0 && slot !== this.peers.slot()) {
      for (const [k, at] of this.forwarded) if (now - at > FORWARD_QUIET_MS) this.forwarded.delete(k);
      const key = `${processId}:${secret}`;
      if (!this.forwarded.has(key)) {
        this.forwarded.set(key, now);
        this.peers.forward(slot, processId, secret);
      }
    }
    return false;
  }
}

/** One backend connection of a session, as SHOW POOL_POOLS and pcp_proc_info list it. */
export interface BackendInfo {
  node: number;
  processId: number;
  connectedAt: Date;
}

/**
 * A session as the admin commands show it. pgpool lists its child processes; a Sluice session
 * is what a child is to pgpool: one client connection with a backend connection per node it
 * used (docs/admin.md).
 */
export interface SessionInfo {
  id: number;
  startedAt: Date;
  database: string;
  user: string;
  clientHost: string;
  clientPort: number;
  /** pgpool's process status names. */
  status: 'Wait for connection' | 'Idle' | 'Idle in transaction' | 'Execute command';
  /** Seconds since the client last sent something (0 unless client_idle_limit is on). */
  idleSeconds: number;
  loadBalanceNode: number | null;
  backends: BackendInfo[];
  /** Between transactions with nothing in flight (a pause may hold it there). */
  atBoundary: boolean;
  /** What the client's held message waits for (null: none is held). */
  waitingFor: string | null;
  /** Transaction mode: what keeps the session on its server connection (null: nothing). */
  pinnedBy: string | null;
}
