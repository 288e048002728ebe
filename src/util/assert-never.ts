/** Ends an exhaustive switch over a discriminated union: a new variant becomes a type error. */
export function assertNever(x: never): never {
  throw new Error(`unexpected variant: ${JSON.stringify(x)}`);
}
