import { decodeFields } from '../protocol/backend';

/** pgpool's SHOW POOL_BACKEND_STATS counters of one node (select_cnt is the routing count). */
export interface StatementCounts {
  insert: number;
  update: number;
  delete: number;
  ddl: number;
  other: number;
  panic: number;
  fatal: number;
  error: number;
}

const DDL = ['CREATE', 'ALTER', 'DROP', 'TRUNCATE', 'COMMENT', 'GRANT', 'REVOKE', 'REINDEX', 'CLUSTER'];

/** The tag's first word, at [at, stop), is `word` (compared byte by byte: no string is made). */
function tagIs(buf: Buffer, at: number, stop: number, word: string): boolean {
  if (stop - at !== word.length) return false;
  for (let i = 0; i < word.length; i++) if (buf[at + i] !== word.charCodeAt(i)) return false;
  return true;
}

/** A DDL tag (a plain loop: no closure made for every CommandComplete that gets this far, BEGIN and COMMIT among them). */
function isDdl(buf: Buffer, at: number, stop: number): boolean {
  for (let i = 0; i < DDL.length; i++) if (tagIs(buf, at, stop, DDL[i]!)) return true;
  return false;
}

/**
 * Statements and errors per node, counted from what the nodes answered to clients: the
 * CommandComplete tag's first word and the ErrorResponse severity. SELECTs are counted where
 * they are routed (SHOW POOL_NODES' select_cnt), so their tags are skipped here.
 */
export class BackendStats {
  readonly nodes: StatementCounts[] = [];
  /** Errors sent to clients by SQLSTATE class (its first two characters): a metric. */
  readonly errorClasses = new Map<string, number>();

  constructor(
    nodeCount: number,
    /** A forwarded exchange ended (its ReadyForQuery): the statement latency metric. */
    readonly exchangeDone: (node: number, seconds: number) => void = () => undefined,
  ) {
    this.grow(nodeCount);
  }

  /** Counters for nodes added by a reload. */
  grow(nodeCount: number): void {
    while (this.nodes.length < nodeCount) this.nodes.push({ insert: 0, update: 0, delete: 0, ddl: 0, other: 0, panic: 0, fatal: 0, error: 0 });
  }

  /** A CommandComplete frame at [start, end): its tag starts after the 5-byte header. */
  commandComplete(node: number, buf: Buffer, start: number, end: number): void {
    const c = this.nodes[node];
    // SELECT, the most common tag, is told from its first bytes without decoding it.
    if (!c || (buf[start + 5] === 0x53 && buf[start + 6] === 0x45 && buf[start + 7] === 0x4c)) return;
    const at = start + 5;
    let stop = at;
    while (stop < end && buf[stop] !== 0x20 && buf[stop] !== 0) stop++;
    if (tagIs(buf, at, stop, 'INSERT')) c.insert++;
    else if (tagIs(buf, at, stop, 'UPDATE')) c.update++;
    else if (tagIs(buf, at, stop, 'DELETE')) c.delete++;
    else if (isDdl(buf, at, stop)) c.ddl++;
    else c.other++;
  }

  errorResponse(node: number, buf: Buffer, start: number, end: number): void {
    const c = this.nodes[node];
    if (!c) return;
    const fields = decodeFields(buf, start, end);
    const severity = fields.get('V') ?? fields.get('S');
    if (severity === 'PANIC') c.panic++;
    else if (severity === 'FATAL') c.fatal++;
    else c.error++;
    // A node's code is trusted no further than its shape: labels stay bounded.
    const code = fields.get('C') ?? '';
    const cls = /^[0-9A-Z]{5}$/.test(code) ? code.slice(0, 2) : 'XX';
    this.errorClasses.set(cls, (this.errorClasses.get(cls) ?? 0) + 1);
  }
}
