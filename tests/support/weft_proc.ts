/**
 * Start a real `weft` process (deno run src/main.ts ...) for integration tests, wait for its
 * ready log line (no sleeps), read its bound addresses, and stop it (SIGTERM, then wait).
 * `WEFT_BIN=./weft` (`deno task test:binary`) starts the compiled binary instead.
 */
import { dirname, isAbsolute, join } from "node:path";
import { fileURLToPath } from "node:url";
import { existsSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { stringify } from "yaml";
import { UNHANDLED_ERROR_MSG } from "../../src/core/mod.ts";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const MAIN = join(ROOT, "src", "main.ts");

/** The compiled binary under test, when WEFT_BIN names one (relative to the repo root). */
export function weftBin(): string | undefined {
  const b = Deno.env.get("WEFT_BIN");
  if (!b) return undefined;
  return isAbsolute(b) ? b : join(ROOT, b);
}

/** A PATH that reaches no compiler (nor anything else): the node agent needs none. */
export const NO_TOOLS_PATH = "/nonexistent/weft-no-compiler";

/**
 * `deno run` for the processes the tests start. The test runner has set up node_modules (deno.json
 * nodeModulesDir "auto") before any test runs, and Bun children read it as it is; in "auto" mode
 * every child `deno run` takes the node_modules lock to check it again, so the children of
 * parallel test files queued on that lock ("Blocking waiting for file lock on node_modules
 * directory"): 4 concurrent starts took ~3.5 s against ~1.3 s, and on a loaded box a node missed
 * its 30 s ready timeout (l4_tunnel in CI). "manual" reads node_modules without the lock.
 */
export const DENO_RUN: readonly string[] = ["run", "-A", "--node-modules-dir=manual"];

/** Program and arguments for `weft <argv>`: the binary, Bun on the entry point, or Deno. */
export function weftCommand(argv: readonly string[], runtime?: string): [string, string[]] {
  if (runtime) return [runtime, [MAIN, ...argv]];
  const bin = weftBin();
  if (bin) return [bin, [...argv]];
  return [Deno.execPath(), [...DENO_RUN, MAIN, ...argv]];
}

let prebuilt: Promise<void> | undefined;
/** The agent loads the first-party plugins prebuilt (`deno task plugins`); make sure they are
 * (a cached no-op after `deno task setup`). The binary embeds its own. */
export function ensurePluginsBuilt(): Promise<void> {
  prebuilt ??= new Deno.Command(Deno.execPath(), {
    args: [...DENO_RUN, join(ROOT, "tools/build_plugins.ts")],
    cwd: ROOT,
    stdout: "null",
    stderr: "piped",
  }).output().then((r) => {
    if (!r.success) {
      throw new Error(`deno task plugins failed:\n${new TextDecoder().decode(r.stderr)}`);
    }
  });
  return prebuilt;
}

export interface ReadyInfo {
  admin: string;
  metrics: string;
  readiness: string;
  socks5: string;
  [k: string]: unknown;
}

export interface WeftProc {
  readonly child: Deno.ChildProcess;
  readonly ready: ReadyInfo;
  /** Every JSON log line seen so far. */
  readonly lines: Record<string, unknown>[];
  /** Resolves with the first log line matching `pred` (already seen or future). */
  waitFor(
    pred: (l: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  /** SIGTERM (or the given signal) and wait for exit; returns the exit code. */
  stop(signal?: Deno.Signal): Promise<number>;
  readonly exited: Promise<Deno.CommandStatus>;
  stderrText(): string;
}

export async function startWeft(
  argv: string[],
  opts: {
    env?: Record<string, string>;
    timeoutMs?: number;
    runtime?: string;
    /** How to start `weft <argv>` (tests/support/container.ts: inside a container). */
    command?: (argv: readonly string[]) => [string, string[]];
  } = {},
): Promise<WeftProc> {
  // Deno by default; `runtime` = a bun binary runs the same entry point on Bun; WEFT_BIN the binary.
  if (!weftBin() && !opts.command && argv[0] === "run") await ensurePluginsBuilt();
  const [program, args] = opts.command?.(argv) ?? weftCommand(argv, opts.runtime);
  const child = new Deno.Command(program, {
    args,
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
    env: { WEFT_LOG: "info", ...opts.env },
  }).spawn();
  const lines: Record<string, unknown>[] = [];
  const waiters: {
    pred: (l: Record<string, unknown>) => boolean;
    resolve: (l: Record<string, unknown>) => void;
  }[] = [];
  let stderr = "";
  const pump = async (stream: ReadableStream<Uint8Array>, isErr: boolean) => {
    const dec = new TextDecoder();
    let buf = "";
    for await (const chunk of stream) {
      buf += dec.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (isErr) stderr += line + "\n";
        let rec: Record<string, unknown>;
        try {
          rec = JSON.parse(line);
        } catch {
          continue;
        }
        lines.push(rec);
        for (let i = waiters.length - 1; i >= 0; i--) {
          if (waiters[i]!.pred(rec)) waiters.splice(i, 1)[0]!.resolve(rec);
        }
      }
    }
  };
  const pumps = Promise.all([pump(child.stdout, false), pump(child.stderr, true)]);
  const exited = child.status.then(async (s) => {
    await pumps;
    return s;
  });
  const waitFor = (pred: (l: Record<string, unknown>) => boolean, timeoutMs = 20_000) => {
    const seen = lines.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      const t = setTimeout(
        () => reject(new Error(`timed out waiting for a log line; stderr:\n${stderr}`)),
        timeoutMs,
      );
      const w = {
        pred,
        resolve: (l: Record<string, unknown>) => {
          clearTimeout(t);
          resolve(l);
        },
      };
      waiters.push(w);
      exited.then((s) => {
        const i = waiters.indexOf(w);
        if (i >= 0) {
          waiters.splice(i, 1);
          clearTimeout(t);
          reject(
            new Error(`weft exited (${s.code}) before the awaited log line; stderr:\n${stderr}`),
          );
        }
      });
    });
  };
  const stop = async (signal: Deno.Signal = "SIGTERM") => {
    try {
      child.kill(signal);
    } catch { /* already gone */ }
    const code = (await exited).code;
    // An error that escaped to the process guard is a bug: fail the test that caused it.
    const escaped = lines.find((l) => l.msg === UNHANDLED_ERROR_MSG);
    if (escaped) throw new Error(`weft logged an unhandled error: ${JSON.stringify(escaped)}`);
    return code;
  };
  let ready: ReadyInfo;
  try {
    ready = (await waitFor((l) =>
      l.msg === "ready", opts.timeoutMs ?? 30_000)) as unknown as ReadyInfo;
  } catch (err) {
    await stop("SIGKILL").catch(() => 0);
    throw err;
  }
  return { child, ready, lines, waitFor, stop, exited, stderrText: () => stderr };
}

/** Run weft to completion (validate, failing configs) and collect output. */
export async function runWeft(
  argv: string[],
  opts: { env?: Record<string, string> } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const [program, args] = weftCommand(argv);
  const r = await new Deno.Command(program, {
    args,
    cwd: ROOT,
    env: { ...opts.env },
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
}

/** The bun binary (tools/setup.ts installs one under .weft/tools), or undefined. */
export function bunPath(): string | undefined {
  const local = join(ROOT, ".weft/tools/node_modules/.bin/bun");
  if (existsSync(local)) return local;
  return spawnSync("sh", ["-c", "command -v bun"], { encoding: "utf8" }).stdout.trim() || undefined;
}

/** One test per runtime, for the caller to register (`for (const t of onDenoAndBun(...))
 * Deno.test(t)`, so each test's location stays in its own file): Deno always, Bun where a bun
 * binary is installed (deno task setup installs one; without it the Bun test is ignored). `name`
 * gets "Deno" or "Bun"; `fn` gets the bun binary, or undefined for Deno (startWeft's `runtime`). */
export function onDenoAndBun(
  name: (runtime: "Deno" | "Bun") => string,
  fn: (runtime: string | undefined) => Promise<void>,
): Deno.TestDefinition[] {
  const bun = bunPath();
  return [
    { name: name("Deno"), fn: () => fn(undefined) },
    { name: name("Bun"), ignore: !bun, fn: () => fn(bun) },
  ];
}

/** `weft run` with `cfg` written as `dir`/a.yaml, on Deno or the given bun binary: runs `check`
 * once weft is ready and stops weft afterwards, even on failure. */
export async function withWeftYaml(
  dir: string,
  cfg: Record<string, unknown>,
  runtime: string | undefined,
  check: (weft: WeftProc) => Promise<void>,
): Promise<void> {
  const path = join(dir, "a.yaml");
  await Deno.writeTextFile(path, stringify(cfg));
  const weft = await startWeft(["run", "--config", path], {
    timeoutMs: 120_000,
    ...(runtime ? { runtime } : {}),
  });
  try {
    await check(weft);
  } finally {
    await weft.stop();
  }
}

/** A fresh loopback address block per test (127.<a>.<b>.x) so tests can bind :15008 freely. */
let block = 0;
export function loopbackBlock(): (host: number) => string {
  const n = (Deno.pid * 7 + (block++) * 131 + Math.floor(Math.random() * 50_000)) % 60_000;
  const a = 20 + (Math.floor(n / 250) % 230);
  const b = 1 + (n % 250);
  return (host: number) => `127.${a}.${b}.${host}`;
}

/** weft.yaml listeners for a test node: every port picked by the kernel, no SOCKS5, no plaintext
 * inbound port. */
export const LISTENERS = Object.freeze({
  admin: "127.0.0.1:0",
  metrics: "127.0.0.1:0",
  readiness: "127.0.0.1:0",
  socks5: "",
  inboundPlaintextPort: 0,
});
