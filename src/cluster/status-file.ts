import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** What the status file keeps per node: pgpool_status's three words. */
export type SavedStatus = 'up' | 'down' | 'unused';

export const STATUS_FILE = 'sluice_status';
/** The cluster's epoch (see Topology.epoch), beside the statuses: it is kept even by -D. */
export const EPOCH_FILE = 'sluice_epoch';

/** The file's text: one line per configured node, in node order (pgpool_status's format). */
export function formatStatus(statuses: readonly SavedStatus[]): string {
  return statuses.map((s) => `${s}\n`).join('');
}

/**
 * Reads a status file's text. Null when it is not usable, as pgpool treats it: a line that is
 * not a status word, a different node count, or no node up at all (then it is bogus and every
 * node starts afresh).
 */
export function parseStatus(text: string, nodeCount: number): SavedStatus[] | null {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  if (lines.length !== nodeCount) return null;
  if (!lines.every((l): l is SavedStatus => l === 'up' || l === 'down' || l === 'unused')) return null;
  return lines.includes('up') ? lines : null;
}

/** work_dir/sluice_status on disk: read at start-up, rewritten on every status change. */
export class StatusFile {
  readonly path: string;

  constructor(workDir: string) {
    this.path = join(workDir, STATUS_FILE);
  }

  /** The saved statuses, or null when there is no usable file. */
  read(nodeCount: number): SavedStatus[] | null {
    try {
      return parseStatus(readFileSync(this.path, 'utf8'), nodeCount);
    } catch {
      return null;
    }
  }

  /**
   * Writes atomically (a rename), so a crash never leaves half a file. Skipped when every node
   * is down, as pgpool does: the file then keeps the last set of nodes that took writes.
   */
  write(statuses: readonly SavedStatus[]): void {
    if (!statuses.includes('up')) return;
    // Its own temporary name: two processes given one work_dir must not rename each other's file away.
    const tmp = `${this.path}.${process.pid}.tmp`;
    writeFileSync(tmp, formatStatus(statuses));
    renameSync(tmp, this.path);
  }

  /** The epoch last saved (0 when none). */
  readEpoch(): number {
    try {
      const n = Number.parseInt(readFileSync(join(dirname(this.path), EPOCH_FILE), 'utf8'), 10);
      return Number.isSafeInteger(n) && n > 0 ? n : 0;
    } catch {
      return 0;
    }
  }

  writeEpoch(epoch: number): void {
    const file = join(dirname(this.path), EPOCH_FILE);
    writeFileSync(`${file}.${process.pid}.tmp`, `${epoch}\n`);
    renameSync(`${file}.${process.pid}.tmp`, file);
  }

  /** -D: start as if there had never been a file. */
  discard(): void {
    rmSync(this.path, { force: true });
  }
}
