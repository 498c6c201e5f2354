/** `deno task demo` runs end to end: control plane, two nodes, L4 and L7 rows, a live change. */
import { assertEquals, assertMatch } from "./support/assert.ts";
import { ROOT } from "./support/weft_proc.ts";

Deno.test("demo: deno task demo prints its tables and exits 0", async () => {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "tests/demo/demo.ts"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(r.stdout);
  assertEquals(r.code, 0, out + new TextDecoder().decode(r.stderr));
  assertMatch(out, /routed to v1 \(of served\)/);
  assertMatch(out, /Live change/);
  assertMatch(out, /demo OK/);
});
