// The pattern-valued keys of pgpool's routing settings, parsed once: config loading uses these to
// reject a bad pattern naming its key, and the router compiles its options with them.

/** One entry of a *_redirect_preference_list: 'regex:target(ratio)'. */
export interface RedirectRule {
  readonly pattern: RegExp;
  readonly target: 'primary' | 'standby' | number;
  readonly ratio: number;
}

/** pgpool's function lists: comma-separated regexes, each anchored, case-insensitive. */
export function functionListPattern(spec: string): RegExp | null {
  const parts = spec.split(',').map((s) => s.trim()).filter(Boolean);
  if (parts.length === 0) return null;
  return new RegExp(`^(?:${parts.join('|')})$`, 'i');
}

/** primary_routing_query_pattern_list: semicolon-separated regexes against the whole text. */
export function queryPatterns(spec: string): RegExp[] {
  return spec
    .split(';')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((p) => new RegExp(`^(?:${p})$`, 'is'));
}

/**
 * Parses 'regex:target(ratio),...' (pgpool's database/app_name redirect lists). Throws an Error
 * naming the bad entry; config loading turns it into a one-line ConfigError.
 */
export function parseRedirectList(spec: string): RedirectRule[] {
  const rules: RedirectRule[] = [];
  for (const raw of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^(.*):\s*(primary|standby|\d+)\s*(?:\(\s*([0-9.]+)\s*\))?$/i.exec(raw);
    if (!m) throw new Error(`entry "${raw}" is not regex:target or regex:target(ratio)`);
    const ratio = m[3] === undefined ? 1 : Number(m[3]);
    if (!(ratio >= 0 && ratio <= 1)) throw new Error(`entry "${raw}": the ratio must lie in 0..1`);
    const t = m[2]!.toLowerCase();
    rules.push({
      pattern: new RegExp(`^(?:${m[1]})$`),
      target: t === 'primary' || t === 'standby' ? t : Number(t),
      ratio,
    });
  }
  return rules;
}

