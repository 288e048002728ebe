import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeError } from '../../src/protocol/backend';
import { Framer } from '../../src/protocol/framer';
import { Reader } from '../../src/protocol/reader';
import { Writer } from '../../src/protocol/writer';
import type { ServerOptions } from '../../src/server';
import { startSluiceWith, TestSluice } from './sluice';

// A scripted PostgreSQL for component tests (pgpool's pgproto transcripts are the model): it
// speaks enough of the backend protocol for Sluice (startup, simple and extended query, the
// queries Sluice asks itself) and records every message each connection gets, so a test can
// say exactly what each node received. Replies a real server cannot be made to give on cue (a
// reply held back, a connection dying in the middle of one) are the script's to give.

/** One message a connection received, as text: "Q select 1", "P s1 select $1", "B p1 s1", "E p1", "S". */
export type Received = string;

/** What the script makes of a simple Query: the default answer, nothing yet (held), or death. */
export type Answer = 'default' | 'hold' | 'die' | { rows: string[]; tag?: string } | { error: string; code: string } | { partialThenDie: string[] };

const INTERNAL = [
  /pg_is_in_recovery\(\)/,
  /pg_current_wal_(insert_)?lsn\(\)/,
  /pg_last_wal_replay_lsn\(\)/,
  /pg_stat_replication/,
  /pg_stat_wal_receiver/,
  /FROM pg_catalog\.pg_proc/,
  /FROM pg_catalog\.pg_class/,
];

export class FakeConnection {
  readonly received: Received[] = [];
  readonly params = new Map<string, string>();
  txStatus: 'I' | 'T' | 'E' = 'I';
  /** Replies held back by the script, sent by release(). */
  private held: Buffer[] = [];
  private holding = false;
  private out: Buffer[] = [];
  private readonly framer = new Framer(1 << 30, false);
  /** In the extended protocol, an error skips everything up to Sync. */
  private skipToSync = false;
  closed = false;

  constructor(
    readonly node: FakeNode,
    readonly socket: Socket,
    readonly pid: number,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => {
      try {
        this.framer.push(d, (type, buf, start, end) => this.onMessage(type, buf, start, end));
      } catch {
        socket.destroy();
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      node.changed();
    });
  }

  /** A session's connection (not one of Sluice's own checks, which call themselves "sluice"). */
  get isSession(): boolean {
    return this.params.get('application_name') !== 'sluice';
  }

  /** What a session sent, without Sluice's own queries (commit positions, look-ups) unless asked. */
  transcript(all = false): Received[] {
    return all ? [...this.received] : this.received.filter((r) => !INTERNAL.some((re) => re.test(r)));
  }

  release(): void {
    this.holding = false;
    const h = this.held;
    this.held = [];
    for (const b of h) this.socket.write(b);
  }

  kill(): void {
    this.socket.destroy();
  }

  /** Cancel requests that named this connection. */
  cancels = 0;

  /** A CancelRequest for this connection: a held reply becomes "canceling statement". */
  cancelled(): void {
    this.cancels++;
    this.node.changed();
    if (!this.holding) return;
    this.holding = false;
    this.held = [];
    if (this.txStatus === 'T') this.txStatus = 'E';
    this.socket.write(Buffer.concat([encodeError('ERROR', '57014', 'canceling statement due to user request'), readyForQuery(this.txStatus)]));
  }

  private send(b: Buffer): void {
    this.out.push(b);
  }

  private flush(): void {
    if (this.out.length === 0) return;
    const b = Buffer.concat(this.out);
    this.out = [];
    if (this.holding) this.held.push(b);
    else if (!this.socket.destroyed) this.socket.write(b);
  }

  private onMessage(type: number, buf: Buffer, start: number, end: number): void {
    if (type === -1) return this.onStartup(buf, start, end);
    const r = new Reader(buf, start + 5, end);
    const t = String.fromCharCode(type);
    switch (t) {
      case 'Q': {
        const sql = r.cstring();
        this.record(`Q ${sql}`);
        return this.query(sql);
      }
      case 'P': {
        const name = r.cstring();
        const sql = r.cstring();
        this.record(`P ${name} ${sql}`);
        if (!this.skipToSync) this.send(msg('1'));
        return;
      }
      case 'B': {
        const portal = r.cstring();
        const stmt = r.cstring();
        this.record(`B ${portal} ${stmt}`);
        if (!this.skipToSync) this.send(msg('2'));
        return;
      }
      case 'D': {
        const kind = String.fromCharCode(r.byte());
        const name = r.cstring();
        this.record(`D ${kind} ${name}`);
        if (this.skipToSync) return;
        if (kind === 'S') this.send(msg('t', new Writer(8).int16(0).finish().subarray(0)));
        this.send(rowDescription());
        return;
      }
      case 'E': {
        const portal = r.cstring();
        this.record(`E ${portal}`);
        if (this.skipToSync) return;
        this.send(dataRow(this.node.name));
        this.send(commandComplete('SELECT 1'));
        return;
      }
      case 'C': {
        const kind = String.fromCharCode(r.byte());
        const name = r.cstring();
        this.record(`C ${kind} ${name}`);
        if (!this.skipToSync) this.send(msg('3'));
        return;
      }
      case 'H':
        this.record('H');
        return this.flush();
      case 'S':
        this.record('S');
        this.skipToSync = false;
        this.send(readyForQuery(this.txStatus));
        return this.flush();
      case 'X':
        this.record('X');
        this.socket.end();
        return;
      default:
        this.record(t);
    }
  }

  private record(m: Received): void {
    this.received.push(m);
    this.node.changed();
  }

  private onStartup(buf: Buffer, start: number, end: number): void {
    const code = buf.readUInt32BE(start + 4);
    if (code === 80877103) {
      this.socket.write('N');
      return;
    }
    if (code === 80877102) {
      // A CancelRequest: the connection it names answers its held query with 57014.
      this.node.cancel(buf.readInt32BE(start + 8), buf.readInt32BE(start + 12));
      this.socket.end();
      return;
    }
    const r = new Reader(buf, start + 8, end);
    for (;;) {
      const k = r.cstring();
      if (k === '') break;
      this.params.set(k, r.cstring());
    }
    this.framer.typed = true;
    const w = new Writer(256);
    w.begin(0x52).int32(0).end(); // AuthenticationOk
    for (const [k, v] of [['server_version', '15.0'], ['client_encoding', 'UTF8'], ['DateStyle', 'ISO, MDY'], ['integer_datetimes', 'on'], ['standard_conforming_strings', 'on']]) {
      w.begin(0x53).cstring(k!).cstring(v!).end();
    }
    w.begin(0x4b).int32(this.pid).int32(this.pid * 7).end();
    w.begin(0x5a).byte(0x49).end();
    this.socket.write(w.finish());
    this.node.changed();
  }

  private query(sql: string): void {
    const answer = this.node.script(sql, this);
    if (answer === 'die') return this.kill();
    if (answer === 'hold') this.holding = true;
    if (typeof answer === 'object' && 'partialThenDie' in answer) {
      this.send(rowDescription());
      for (const v of answer.partialThenDie) this.send(dataRow(v));
      this.flush();
      setImmediate(() => this.kill());
      return;
    }
    if (typeof answer === 'object' && 'error' in answer) {
      this.send(encodeError('ERROR', answer.code, answer.error));
      if (this.txStatus === 'T') this.txStatus = 'E';
    } else if (typeof answer === 'object') {
      this.send(rowDescription());
      for (const v of answer.rows) this.send(dataRow(v));
      this.send(commandComplete(answer.tag ?? `SELECT ${answer.rows.length}`));
    } else {
      this.defaultAnswer(sql);
    }
    this.send(readyForQuery(this.txStatus));
    this.flush();
  }

  /** What a server would answer, as far as routing can tell: which node, and the transaction status. */
  private defaultAnswer(sql: string): void {
    const s = sql.trim().toLowerCase();
    const internal = this.internalAnswer(s);
    if (internal) {
      if (internal.length > 0) this.send(rowDescription());
      for (const v of internal) this.send(dataRow(v));
      this.send(commandComplete(`SELECT ${internal.length}`));
      return;
    }
    // Sluice's own error statements: DO $$BEGIN RAISE EXCEPTION USING ERRCODE = '...', MESSAGE = '...'
    const raised = /raise exception using errcode = '([0-9a-z]{5})', message = '((?:[^']|'')*)'/.exec(s);
    if (raised) {
      this.send(encodeError('ERROR', raised[1]!.toUpperCase(), raised[2]!.replace(/''/g, "'")));
      if (this.txStatus === 'T') this.txStatus = 'E';
      return;
    }
    const word = s.split(/\s+/, 1)[0]!;
    if (this.txStatus === 'E' && !['rollback', 'abort', 'commit', 'end'].includes(word) && !s.startsWith('rollback to')) {
      this.send(encodeError('ERROR', '25P02', 'current transaction is aborted, commands ignored until end of transaction block'));
      return;
    }
    if (word === 'begin' || word === 'start') {
      this.txStatus = 'T';
      return this.send(commandComplete('BEGIN'));
    }
    if (word === 'commit' || word === 'end') {
      const failed = this.txStatus === 'E';
      this.txStatus = 'I';
      return this.send(commandComplete(failed ? 'ROLLBACK' : 'COMMIT'));
    }
    if (s.startsWith('rollback to')) {
      if (this.txStatus === 'E') this.txStatus = 'T';
      return this.send(commandComplete('ROLLBACK'));
    }
    if (word === 'rollback' || word === 'abort') {
      this.txStatus = 'I';
      return this.send(commandComplete('ROLLBACK'));
    }
    if (s.includes('1/0')) {
      this.send(encodeError('ERROR', '22012', 'division by zero'));
      if (this.txStatus === 'T') this.txStatus = 'E';
      return;
    }
    const tags: Record<string, string> = { set: 'SET', reset: 'RESET', savepoint: 'SAVEPOINT', release: 'RELEASE', prepare: 'PREPARE', deallocate: 'DEALLOCATE', discard: 'DISCARD ALL', insert: 'INSERT 0 1', update: 'UPDATE 1', delete: 'DELETE 1', create: 'CREATE TABLE', do: 'DO' };
    if (tags[word]) return this.send(commandComplete(tags[word]));
    // A read: one row naming the node that answered it.
    this.send(rowDescription());
    this.send(dataRow(this.node.name));
    this.send(commandComplete('SELECT 1'));
  }

  private internalAnswer(s: string): string[] | null {
    if (s.includes('pg_is_in_recovery()')) return [this.node.standby ? 't' : 'f'];
    if (/pg_current_wal_(insert_)?lsn\(\)|pg_last_wal_replay_lsn\(\)/.test(s)) return ['0/3000060'];
    if (s.includes('pg_stat_replication') || s.includes('pg_stat_wal_receiver') || s.includes('from pg_catalog.pg_class')) return [];
    if (s.includes('from pg_catalog.pg_proc')) return s.includes('json_object_agg') ? [] : [];
    return null;
  }
}

/** One fake node: a listening socket and every connection it ever accepted. */
export class FakeNode {
  readonly connections: FakeConnection[] = [];
  /** The script: decides how each simple Query is answered ('default' unless a test says). */
  script: (sql: string, conn: FakeConnection) => Answer = () => 'default';
  private waiters: (() => void)[] = [];
  private nextPid: number;

  private constructor(
    private readonly server: Server,
    readonly id: number,
    public standby: boolean,
  ) {
    this.nextPid = 1000 * (id + 1);
  }

  get name(): string {
    return `node${this.id}`;
  }

  get port(): number {
    const a = this.server.address();
    return typeof a === 'object' && a ? a.port : 0;
  }

  static start(id: number, standby: boolean): Promise<FakeNode> {
    return new Promise((resolve) => {
      const server = createServer({ noDelay: true });
      const node = new FakeNode(server, id, standby);
      server.on('connection', (s) => node.connections.push(new FakeConnection(node, s, node.nextPid++)));
      server.listen(0, '127.0.0.1', () => resolve(node));
    });
  }

  /** The session connections (not Sluice's own checks), in the order they were opened. */
  sessions(): FakeConnection[] {
    return this.connections.filter((c) => c.isSession && c.params.size > 0);
  }

  /** Everything the session connections received, in order, without Sluice's own queries. */
  transcript(): Received[] {
    return this.sessions().flatMap((c) => c.transcript());
  }

  changed(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  cancel(pid: number, key: number): void {
    const c = this.connections.find((x) => x.pid === pid && x.pid * 7 === key);
    c?.cancelled();
  }

  /** Waits for a condition on this node's state (each change looks again), to a deadline. */
  async until<T>(what: string, check: () => T | undefined | false, timeoutMs = 5_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = check();
      if (v) return v;
      if (Date.now() > deadline) throw new Error(`${this.name}: timed out waiting for ${what}; received ${JSON.stringify(this.transcript())}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  stop(): Promise<void> {
    for (const c of this.connections) c.socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

function msg(type: string, body: Buffer = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(5 + body.length);
  b[0] = type.charCodeAt(0);
  b.writeUInt32BE(4 + body.length, 1);
  body.copy(b, 5);
  return b;
}

function rowDescription(): Buffer {
  return new Writer(64).begin(0x54).int16(1).cstring('v').int32(0).int16(0).int32(25).int16(-1).int32(-1).int16(0).end().finish();
}

function dataRow(v: string): Buffer {
  const b = Buffer.from(v);
  return new Writer(16 + b.length).begin(0x44).int16(1).int32(b.length).bytes(b).end().finish();
}

function commandComplete(tag: string): Buffer {
  return new Writer(32).begin(0x43).cstring(tag).end().finish();
}

function readyForQuery(s: 'I' | 'T' | 'E'): Buffer {
  return new Writer(8).begin(0x5a).byte(s.charCodeAt(0)).end().finish();
}

/** A cluster of fake nodes (node 0 the primary) with Sluice in front, for one test. */
export interface FakeCluster {
  nodes: FakeNode[];
  sluice: TestSluice;
  stop(): Promise<void>;
}

/**
 * Fake nodes and an in-process Sluice on port 0 in front of them: no health or replication
 * checks (the test decides what each node says), reads balanced as `weights` says.
 */
export async function fakeCluster(count: number, overrides: Record<string, unknown> = {}, opts: ServerOptions = {}): Promise<FakeCluster> {
  const nodes = await Promise.all(Array.from({ length: count }, (_, i) => FakeNode.start(i, i > 0)));
  const dir = mkdtempSync(join(tmpdir(), 'sluice-fake-'));
  const { weights, ...rest } = overrides as { weights?: number[] };
  const sluice = await startSluiceWith(
    {
      listen_addresses: '127.0.0.1',
      port: 0,
      pcp_listen_addresses: '',
      pcp_socket_dir: '',
      http_port: 0,
      work_dir: dir,
      health_check_period: 0,
      sr_check_period: 0,
      backend: nodes.map((n, i) => ({ hostname: '127.0.0.1', port: n.port, weight: weights?.[i] ?? 1 })),
      ...rest,
    },
    dir,
    opts,
  );
  return {
    nodes,
    sluice,
    async stop() {
      await sluice.stop();
      await Promise.all(nodes.map((n) => n.stop()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
