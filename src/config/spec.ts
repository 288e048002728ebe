// Building blocks of the config schema: each key's type, default, bounds and reload class.

export type Reload = 'hot' | 'restart';

export interface Spec<T> {
  readonly kind: 'string' | 'int' | 'number' | 'bool' | 'enum' | 'strings';
  readonly default: T;
  readonly min?: number;
  readonly max?: number;
  readonly values?: readonly string[];
  readonly reload: Reload;
  /** Set while the key is accepted but its feature is not built yet (said at start-up). */
  readonly pending?: string;
  /** Must be given (only used inside sections such as [[backend]]). */
  readonly required?: boolean;
}

interface Opts {
  reload?: Reload;
  pending?: string;
  required?: boolean;
}

const base = (o: Opts) => ({
  reload: o.reload ?? 'hot',
  ...(o.pending !== undefined ? { pending: o.pending } : {}),
  ...(o.required ? { required: true } : {}),
});

export const str = (def: string, o: Opts = {}): Spec<string> => ({ kind: 'string', default: def, ...base(o) });
export const bool = (def: boolean, o: Opts = {}): Spec<boolean> => ({ kind: 'bool', default: def, ...base(o) });
export const int = (def: number, min: number, max: number, o: Opts = {}): Spec<number> => ({
  kind: 'int',
  default: def,
  min,
  max,
  ...base(o),
});
export const num = (def: number, min: number, max: number, o: Opts = {}): Spec<number> => ({
  kind: 'number',
  default: def,
  min,
  max,
  ...base(o),
});
/** A list of strings (etcd_endpoints). */
export const strList = (def: readonly string[], o: Opts = {}): Spec<readonly string[]> => ({ kind: 'strings', default: def, ...base(o) });
/** A key that may be left out (undefined): per-node overrides of a top-level key. */
export const optInt = (min: number, max: number): Spec<number | undefined> => ({ kind: 'int', default: undefined, min, max, reload: 'hot' });
export const optStr = (): Spec<string | undefined> => ({ kind: 'string', default: undefined, reload: 'hot' });
export const oneOf = <const V extends readonly string[]>(values: V, def: V[number], o: Opts = {}): Spec<V[number]> => ({
  kind: 'enum',
  default: def,
  values,
  ...base(o),
});

export type SpecTable = Record<string, Spec<unknown>>;
export type Infer<S extends SpecTable> = { readonly [K in keyof S]: S[K] extends Spec<infer T> ? T : never };

export const INT_MAX = 2147483647;
