/** Starts tests/support/bun_l7_proxy.ts (weft's HttpProxy on Bun's native sockets) for tests
 * that drive it from Deno over TCP. */
import { bunPath } from "./weft_proc.ts";
import { UNHANDLED_ERROR_MSG } from "../../src/core/mod.ts";

/** tests/support/bun_l7_proxy.ts on Bun in front of 127.0.0.1:upPort; idle() asks for its pooled
 * upstream connections; stop() returns its output (stdout + stderr), or throws when the process
 * guard logged an unhandled error. */
export async function startBunProxy(
  upPort: number,
  headersTimeoutMs: number,
  extraArgs: readonly string[] = [],
): Promise<
  { port: number; pid: number; idle(): Promise<number>; stop(): Promise<string> }
> {
  const bun = bunPath();
  if (!bun) throw new Error("no bun binary (deno task setup installs one)");
  const child = new Deno.Command(bun, {
    args: [
      new URL("./bun_l7_proxy.ts", import.meta.url).pathname,
      "--upstream",
      `127.0.0.1:${upPort}`,
      "--headers-timeout-ms",
      String(headersTimeoutMs),
      ...extraArgs,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stdin = child.stdin.getWriter();
  const errText = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!/"port":\d+/.test(out)) {
    const r = await reader.read();
    if (r.done) {
      await child.status;
      throw new Error(`the Bun proxy exited: ${out}${await errText}`);
    }
    out += r.value;
  }
  let wake = (): void => {};
  const rest = (async () => {
    for (let r = await reader.read(); !r.done; r = await reader.read()) {
      out += r.value;
      wake();
    }
  })();
  let asked = 0;
  return {
    port: Number(/"port":(\d+)/.exec(out)![1]),
    pid: child.pid,
    idle: async () => {
      const n = ++asked;
      await stdin.write(new TextEncoder().encode("idle\n"));
      for (;;) {
        const answers = [...out.matchAll(/\{"idle":(\d+)\}/g)];
        if (answers.length >= n) return Number(answers[n - 1]![1]);
        await new Promise<void>((r) => (wake = r));
      }
    },
    stop: async () => {
      await stdin.close().catch(() => {});
      child.kill("SIGTERM");
      await child.status;
      await rest;
      const all = out + await errText;
      // The proxy runs weft's process guard: an error that escaped to it is a bug, and fails the
      // test that caused it even where the test does not read the output (as startWeft's stop).
      const escaped = all.split("\n").find((l) => l.includes(`"msg":"${UNHANDLED_ERROR_MSG}"`));
      if (escaped) throw new Error(`the Bun proxy logged an unhandled error: ${escaped}`);
      return all;
    },
  };
}
