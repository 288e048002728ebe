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

/** Words whose presence anywhere sends the statement to the classifier (SELECT ... INTO TEMP, pg_advisory_lock). */
const SUSPECT = ['temp', 'advisory'];

const LONGEST_KEYWORD = 9;

/**
 * True when the Query (its message bytes) is one statement that certainly sets nothing, prepares
 * nothing, makes no temporary object and takes no session lock: its first keyword is a plain
 * one, it holds no ';' but a trailing one, and neither "temp" nor "advisory" appears in it (in
 * any letter case).
 */
export function isPlainQuery(buf: Buffer, start: number, end: number): boolean {
  let i = start + 5;
  const last = end - 1; // the text's terminating zero
  while (i < last && (buf[i] === 0x20 || buf[i] === 0x0a || buf[i] === 0x09 || buf[i] === 0x0d)) i++;
  let word = '';
  for (; i < last && word.length <= LONGEST_KEYWORD; i++) {
    const c = buf[i]! | 0x20;
    if (c < 0x61 || c > 0x7a) break;
    word += String.fromCharCode(c);
  }
  if (!PLAIN.has(word)) return false;
  let tail = last;
  while (tail > i && (buf[tail - 1] === 0x20 || buf[tail - 1] === 0x0a || buf[tail - 1] === 0x09 || buf[tail - 1] === 0x0d || buf[tail - 1] === 0x3b)) tail--;
  for (let j = i; j < tail; j++) {
    const c = buf[j]!;
    if (c === 0x3b) return false;
    if (c >= 0x80) return false; // non-ASCII text: leave it to the classifier
    const lower = c | 0x20;
    if (lower === 0x74 /* t */ || lower === 0x61 /* a */) {
      for (const w of SUSPECT) if (matchesAt(buf, j, tail, w)) return false;
    }
  }
  return true;
}

function matchesAt(buf: Buffer, at: number, end: number, word: string): boolean {
  if (at + word.length > end) return false;
  for (let k = 0; k < word.length; k++) if ((buf[at + k]! | 0x20) !== word.charCodeAt(k)) return false;
  return true;
}
