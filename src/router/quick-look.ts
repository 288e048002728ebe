// A first look at a simple Query's bytes, for a Sluice that routes nothing (one node, no load
// balancing) but must still know what a session changes (transaction mode carries it to the
// next connection the session borrows). Most statements change nothing a connection keeps:
// reading them in full (classify) costs more than the rest of the data path, and their
// constants defeat the classifier's memo. This look is conservative: whatever it cannot clear is
// classified as before.

/**
 * First keywords of statements that leave nothing on their connection by themselves. BEGIN,
 * ROLLBACK, ABORT and the savepoint commands are not here: the replay log needs them (what a
 * rolled-back transaction or savepoint set is taken out), and their texts hit the memo anyway.
 */
const PLAIN = new Set(['select', 'insert', 'update', 'delete', 'merge', 'values', 'table', 'with', 'commit', 'end', 'copy', 'explain', 'lock', 'truncate', 'vacuum', 'analyze', 'notify', 'call']);

/**
 * Words whose presence anywhere sends the statement to the classifier (SELECT ... INTO TEMP,
 * pg_advisory_lock, set_config), by their first letter.
 */
const SUSPECT: (string | undefined)[] = new Array<string | undefined>(128).fill(undefined);
SUSPECT[0x74] = 'temp';
SUSPECT[0x61] = 'advisory';
SUSPECT[0x73] = 'set_config';

const LONGEST_KEYWORD = 9;

/**
 * True when the Query (its message bytes) is one statement that certainly sets nothing, prepares
 * nothing, makes no temporary object and takes no session lock: its first keyword is a plain
 * one, it holds no ';' but a trailing one, and none of "temp", "advisory" and "set_config"
 * appears in it (in any letter case).
 */
export function isPlainQuery(buf: Buffer, start: number, end: number): boolean {
  const last = end - 1; // the text's terminating zero
  let i = skipSpace(buf, start + 5, last);
  const word = wordAt(buf, i, last);
  if (!PLAIN.has(word)) return false;
  i += word.length;
  let tail = last;
  while (tail > i && (buf[tail - 1] === 0x20 || buf[tail - 1] === 0x0a || buf[tail - 1] === 0x09 || buf[tail - 1] === 0x0d || buf[tail - 1] === 0x3b)) tail--;
  for (let j = i; j < tail; j++) {
    const c = buf[j]!;
    if (c === 0x3b) return false;
    if (c >= 0x80) return false; // non-ASCII text: leave it to the classifier
    const suspect = SUSPECT[c | 0x20];
    if (suspect !== undefined && matchesAt(buf, j, tail, suspect)) return false;
  }
  return true;
}

/** The Query's first keyword is LISTEN or UNLISTEN (transaction mode answers those itself). */
export function isListenQuery(buf: Buffer, start: number, end: number): boolean {
  const last = end - 1;
  const word = wordAt(buf, skipSpace(buf, start + 5, last), last);
  return word === 'listen' || word === 'unlisten';
}

function skipSpace(buf: Buffer, i: number, last: number): number {
  while (i < last && (buf[i] === 0x20 || buf[i] === 0x0a || buf[i] === 0x09 || buf[i] === 0x0d)) i++;
  return i;
}

/** The keyword at i, in lower case (letters only; longer than any keyword looked for: cut). */
function wordAt(buf: Buffer, i: number, last: number): string {
  let word = '';
  for (; i < last && word.length <= LONGEST_KEYWORD; i++) {
    const c = buf[i]! | 0x20;
    if (c < 0x61 || c > 0x7a) break;
    word += String.fromCharCode(c);
  }
  return word;
}

function matchesAt(buf: Buffer, at: number, end: number, word: string): boolean {
  if (at + word.length > end) return false;
  for (let k = 0; k < word.length; k++) {
    const b = buf[at + k]!;
    // Letters in either case; '_' (which has no case bit) as itself.
    if (b !== word.charCodeAt(k) && (b | 0x20) !== word.charCodeAt(k)) return false;
  }
  return true;
}

/**
 * First keywords of statements that cannot call nextval or setval unless their text names them
 * (a function a SELECT calls is not seen: as with pgpool's function lists, its name is the hint).
 */
const NO_SEQUENCE_VALUES = new Set(['select', 'values', 'table', 'show', 'fetch', 'move', 'close', 'begin', 'start', 'commit', 'end', 'rollback', 'abort', 'savepoint', 'release', 'set', 'reset', 'listen', 'unlisten', 'notify', 'discard', 'deallocate', 'prepare', 'lock', 'vacuum', 'analyze', 'checkpoint']);
const SEQUENCE_WRITERS = /nextval|setval/i;
const FIRST_WORD = /^\s*([a-z]+)/i;

/**
 * True when the statement may leave sequence values on its connection (what currval and lastval
 * return there): it may run nextval or setval, by name or through a column default.
 */
export function mayUseSequences(sql: string): boolean {
  const word = FIRST_WORD.exec(sql)?.[1]?.toLowerCase();
  return word === undefined || !NO_SEQUENCE_VALUES.has(word) || SEQUENCE_WRITERS.test(sql);
}

/** mayUseSequences for a Query message's bytes, without decoding them. */
export function queryMayUseSequences(buf: Buffer, start: number, end: number): boolean {
  const last = end - 1;
  const at = skipSpace(buf, start + 5, last);
  const word = wordAt(buf, at, last);
  if (!NO_SEQUENCE_VALUES.has(word)) return true;
  for (let j = at + word.length; j < last; j++) {
    const c = buf[j]! | 0x20;
    if ((c === 0x6e /* n */ && matchesAt(buf, j, last, 'nextval')) || (c === 0x73 /* s */ && matchesAt(buf, j, last, 'setval'))) return true;
  }
  return false;
}
