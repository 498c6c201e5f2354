/**
 * A small deterministic mutation fuzzer for weft's decoders of untrusted bytes. A target gives a
 * corpus of valid inputs, optional dictionary tokens, a `run` that feeds one input through the
 * decoder, and which thrown errors are the decoder's own refusals (a WeftError with a known code).
 * Anything else thrown, an input that takes longer than the per-input bound, or memory growing
 * past the bound is a finding. Seeded PRNG: the same seed replays the same inputs.
 */

export interface FuzzTarget {
  readonly name: string;
  /** Valid inputs to mutate (built once). */
  corpus(): Promise<Uint8Array[]> | Uint8Array[];
  /** Interesting byte strings to splice in (header names, CRLFs, varints, ...). */
  readonly dictionary?: readonly Uint8Array[];
  /** Feed one input; resolve (or return) when the decoder is done with it. */
  run(input: Uint8Array): Promise<void> | void;
  /** Whether `err` is the decoder refusing the input as it should (not a finding). */
  expected(err: unknown): boolean;
  /** Largest input generated. */
  readonly maxBytes?: number;
  /** Per-input bound for this target (overrides the run's). */
  readonly perInputMs?: number;
}

export interface Finding {
  readonly kind: "throw" | "hang" | "slow" | "memory";
  readonly message: string;
  /** Hex of the (first 256 bytes of the) input that produced it. */
  readonly inputHex: string;
  /** The whole first input that produced it (to replay). */
  readonly input: Uint8Array;
  readonly count: number;
}

export interface FuzzReport {
  readonly target: string;
  readonly executions: number;
  /** Inputs the decoder refused with its own error (the rest were accepted). */
  readonly refused: number;
  readonly findings: Finding[];
  readonly rssGrowthBytes: number;
  readonly seconds: number;
}

export interface FuzzOptions {
  readonly seconds: number;
  readonly seed?: number;
  /** An async input not done within this is a hang; a sync one slower than this is slow. */
  readonly perInputMs?: number;
  /** RSS growth allowed after the warm-up quarter of the run. */
  readonly maxRssGrowthBytes?: number;
}

/** mulberry32: tiny, fast, good enough to drive mutations; deterministic per seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const INTERESTING = [0, 1, 0x7f, 0x80, 0xff, 0x0a, 0x0d, 0x20, 0x3a, 0x3b, 0x30, 0x66];

/** One to four stacked mutations of `base` (bit flips, byte sets, inserts, deletes, duplicates,
 * dictionary splices, crossover with another corpus entry, truncation). */
export function mutate(
  base: Uint8Array,
  rand: () => number,
  corpus: readonly Uint8Array[],
  dict: readonly Uint8Array[],
  maxBytes: number,
): Uint8Array {
  let b: number[] = Array.from(base);
  const int = (n: number): number => Math.floor(rand() * n);
  const rounds = 1 + int(4);
  for (let r = 0; r < rounds; r++) {
    const at = int(b.length + 1);
    switch (int(9)) {
      case 0:
        if (b.length) b[int(b.length)]! ^= 1 << int(8);
        break;
      case 1:
        if (b.length) b[int(b.length)] = INTERESTING[int(INTERESTING.length)]!;
        break;
      case 2:
        b.splice(at, 0, ...Array.from({ length: 1 + int(8) }, () => int(256)));
        break;
      case 3:
        b.splice(at, 1 + int(Math.max(1, b.length >> 3)));
        break;
      case 4: {
        const len = 1 + int(Math.max(1, Math.min(64, b.length - at)));
        const piece = b.slice(at, at + len);
        const times = 1 + int(int(2) ? 4 : 2000); // sometimes many copies: size limits
        const n = Math.max(0, Math.min(times, Math.floor((maxBytes - b.length) / piece.length)));
        const rep: number[] = [];
        for (let i = 0; i < n; i++) for (const x of piece) rep.push(x);
        b = [...b.slice(0, at), ...rep, ...b.slice(at)];
        break;
      }
      case 5:
      case 6:
        if (dict.length) b.splice(at, int(3), ...dict[int(dict.length)]!);
        break;
      case 7: {
        if (corpus.length === 0) break;
        const other = corpus[int(corpus.length)]!;
        const from = int(other.length + 1);
        b = [...b.slice(0, at), ...other.slice(from, from + int(other.length + 1))];
        break;
      }
      default:
        b = b.slice(0, at);
    }
    if (b.length > maxBytes) b = b.slice(0, maxBytes);
  }
  return Uint8Array.from(b);
}

function hex(b: Uint8Array): string {
  return Array.from(b.subarray(0, 256), (x) => x.toString(16).padStart(2, "0")).join("");
}

function rss(): number {
  // deno-lint-ignore no-explicit-any
  const g = globalThis as any;
  return g.Deno ? g.Deno.memoryUsage().rss : g.process.memoryUsage().rss;
}

/** Run one target for `seconds`; every input is the corpus entry or a mutation of it. */
export async function fuzz(target: FuzzTarget, opts: FuzzOptions): Promise<FuzzReport> {
  const rand = prng(opts.seed ?? 1);
  const corpus = await target.corpus();
  const dict = target.dictionary ?? [];
  const perInputMs = target.perInputMs ?? opts.perInputMs ?? 500;
  const maxBytes = target.maxBytes ?? 128 * 1024;
  const findings = new Map<string, Finding>();
  const note = (kind: Finding["kind"], message: string, input: Uint8Array): void => {
    const key = `${kind}:${message.slice(0, 200)}`;
    const f = findings.get(key);
    findings.set(
      key,
      f ? { ...f, count: f.count + 1 } : { kind, message, inputHex: hex(input), input, count: 1 },
    );
  };
  // Memory is compared from the end of a warm-up quarter (heap and JIT settle) to the end.
  let rss0 = rss();
  let warm = false;
  const start = performance.now();
  const deadline = start + opts.seconds * 1000;
  let executions = 0;
  let refused = 0;
  while (performance.now() < deadline) {
    if (!warm && performance.now() > start + opts.seconds * 250) {
      warm = true;
      rss0 = rss();
    }
    const base = corpus[executions % corpus.length]!;
    const input = executions < corpus.length ? base : mutate(base, rand, corpus, dict, maxBytes);
    executions++;
    const t0 = performance.now();
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const r = target.run(input);
      if (r instanceof Promise) {
        const hung = await Promise.race([
          r.then(() => false),
          new Promise<boolean>((ok) => (timer = setTimeout(() => ok(true), perInputMs))),
        ]);
        if (hung) note("hang", `no result within ${perInputMs} ms`, input);
      } else if (performance.now() - t0 > perInputMs) {
        note("slow", `took ${Math.round(performance.now() - t0)} ms`, input);
      }
    } catch (err) {
      if (target.expected(err)) refused++;
      else {
        const e = err as Error;
        const where = e?.stack?.split("\n").slice(1, 3).map((l) => l.trim()).join(" < ") ?? "";
        note("throw", `${e?.name ?? typeof err}: ${e?.message ?? String(err)} @ ${where}`, input);
      }
    } finally {
      clearTimeout(timer);
    }
  }
  const growth = rss() - rss0;
  if (growth > (opts.maxRssGrowthBytes ?? 512 * 1024 * 1024)) {
    note("memory", `RSS grew by ${Math.round(growth / 1048576)} MB`, new Uint8Array(0));
  }
  return {
    target: target.name,
    executions,
    refused,
    findings: [...findings.values()],
    rssGrowthBytes: growth,
    seconds: (performance.now() - start) / 1000,
  };
}
