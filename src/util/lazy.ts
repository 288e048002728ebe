// Sets and maps that most sessions never fill: one shared empty instance until the first entry.
// An empty Set or Map costs about 150 bytes (V8 makes its hash table at once); a session had
// twenty of them, most of a transaction-mode client's memory while it is idle. Fields that use
// these are typed read-only, so that only the functions below can change them.

const EMPTY_SET: ReadonlySet<never> = new Set<never>();
const EMPTY_MAP: ReadonlyMap<never, never> = new Map<never, never>();

export function emptySet<T>(): ReadonlySet<T> {
  return EMPTY_SET;
}

export function emptyMap<K, V>(): ReadonlyMap<K, V> {
  return EMPTY_MAP;
}

/** The set with v added: a new one in place of the shared empty set. */
export function addTo<T>(s: ReadonlySet<T>, v: T): ReadonlySet<T> {
  const out = s === EMPTY_SET ? new Set<T>() : (s as Set<T>);
  out.add(v);
  return out;
}

/** Deletes v from the set (never from the shared empty one); true when it was there. */
export function deleteFrom<T>(s: ReadonlySet<T>, v: T): boolean {
  return s !== EMPTY_SET && (s as Set<T>).delete(v);
}

/** The map with k set to v: a new one in place of the shared empty map. */
export function setIn<K, V>(m: ReadonlyMap<K, V>, k: K, v: V): ReadonlyMap<K, V> {
  const out = m === EMPTY_MAP ? new Map<K, V>() : (m as Map<K, V>);
  out.set(k, v);
  return out;
}

/** Empties the map where it is (the shared empty one stays as it is): a map that was used is kept. */
export function clearMap<K, V>(m: ReadonlyMap<K, V>): void {
  if (m !== EMPTY_MAP) (m as Map<K, V>).clear();
}

/** Deletes k from the map (never from the shared empty one); true when it was there. */
export function deleteKey<K, V>(m: ReadonlyMap<K, V>, k: K): boolean {
  return m !== EMPTY_MAP && (m as Map<K, V>).delete(k);
}
