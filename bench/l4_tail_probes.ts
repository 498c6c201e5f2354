/**
 * Probes of bench/l4_tail.ts: JavaScriptCore's collection log of a process (BUN_JSC_logGC=1)
 * stamped on arrival, per-thread CPU and run-queue wait from /proc schedstat, run-queue waits
 * from `perf sched timehist` on the epoch clock, and a thread's EEVDF slice. Bench-only.
 */
export const now = (): number => performance.timeOrigin + performance.now();

/** One collection: [start, end] in ms since the epoch (end = when its log line arrived). */
export interface Gc {
  start: number;
  end: number;
  pauseMs: number;
}

/** JSC logGC lines of one process, stamped on arrival. */
export class GcLog {
  events: Gc[] = [];
  /** Lines matching --grep (e.g. JSC's compile reports with --env BUN_JSC_reportCompileTimes=1). */
  grep: string[] = [];
  /** The raw collection lines, when kept. */
  lines: string[] = [];
  readonly #grep: RegExp | undefined;
  readonly #keepLines: boolean;
  constructor(opts: { grep?: RegExp | undefined; keepLines?: boolean } = {}) {
    this.#grep = opts.grep;
    this.#keepLines = opts.keepLines ?? false;
  }
  #buf = "";
  feed = (text: string): void => {
    const t = now();
    const lines = (this.#buf + text).split("\n");
    this.#buf = lines.pop() ?? "";
    for (const l of lines) {
      if (this.#grep?.test(l)) this.grep.push(l);
      if (!l.includes("Collection") || !l.includes(" END]")) continue;
      const pause = Number(/ p=([\d.]+)ms/.exec(l)?.[1] ?? 0);
      const cycle = Number(/cycle ([\d.]+)ms/.exec(l)?.[1] ?? pause);
      // The cycle's wall time bounds its pauses (concurrent marking runs between them).
      this.events.push({ start: t - Math.max(pause, cycle), end: t, pauseMs: pause });
      if (this.#keepLines) this.lines.push(l);
    }
  };
  between(from: number, to: number): Gc[] {
    return this.events.filter((g) => g.end >= from && g.start <= to);
  }
  summary(from: number, to: number): string {
    const e = this.between(from, to);
    const sum = e.reduce((a, g) => a + g.pauseMs, 0);
    const max = Math.max(0, ...e.map((g) => g.pauseMs));
    const over = e.filter((g) => g.pauseMs > 1).length;
    return `${e.length} gc, ${sum.toFixed(1)} ms paused, ${over} >1ms, max ${max.toFixed(1)}`;
  }
}

/** Per thread name: CPU ms, run-queue wait ms and timeslices (/proc/<pid>/task/<tid>/schedstat). */
export type Sched = Map<string, [cpu: number, wait: number, slices: number]>;

export function sched(pid: number): Sched {
  const out: Sched = new Map();
  try {
    for (const t of Deno.readDirSync(`/proc/${pid}/task`)) {
      try {
        const base = `/proc/${pid}/task/${t.name}`;
        const comm = Deno.readTextFileSync(`${base}/comm`).trim().replace(/[\d-]+$/, "");
        const [run, wait, n] = Deno.readTextFileSync(`${base}/schedstat`).trim().split(" ")
          .map(Number) as [number, number, number];
        const prev = out.get(comm) ?? [0, 0, 0];
        out.set(comm, [prev[0] + run / 1e6, prev[1] + wait / 1e6, prev[2] + n]);
      } catch { /* thread gone */ }
    }
  } catch { /* process gone */ }
  return out;
}

/** What each thread group did between two readings: "main 812/95 ms (9876), JITWorker 40/2 (12)". */
export function schedDelta(a: Sched, b: Sched): string {
  const parts: string[] = [];
  for (const [k, [cpu, wait, n]] of b) {
    const [c0, w0, n0] = a.get(k) ?? [0, 0, 0];
    if (cpu - c0 < 1 && wait - w0 < 1) continue;
    parts.push(`${k} ${(cpu - c0).toFixed(0)}/${(wait - w0).toFixed(0)} ms (${n - n0})`);
  }
  return `cpu/runqueue wait: ${parts.join(", ") || "-"}`;
}

/**
 * The EEVDF slice of thread `tid` (sched_setattr with sched_runtime on SCHED_OTHER, Linux ≥ 6.12;
 * 0 = the default slice): a shorter slice gives the thread an earlier deadline when it wakes, so
 * it preempts a longer-slice task instead of waiting for that task's slice to end.
 */
export function setSlice(tid: number, ns: number): void {
  const libc = Deno.dlopen("libc.so.6", {
    syscall: { parameters: ["i64", "i64", "buffer", "i64"], result: "i64" },
  });
  try {
    const attr = new ArrayBuffer(56);
    const v = new DataView(attr);
    v.setUint32(0, 56, true); // size
    v.setBigUint64(24, BigInt(ns), true); // sched_runtime
    const r = libc.symbols.syscall(314n, BigInt(tid), new Uint8Array(attr), 0n);
    if (r !== 0n) throw new Error(`sched_setattr(${tid}) failed`);
  } finally {
    libc.close();
  }
}

/** ms to add to CLOCK_MONOTONIC (perf -k mono, /proc/timer_list's "now at") for the epoch. */
export function monoToEpoch(): number {
  let best = { span: Infinity, offset: 0 };
  const buf = new Uint8Array(128);
  for (let i = 0; i < 20; i++) {
    const f = Deno.openSync("/proc/timer_list");
    const a = now();
    const n = f.readSync(buf) ?? 0;
    const b = now();
    f.close();
    const m = /now at (\d+) nsecs/.exec(new TextDecoder().decode(buf.subarray(0, n)));
    if (m && b - a < best.span) best = { span: b - a, offset: (a + b) / 2 - Number(m[1]) / 1e6 };
  }
  return best.offset;
}

/** A run-queue wait of a thread: [start, end] ms since the epoch, who waited. */
export interface Wait {
  start: number;
  end: number;
  who: string;
}

/** Run-queue waits > 0.2 ms of the main threads in `who` (tid → label) or by command name. */
export async function schedWaits(file: string, who: Map<number, string>): Promise<Wait[]> {
  const out = await new Deno.Command("perf", {
    args: ["sched", "timehist", "-i", file],
    stdout: "piped",
    stderr: "null",
  }).output();
  const offset = monoToEpoch();
  const waits: Wait[] = [];
  const re = /^\s*([\d.]+)\s+\[\d+\]\s+(.+?)\[(\d+)(?:\/\d+)?\]\s+[\d.]+\s+([\d.]+)\s+([\d.]+)/;
  for (const line of new TextDecoder().decode(out.stdout).split("\n")) {
    const m = re.exec(line);
    if (!m) continue;
    const delay = Number(m[4]);
    if (delay <= 0.2) continue;
    const label = who.get(Number(m[3])) ??
      (m[2]!.startsWith("nginx") ? "nginx" : m[2]!.startsWith("haproxy") ? "haproxy" : undefined);
    if (label === undefined) continue;
    const runStart = Number(m[1]) * 1000 - Number(m[5]) + offset;
    waits.push({ start: runStart - delay, end: runStart, who: label });
  }
  return waits;
}
