import { serialize } from 'pg-protocol';
import { decodeFields } from '../protocol/backend';
import { Backend, Frontend } from '../protocol/codes';
import { Reader } from '../protocol/reader';
import { BackendConnection, BackendHandler } from './connection';

export interface QueryResult {
  rows: (string | null)[][];
  error?: { code: string; message: string; detail?: string; hint?: string };
}

function decodeDataRow(buf: Buffer, start: number, end: number): (string | null)[] {
  const r = new Reader(buf, start + 5, end);
  const n = r.int16();
  const row: (string | null)[] = [];
  for (let i = 0; i < n; i++) {
    const len = r.int32();
    row.push(len < 0 ? null : r.bytes(len).toString('utf8'));
  }
  return row;
}

/**
 * Runs simple queries of Sluice's own (resets, role checks) on a connection that nobody else is
 * using: all Query messages in one write, one result per query, settled at the last
 * ReadyForQuery. The connection's handler is taken for the duration.
 */
export function runQueries(conn: BackendConnection, sqls: readonly string[], timeoutMs: number): Promise<QueryResult[]> {
  return runEncoded(conn, encodeQueries(sqls), timeoutMs);
}

/** Query messages encoded once, for queries run again and again (the pool's reset_query_list). */
export interface EncodedQueries {
  readonly count: number;
  readonly payload: Buffer;
}

export function encodeQueries(sqls: readonly string[]): EncodedQueries {
  return { count: sqls.length, payload: Buffer.concat(sqls.map((s) => serialize.query(s))) };
}

/** runQueries with the messages already encoded. */
export function runEncoded(conn: BackendConnection, q: EncodedQueries, timeoutMs: number): Promise<QueryResult[]> {
  // Nothing to run (an empty reset_query_list): no ReadyForQuery would ever settle it.
  if (q.count === 0) return Promise.resolve([]);
  for (let i = 0; i < q.count; i++) conn.noteSent(Frontend.Query);
  return collect(conn, q.count, timeoutMs, q.payload);
}

/**
 * One statement with text parameters, through the extended protocol: the values travel apart
 * from the SQL text, so nothing a client sent can change what the statement is (auth_query).
 */
export async function runParameterised(conn: BackendConnection, sql: string, values: readonly string[], timeoutMs: number): Promise<QueryResult> {
  for (const t of [Frontend.Parse, Frontend.Bind, Frontend.Execute, Frontend.Sync]) conn.noteSent(t);
  const payload = Buffer.concat([serialize.parse({ text: sql }), serialize.bind({ values: [...values] }), serialize.execute({}), serialize.sync()]);
  return (await collect(conn, 1, timeoutMs, payload))[0]!;
}

function collect(conn: BackendConnection, count: number, timeoutMs: number, payload: Buffer): Promise<QueryResult[]> {
  return new Promise((resolve, reject) => {
    const results: QueryResult[] = [];
    let current: QueryResult = { rows: [] };
    const timer = setTimeout(() => {
      conn.destroy();
      reject(new Error('query timeout'));
    }, timeoutMs);
    const handler: BackendHandler = {
      frame(type, buf, start, end) {
        if (type === Backend.DataRow) current.rows.push(decodeDataRow(buf, start, end));
        else if (type === Backend.ErrorResponse) {
          const f = decodeFields(buf, start, end);
          current.error = { code: f.get('C') ?? '', message: f.get('M') ?? '', detail: f.get('D'), hint: f.get('H') };
        } else if (type === Backend.ReadyForQuery) {
          results.push(current);
          current = { rows: [] };
          if (results.length === count) {
            clearTimeout(timer);
            resolve(results);
          }
        }
      },
      closed(err) {
        clearTimeout(timer);
        reject(err ?? new Error('connection closed'));
      },
    };
    conn.setHandler(handler);
    conn.write(payload);
  });
}
