import fc from 'fast-check';
import { connect, Socket } from 'node:net';
import t from 'tap';
import { passwordMessage, startupPacket, typedMessage } from '../helpers/fuzz';
import { fieldsOf } from '../helpers/raw-client';
import { Framer } from '../../src/protocol/framer';
import { clusterWithSluice } from '../helpers/sluice';

// A live Sluice under hostile bytes: 2,500 connections, each a random startup-family message
// then random and mutated typed messages (password and SASL messages among them), 100,000+
// messages written (Sluice reads a connection only up to its first bad frame, so it reads far
// fewer: the figure is the attack's size, not what was parsed). Every connection must end (an error and a close, or a close) within the
// timeouts; every error Sluice sends carries a SQLSTATE (but the 2.0-framed one a 0.x-2.x client
// gets, as from PostgreSQL, which has none); Sluice keeps serving a bystander session throughout
// and logs no internal error.

const CONNECTIONS = 2500;
const PARALLEL = 50;
const env = clusterWithSluice(1, {
  authentication_timeout: 2,
  client_idle_limit: 2,
  max_message_size: 8192,
  user: [{ name: 'scram_user', password: 'scram pw' }],
});

interface Outcome {
  closed: boolean;
  codes: string[];
}

/** Sends the script, then a frame no parser accepts (length 1), and waits for the close. */
function attack(port: number, script: Buffer[]): Promise<Outcome> {
  return new Promise((resolve) => {
    const codes: string[] = [];
    const framer = new Framer(1 << 30, true);
    let seenAny = false;
    const s: Socket = connect({ host: '127.0.0.1', port }, () => {
      for (const m of script) s.write(m);
      s.write(Buffer.from([0x51, 0, 0, 0, 1]));
    });
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ closed: false, codes });
    }, 15_000);
    s.on('data', (d: Buffer) => {
      // An 'S' or 'N' answer to SSLRequest comes first, untyped.
      if (!seenAny && d.length >= 1 && (d[0] === 0x4e || d[0] === 0x53)) d = d.subarray(1);
      // A protocol 0.x-2.x start (but 0.0) gets PostgreSQL's 2.0-framed error: a type byte and a line.
      if (!seenAny && /^EFATAL: {2}unsupported frontend protocol [012]\.\d+: server supports 3\.0 to 3\.0\n\0$/.test(d.toString('latin1'))) {
        seenAny = true;
        codes.push('0A000');
        return;
      }
      seenAny = true;
      try {
        framer.push(d, (type, buf, start, end) => {
          if (type === 0x45) codes.push(fieldsOf({ type: 'E', body: Buffer.from(buf.subarray(start + 5, end)) }).get('C') ?? 'none');
        });
      } catch {
        codes.push('unframeable');
      }
    });
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ closed: true, codes });
    });
  });
}

t.test(`${CONNECTIONS} hostile connections: every one ends, Sluice keeps serving`, async (t) => {
  const port = env.sluice.port;
  const bystander = await env.sluice.client();
  // The attackers idle out after 2 s; the bystander is exempt (pgpool's per-session setting).
  await bystander.query('PGPOOL SET client_idle_limit = 0');
  const scripts = fc.sample(
    fc.tuple(startupPacket(['postgres', 'scram_user', 'nobody']), fc.array(fc.oneof(typedMessage, passwordMessage), { minLength: 30, maxLength: 60 })),
    { numRuns: CONNECTIONS, seed: 4242 },
  );
  let messages = 0;
  let hung = 0;
  const badCodes = new Map<string, number>();
  for (let i = 0; i < scripts.length; i += PARALLEL) {
    const batch = scripts.slice(i, i + PARALLEL).map(([first, rest]) => [first, ...rest]);
    for (const b of batch) messages += b.length;
    const outcomes = await Promise.all(batch.map((b) => attack(port, b)));
    for (const o of outcomes) {
      if (!o.closed) hung++;
      for (const c of o.codes) if (!/^[0-9A-Z]{5}$/.test(c)) badCodes.set(c, (badCodes.get(c) ?? 0) + 1);
    }
    if (i % 500 === 0) t.same((await bystander.query('select 1 as one')).rows, [{ one: 1 }], `bystander after ${i} connections`);
  }
  t.ok(messages >= 100_000, `${messages} messages written by the attackers (not all read: a connection ends at its first bad frame)`);
  t.equal(hung, 0, 'no connection was left hanging');
  t.same([...badCodes], [], 'every error carried a SQLSTATE');
  const internal = env.sluice.logs.filter((l) => l.level === 50 || l.level === 60);
  t.same(internal.map((l) => l.msg), [], 'no error-level log line (no internal error)');
  t.same((await bystander.query('select 2 as two')).rows, [{ two: 2 }]);
  const fresh = await env.sluice.client();
  t.same((await fresh.query('select 3 as three')).rows, [{ three: 3 }], 'new sessions still start');
});
