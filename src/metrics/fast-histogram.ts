/**
 * A latency histogram that the data path can feed on every exchange, with at most one label whose
 * values are small integers (the node id). prom-client's Histogram validates and hashes its labels
 * on each observe(), which cost about 5 µs per pgbench transaction (a tenth of Sluice's CPU):
 * here an observation is an array index and two adds, and the exposition is built at scrape time.
 * The registry reads it through get(), as it reads its own metrics.
 */
export class FastHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  /** Per node: a count per bucket (not cumulative; the last slot is +Inf), sum and count. */
  private readonly nodes: { buckets: Float64Array; sum: number; count: number }[] = [];

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly bounds: readonly number[],
    /** The label's name ('node'), or null for a histogram without labels (observe it at 0). */
    private readonly label: string | null,
  ) {}

  observe(node: number, seconds: number): void {
    const n = this.nodes[node] ?? this.grow(node);
    const b = this.bounds;
    let i = 0;
    while (i < b.length && seconds > b[i]!) i++;
    n.buckets[i]!++;
    n.sum += seconds;
    n.count++;
  }

  /** What was observed for a node so far: the sum of the values and their count. */
  totals(node: number): { sum: number; count: number } {
    const n = this.nodes[node];
    return n ? { sum: n.sum, count: n.count } : { sum: 0, count: 0 };
  }

  private grow(node: number): { buckets: Float64Array; sum: number; count: number } {
    for (let i = this.nodes.length; i <= node; i++) this.nodes.push({ buckets: new Float64Array(this.bounds.length + 1), sum: 0, count: 0 });
    return this.nodes[node]!;
  }

  /** prom-client's metric shape: cumulative buckets with `le`, then _sum and _count. */
  get(): { name: string; help: string; type: string; aggregator: string; values: { labels: Record<string, string | number>; value: number; metricName: string }[] } {
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
    this.nodes.forEach((n, id) => {
      if (n.count === 0) return;
      const labels: Record<string, string> = this.label === null ? {} : { [this.label]: String(id) };
      let acc = 0;
      for (let i = 0; i <= this.bounds.length; i++) {
        acc += n.buckets[i]!;
        values.push({ labels: { ...labels, le: i < this.bounds.length ? this.bounds[i]! : '+Inf' }, value: acc, metricName: `${this.name}_bucket` });
      }
      values.push({ labels, value: n.sum, metricName: `${this.name}_sum` });
      values.push({ labels, value: n.count, metricName: `${this.name}_count` });
    });
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}
