/** PostgreSQL's parse_bool: true, false, yes, no, on, off, 1, 0 and unique prefixes, any case. */
export function parseBool(text: string): boolean | null {
  const v = text.trim().toLowerCase();
  if (v === '') return null;
  if (v === '1') return true;
  if (v === '0') return false;
  if (v.length >= 2 && 'on'.startsWith(v)) return true;
  if (v.length >= 2 && 'off'.startsWith(v)) return false;
  for (const [word, value] of [['true', true], ['yes', true], ['false', false], ['no', false]] as const) if (word.startsWith(v)) return value;
  return null;
}
