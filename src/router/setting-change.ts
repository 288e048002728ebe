import { SettingsReset, Statement, statement } from './statement';

// What a session-level change of one setting is, whether SET or set_config() makes it: where it
// runs, what it pins, and how the replay log keys it.

/** Settings that last only for the transaction whatever sets them. */
const TRANSACTION_ONLY = new Set(['transaction_read_only', 'transaction_isolation']);

/**
 * A change of setting `name` (lower case; SET's own forms keep their word: `authorization`,
 * `characteristics`, `time`) to `value` (its text; '' when Sluice cannot read it), made by
 * `reason` ('set', 'set_config'). `resets`: what it returns to the start value (SET ... TO DEFAULT).
 */
export function settingChange(name: string, value: string, reason: string, resets?: SettingsReset): Statement {
  if (TRANSACTION_ONLY.has(name)) return statement('txLocal', `${reason} ${name}`, { pinTransaction: true });
  const key = `set ${name}`;
  if (name === 'role') return statement('session', reason, { pinsConnection: 'SET ROLE', replayKey: key });
  if (name === 'authorization' || name === 'session_authorization') return statement('session', reason, { pinsConnection: 'SET SESSION AUTHORIZATION', replayKey: key });
  // A value Sluice cannot read may hold what the two below look for.
  const unread = value === '';
  // pg_temp in the search path makes the session's temporary schema (which only the primary can
  // create) the target of unqualified names, even for reads.
  if (name === 'search_path' && (unread || /\bpg_temp\b/i.test(value))) return statement('session', reason, { pinSession: true, replayKey: key });
  // A session whose transactions default to serializable cannot read on a standby at all. Such
  // a default composes with the other transaction characteristics: it keeps its place in the log.
  if (name === 'default_transaction_isolation' || name === 'characteristics') {
    return statement('session', reason, unread || /serializable/i.test(value) ? { pinSession: true, resets } : { resets });
  }
  // A SET of DateStyle may change only the output format or only the field order, keeping the
  // other part: it composes with the SETs before it, so none of them may be dropped from the log.
  const replayKey = name !== '' && name !== 'datestyle' ? key : undefined;
  return statement('session', reason, { replayKey, resets });
}
