import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { authFailed, malformedScram } from './failures';
import { hmac, MAX_SCRAM_MESSAGE, scramAttributes, sha256, validNonce, xor } from './scram';
import type { ScramSecret } from './secret';

export const SCRAM_SHA_256 = 'SCRAM-SHA-256';
export const SCRAM_SHA_256_PLUS = 'SCRAM-SHA-256-PLUS';

/** What a finished exchange proved: the ClientKey (for SCRAM pass-through) and the last reply. */
export interface ScramOutcome {
  readonly serverFinal: string;
  readonly clientKey: Buffer;
}

/**
 * The server side of SCRAM-SHA-256 as PostgreSQL runs it (PostgreSQL docs, "SCRAM-SHA-256
 * Authentication"): the user name in the messages is ignored (the startup packet's counts), no
 * authorization identity, channel binding tls-server-end-point when offered. For a user without
 * a verifier the exchange runs on a mock one, whose salt is stable per user name, and fails at
 * the end exactly as a wrong password does.
 */
export class ScramServer {
  private gs2Header = '';
  private clientFirstBare = '';
  private serverFirst = '';
  private nonce = '';
  private readonly verifier: ScramSecret;

  /**
   * @param cbData the tls-server-end-point hash when SCRAM-SHA-256-PLUS was offered (TLS), else null
   */
  constructor(
    private readonly user: string,
    private readonly secret: ScramSecret | null,
    mockKey: Buffer,
    private readonly cbData: Buffer | null,
  ) {
    this.verifier = secret ?? mockVerifier(user, mockKey);
  }

  /** SASLInitialResponse: the chosen mechanism and client-first-message; returns server-first. */
  first(mechanism: string, data: string): string {
    if (mechanism !== SCRAM_SHA_256 && !(mechanism === SCRAM_SHA_256_PLUS && this.cbData)) {
      throw malformedScram(`client selected an invalid SASL authentication mechanism "${mechanism}"`);
    }
    if (data.length > MAX_SCRAM_MESSAGE) throw malformedScram('client-first-message too long');
    const m = /^(n|y|p=[^,]*),(a=[^,]*)?,(.*)$/s.exec(data);
    if (!m) throw malformedScram('invalid GS2 header');
    const flag = m[1]!;
    if (m[2]) throw malformedScram('client uses authorization identity, but it is not supported');
    if (mechanism === SCRAM_SHA_256_PLUS) {
      if (flag !== 'p=tls-server-end-point') throw malformedScram('channel binding type is not supported or was not requested');
    } else if (flag.startsWith('p=')) {
      throw malformedScram('client requires channel binding but selected SCRAM-SHA-256');
    } else if (flag === 'y' && this.cbData) {
      // The client could bind and believes we cannot: someone stripped -PLUS from our offer.
      throw malformedScram('SCRAM channel binding negotiation error');
    }
    this.gs2Header = `${flag},,`;
    this.clientFirstBare = m[3]!;
    const attrs = scramAttributes(this.clientFirstBare);
    if (attrs[0]?.[0] === 'm') throw malformedScram('extensions are not supported');
    if (attrs[0]?.[0] !== 'n' || attrs[1]?.[0] !== 'r') throw malformedScram('expected attributes "n" and "r"');
    const clientNonce = attrs[1][1];
    if (!validNonce(clientNonce)) throw malformedScram('invalid client nonce');
    this.nonce = clientNonce + randomBytes(18).toString('base64');
    this.serverFirst = `r=${this.nonce},s=${this.verifier.salt.toString('base64')},i=${this.verifier.iterations}`;
    return this.serverFirst;
  }

  /** SASLResponse: client-final-message; returns the outcome, or throws 28P01 on a wrong proof. */
  final(data: string): ScramOutcome {
    if (!this.serverFirst) throw malformedScram('client-final-message before client-first-message');
    const attrs = scramAttributes(data);
    const [c, r] = attrs;
    const p = attrs[attrs.length - 1];
    if (c?.[0] !== 'c' || r?.[0] !== 'r' || p?.[0] !== 'p' || attrs.length < 3) throw malformedScram('expected attributes "c", "r" and "p"');
    const expectedBinding = Buffer.concat([Buffer.from(this.gs2Header), this.gs2Header.startsWith('p=') ? this.cbData! : Buffer.alloc(0)]);
    if (c[1] !== expectedBinding.toString('base64')) throw malformedScram('SCRAM channel binding check failed');
    if (r[1] !== this.nonce) throw malformedScram('nonce does not match');
    const proof = Buffer.from(p[1], 'base64');
    if (proof.length !== 32) throw malformedScram('malformed proof in client-final-message');
    const withoutProof = data.slice(0, data.lastIndexOf(',p='));
    const authMessage = `${this.clientFirstBare},${this.serverFirst},${withoutProof}`;
    const clientKey = xor(proof, hmac(this.verifier.storedKey, authMessage));
    const proved = timingSafeEqual(sha256(clientKey), this.verifier.storedKey);
    if (!this.secret || !proved) throw authFailed(this.user);
    return { serverFinal: `v=${hmac(this.secret.serverKey, authMessage).toString('base64')}`, clientKey };
  }
}

/** A verifier for a user who has none: deterministic per user, so a probe cannot tell. */
function mockVerifier(user: string, mockKey: Buffer): ScramSecret {
  const salt = createHmac('sha256', mockKey).update(user).digest().subarray(0, 16);
  const filler = createHmac('sha256', mockKey).update(`${user}\0keys`).digest();
  return { kind: 'scram', iterations: 4096, salt, storedKey: filler, serverKey: filler };
}
