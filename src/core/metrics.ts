/**
 * A small Prometheus registry: counters, gauges and histograms with fixed label names, rendered in
 * the text exposition format (checked with `promtool check metrics` in tests). Each label set owns
 * one cell (an object with a numeric field) found by a joined key: `inc` does one Map lookup per
 * bump, and a bound counter or histogram holds its cell, so a hot path's bump is one addition.
 */
export type Labels = Record<string, string>;
type Kind = "counter" | "gauge" | "histogram";

const SEP = "\u0001";

abstract class Family {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
    readonly kind: Kind,
  ) {}
  /** The key of one label set (`incKey` takes it: a caller bumping several families with the
   * same label names builds it once). */
  keyOf(labels: Labels): string {
    let k = "";
    for (const n of this.labelNames) k += (labels[n] ?? "unknown") + SEP;
    return k;
  }
  protected labelText(key: string, extra?: string): string {
    const vals = key.split(SEP);
    const parts = this.labelNames.map((n, i) => `${n}="${escapeLabel(vals[i] ?? "")}"`);
    if (extra) parts.push(extra);
    return parts.length ? `{${parts.join(",")}}` : "";
  }
  abstract render(out: string[]): void;
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function fmtNum(v: number): string {
  if (Number.isInteger(v)) return String(v);
  if (v === Infinity) return "+Inf";
  return String(v);
}

/** The value of one label set. */
interface Cell {
  v: number;
  /** The label key as the family stores it (see `Counter.incKeyShared`). */
  readonly k: string;
}

export class Counter extends Family {
  private values = new Map<string, Cell>();
  constructor(name: string, help: string, labelNames: readonly string[] = []) {
    super(name, help, labelNames, "counter");
  }
  /** The cell of one label key, made (rendered in first-use order) on first use. */
  private cell(k: string): Cell {
    let c = this.values.get(k);
    if (c === undefined) this.values.set(k, c = { v: 0, k });
    return c;
  }
  inc(labels: Labels = {}, by = 1): void {
    this.cell(this.keyOf(labels)).v += by;
  }
  /** `inc` by a key from `keyOf` (of this family or one with the same label names). */
  incKey(key: string, by = 1): void {
    this.cell(key).v += by;
  }
  /** `incKey` by one, returning the key as the family stores it: a caller that holds the key for
   * a long time (an L4 connection, for its close) then shares one string with every other holder
   * of the same labels instead of keeping its own (~0.5 KB for istio_tcp_*'s 26 labels). */
  incKeyShared(key: string): string {
    const c = this.cell(key);
    c.v += 1;
    return c.k;
  }
  get(labels: Labels = {}): number {
    return this.values.get(this.keyOf(labels))?.v ?? 0;
  }
  /** `inc` for one fixed label set: the cell is found once, each bump is one addition. The
   * series appears at the first bump, as with `inc`. */
  bind(labels: Labels): (by?: number) => void {
    const k = this.keyOf(labels);
    let c = this.values.get(k);
    return (by = 1) => {
      (c ??= this.cell(k)).v += by;
    };
  }
  /** Sum over all label sets whose labels include `match`. */
  sum(match: Labels = {}): number {
    let total = 0;
    for (const [k, c] of this.values) {
      const vals = k.split(SEP);
      if (this.labelNames.every((n, i) => match[n] === undefined || match[n] === vals[i])) {
        total += c.v;
      }
    }
    return total;
  }
  render(out: string[]): void {
    for (const [k, c] of this.values) out.push(`${this.name}${this.labelText(k)} ${fmtNum(c.v)}`);
  }
}

export class Gauge extends Family {
  private values = new Map<string, Cell>();
  private fn: (() => number) | undefined;
  constructor(name: string, help: string, labelNames: readonly string[] = []) {
    super(name, help, labelNames, "gauge");
  }
  private cell(k: string): Cell {
    let c = this.values.get(k);
    if (c === undefined) this.values.set(k, c = { v: 0, k });
    return c;
  }
  set(labels: Labels, v: number): void {
    this.cell(this.keyOf(labels)).v = v;
  }
  add(labels: Labels, by: number): void {
    this.cell(this.keyOf(labels)).v += by;
  }
  /** `add` for one fixed label set (hot paths): the cell is found once. */
  bind(labels: Labels): (by: number) => void {
    const k = this.keyOf(labels);
    let c = this.values.get(k);
    return (by) => {
      (c ??= this.cell(k)).v += by;
    };
  }
  get(labels: Labels = {}): number {
    if (this.fn && this.labelNames.length === 0) return this.fn();
    return this.values.get(this.keyOf(labels))?.v ?? 0;
  }
  /** Unlabelled gauge computed at scrape time. */
  collect(fn: () => number): this {
    this.fn = fn;
    return this;
  }
  render(out: string[]): void {
    if (this.fn) out.push(`${this.name} ${fmtNum(this.fn())}`);
    for (const [k, c] of this.values) out.push(`${this.name}${this.labelText(k)} ${fmtNum(c.v)}`);
  }
}

export const DEFAULT_BUCKETS_SECONDS: readonly number[] = [
  0.000001,
  0.000005,
  0.00001,
  0.00005,
  0.0001,
  0.0005,
  0.001,
  0.005,
  0.01,
  0.05,
  0.1,
  0.5,
  1,
];

interface HistState {
  counts: number[];
  sum: number;
  count: number;
}

export class Histogram extends Family {
  private values = new Map<string, HistState>();
  constructor(
    name: string,
    help: string,
    labelNames: readonly string[] = [],
    readonly buckets: readonly number[] = DEFAULT_BUCKETS_SECONDS,
  ) {
    super(name, help, labelNames, "histogram");
  }
  observe(labels: Labels, v: number): void {
    this.observeKey(this.keyOf(labels), v);
  }
  /** `observe` for one fixed label set: the state is found once (hot paths). */
  bind(labels: Labels): (v: number) => void {
    const k = this.keyOf(labels);
    let s = this.values.get(k);
    return (v) => this.observeState(s ??= this.state(k), v);
  }
  private state(k: string): HistState {
    let s = this.values.get(k);
    if (!s) this.values.set(k, s = { counts: this.buckets.map(() => 0), sum: 0, count: 0 });
    return s;
  }
  private observeKey(k: string, v: number): void {
    this.observeState(this.state(k), v);
  }
  private observeState(s: HistState, v: number): void {
    for (let i = 0; i < this.buckets.length; i++) {
      if (v <= this.buckets[i]!) {
        s.counts[i]!++;
        break;
      }
    }
    s.sum += v;
    s.count++;
  }
  count(labels: Labels = {}): number {
    return this.values.get(this.keyOf(labels))?.count ?? 0;
  }
  render(out: string[]): void {
    for (const [k, s] of this.values) {
      let cum = 0;
      this.buckets.forEach((b, i) => {
        cum += s.counts[i]!;
        out.push(`${this.name}_bucket${this.labelText(k, `le="${fmtNum(b)}"`)} ${cum}`);
      });
      out.push(`${this.name}_bucket${this.labelText(k, 'le="+Inf"')} ${s.count}`);
      out.push(`${this.name}_sum${this.labelText(k)} ${s.sum}`);
      out.push(`${this.name}_count${this.labelText(k)} ${s.count}`);
    }
  }
}

export class Registry {
  private families = new Map<string, Family>();

  private add<F extends Family>(f: F): F {
    const existing = this.families.get(f.name);
    if (existing) {
      if (existing.kind !== f.kind) {
        throw new Error(`metric ${f.name} registered twice with different kinds`);
      }
      return existing as F;
    }
    this.families.set(f.name, f);
    return f;
  }
  counter(name: string, help: string, labels: readonly string[] = []): Counter {
    return this.add(new Counter(name, help, labels));
  }
  gauge(name: string, help: string, labels: readonly string[] = []): Gauge {
    return this.add(new Gauge(name, help, labels));
  }
  histogram(
    name: string,
    help: string,
    labels: readonly string[] = [],
    buckets?: readonly number[],
  ): Histogram {
    return this.add(new Histogram(name, help, labels, buckets));
  }
  get(name: string): Family | undefined {
    return this.families.get(name);
  }
  /** How many families render() would write (one TYPE line each), without rendering them. */
  get familyCount(): number {
    return this.families.size;
  }
  /** Prometheus text exposition format 0.0.4. */
  render(): string {
    const out: string[] = [];
    for (const f of this.families.values()) {
      // Counters are declared without the _total suffix in TYPE lines per OpenMetrics; the
      // classic text format (what promtool checks) keeps the full name.
      out.push(`# HELP ${f.name} ${f.help}`);
      out.push(`# TYPE ${f.name} ${f.kind}`);
      f.render(out);
    }
    return out.join("\n") + "\n";
  }
}

/** The process-wide registry every layer registers into; /stats/prometheus renders it. */
export const metrics: Registry = new Registry();
