/**
 * Backend connections are pooled per (node, database, user) and, within that, per the client's
 * other startup parameters. A reused connection therefore started with exactly the client's
 * application_name, options, DateStyle, ...: RESET and RESET ALL return to the client's own
 * values, as on a direct connection, which a pool that applies them with SET gets wrong.
 */
export function poolKey(nodeId: number, params: ReadonlyMap<string, string>): string {
  const rest = [...params].filter(([k]) => k !== 'user' && k !== 'database').sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `${nodeId}\u0000${params.get('database') ?? ''}\u0000${params.get('user') ?? ''}\u0000${rest.map(([k, v]) => `${k}=${v}`).join('\u0000')}`;
}
