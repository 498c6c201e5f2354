/**
 * The open-loop latency client of the benchmarks: bench/openloop.c (C, absolute-deadline sends,
 * keep-alive pool as node:http's Agent keeps one), built here on first use with the C compiler
 * tools/setup.ts installs (clang; `cc` if clang is missing) into .weft/bench/openloop-<hash of the
 * source>. Without a compiler it falls back to bench/seq_client.ts on Bun, labelled as such in
 * every result (`client`): that client's 1 ms timer ticks and its own CPU make it the largest
 * source of tail in its own measurement (docs/MEASUREMENTS.md).
 *
 * The C client runs with its last 30 µs before each due time spun (this VM's timer wake-ups land
 * ~40 µs late even with a 1 ns timer slack) and, when this process is root, on SCHED_FIFO so a
 * busy 2-core box does not delay its sends (a client on another machine would not compete for
 * these cores either); otherwise on a short EEVDF slice. WEFT_BENCH_OPENLOOP_ARGS overrides those
 * flags (e.g. "--spin-us 0" for plain timer sleeps on the default policy).
 */
import { fileURLToPath } from "node:url";

const fromFileUrl = (u: URL): string => fileURLToPath(u);

export interface OpenLoopResult {
  /** From each request's scheduled start, ms. */
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
  /** From each request's actual send (the client's lag left out), ms. */
  readonly sendP50: number;
  readonly sendP99: number;
  readonly sendP999: number;
  /** The client's own send lag (send − scheduled start), ms. */
  readonly lagP50: number;
  readonly lagP99: number;
  readonly lagMax: number;
  /** Its dispatch − scheduled start: the client's timer precision and run-queue wait alone (no
   * wait for a connection), ms; NaN from the Bun fallback. */
  readonly timerP99: number;
  readonly timerMax: number;
  readonly sent: number;
  readonly failed: number;
  /** The client's CPU and run-queue wait over the measured run, ms (C client only). */
  readonly cpuMs?: number;
  readonly runqMs?: number;
  /** "c" or "seq_client (Bun, fallback: no C compiler)". */
  readonly client: string;
  /** With `trace`: [scheduled start ms since the epoch, latency ms, send lag ms, new conn 0/1]. */
  readonly samples?: [number, number, number, number][];
}

const REPO = fromFileUrl(new URL("..", import.meta.url));
const SOURCE = fromFileUrl(new URL("./openloop.c", import.meta.url));
export const FALLBACK = "seq_client (Bun, fallback: no C compiler)";
let built: Promise<string | undefined> | undefined;

/** Path of the built C client, compiling it once per source version; undefined without cc. */
export function openLoopBinary(): Promise<string | undefined> {
  return built ??= (async () => {
    const src = Deno.readFileSync(SOURCE);
    const hash = Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", src)))
      .slice(0, 6).map((b) => b.toString(16).padStart(2, "0")).join("");
    const out = `${REPO}.weft/bench/openloop-${hash}`;
    try {
      Deno.statSync(out);
      return out;
    } catch { /* not built yet */ }
    Deno.mkdirSync(`${REPO}.weft/bench`, { recursive: true });
    for (const cc of ["clang", "cc"]) {
      try {
        const r = await new Deno.Command(cc, {
          args: ["-O2", "-Wall", "-o", `${out}.${Deno.pid}.tmp`, SOURCE],
          stdout: "null",
          stderr: "piped",
        }).output();
        if (!r.success) {
          throw new Error(`${cc} bench/openloop.c: ${new TextDecoder().decode(r.stderr)}`);
        }
        Deno.renameSync(`${out}.${Deno.pid}.tmp`, out);
        return out;
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
    }
    Deno.stderr.writeSync(
      new TextEncoder().encode(
        `[openloop] no C compiler (clang, cc): falling back to ${FALLBACK}\n`,
      ),
    );
    return undefined;
  })();
}

/** Flags of the C client: spin the last 30 µs; SCHED_FIFO as root, else a 100 µs slice. */
export function clientFlags(): string[] {
  const env = Deno.env.get("WEFT_BENCH_OPENLOOP_ARGS");
  if (env !== undefined) return env.split(/\s+/).filter(Boolean);
  return ["--spin-us", "30", ...(Deno.uid() === 0 ? ["--fifo"] : ["--slice-us", "100"])];
}

/** One open loop at `rate` req/s for `seconds` through `url` (http://ipv4:port/path). */
export async function openLoop(
  url: string,
  seconds: number,
  rate = 1000,
  /** `flags`: the C client's flags instead of clientFlags(). */
  opts: { trace?: boolean; env?: Record<string, string>; flags?: string[] } = {},
): Promise<OpenLoopResult> {
  const bin = await openLoopBinary();
  const [cmd, args] = bin
    ? [bin, [
      url,
      String(rate),
      String(seconds),
      ...(opts.flags ?? clientFlags()),
      ...(opts.trace ? ["--trace"] : []),
    ]]
    : [
      "bun",
      [
        fromFileUrl(new URL("./seq_client.ts", import.meta.url)),
        opts.trace ? "trace" : "rate",
        url,
        String(rate),
        String(seconds),
      ],
    ];
  const out = await new Deno.Command(cmd, {
    args,
    stdout: "piped",
    stderr: "piped",
    ...(opts.env ? { env: opts.env } : {}),
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  const line = text.split("\n").filter((l) => l.startsWith("{")).pop();
  if (!line) {
    throw new Error(
      `open loop (${bin ? "c" : FALLBACK}) printed no result: ${
        new TextDecoder().decode(out.stderr)
      }`,
    );
  }
  const r = JSON.parse(line) as Partial<OpenLoopResult> & { samples?: OpenLoopResult["samples"] };
  if (bin) return { ...(r as OpenLoopResult), client: "c" };
  // The Bun client prints p50/p99 and from-the-send p50/p99 only; its lag comes from its samples.
  const lags = (r.samples ?? []).map((s) => s[2]).sort((a, b) => a - b);
  const at = (xs: number[], p: number): number =>
    xs.length ? xs[Math.min(xs.length - 1, Math.floor(p * xs.length))]! : NaN;
  return {
    p50: r.p50 ?? NaN,
    p90: NaN,
    p99: r.p99 ?? NaN,
    p999: NaN,
    max: NaN,
    sendP50: r.sendP50 ?? NaN,
    sendP99: r.sendP99 ?? NaN,
    sendP999: NaN,
    lagP50: at(lags, 0.5),
    lagP99: at(lags, 0.99),
    lagMax: lags.at(-1) ?? NaN,
    timerP99: NaN,
    timerMax: NaN,
    sent: r.sent ?? 0,
    failed: r.failed ?? 0,
    client: FALLBACK,
    ...(r.samples ? { samples: r.samples } : {}),
  };
}
