/**
 * A regression guard on what the L4 HBONE path allocates per request (bench/l4_alloc.ts): two
 * NodeProxy nodes on Bun, sequential small requests on one keep-alive connection through the
 * tunnel, and a census of the JS heap cells each node allocated meanwhile. Each request costs
 * 13 cells per node today (5 Uint8Array: socket reads, the DATA frame, the payload view; 3 scopes;
 * 2 Array; 1 ArrayBuffer, Object and Immediate each); a closure or record added on the path per
 * request or per write shows here as one more, and every cell brings the next eden collection
 * nearer (bench/l4_tail.ts). A count, not a timing: collections during the window only lower it.
 * Skipped without bun or openssl.
 */
import { assert } from "./support/assert.ts";
import { bunPath } from "./support/weft_proc.ts";

const BUN = bunPath();
const OPENSSL = new Deno.Command("sh", { args: ["-c", "command -v openssl"], stdout: "null" })
  .outputSync().success;
/** Cells per request and node allowed: today's 13 plus two of slack (timers firing in a slow, loaded window). */
const MAX_CELLS = 15;

Deno.test({
  name: "L4 HBONE path: JS heap cells allocated per request per node stay bounded",
  ignore: BUN === undefined || !OPENSSL,
  fn: async () => {
    // bench/l4_peers.ts addresses are 127.<NET>.0.x: a block of its own, away from the tests'
    // loopbackBlock() addresses (127.a.b.x with b ≥ 1).
    const net = `127.${20 + Math.floor(Math.random() * 230)}`;
    const bench = new URL("../bench/l4_alloc.ts", import.meta.url).pathname;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", bench, "--json", "--n", "300", "--bun", BUN!],
      env: { WEFT_BENCH_NET: net },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout).trim();
    assert(out.success, `l4_alloc failed: ${new TextDecoder().decode(out.stderr)}`);
    const per = JSON.parse(text.split("\n").at(-1)!) as { a: number; b: number };
    for (const [node, cells] of Object.entries(per)) {
      assert(cells > 0, `node ${node}: no cells counted (${text})`);
      assert(cells <= MAX_CELLS, `node ${node}: ${cells} cells per request > ${MAX_CELLS}`);
    }
  },
});
