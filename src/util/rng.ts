/** A source of uniform numbers in [0, 1): Math.random in production, a fixed sequence in tests. */
export type Rng = () => number;
