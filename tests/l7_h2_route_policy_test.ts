/**
 * VirtualService `timeout` and `retries` on HTTP/2 end to end (h2c downstream → h2c upstream,
 * gRPC included) through weft's HttpProxy, on Deno in this process and on Bun in a child
 * (tests/support/h2_policy_rig.ts holds the scenarios).
 */
import assert from "node:assert/strict";
import { CHECKS, runCheck } from "./support/h2_policy_rig.ts";
import { bunPath } from "./support/weft_proc.ts";

for (const [name, check] of Object.entries(CHECKS)) {
  Deno.test(`h2 route policy (Deno): ${name}`, () => runCheck(check));
}

const bun = bunPath(); // deno task setup installs one; without it the Bun run is ignored
Deno.test({ name: "h2 route policy (Bun): every scenario", ignore: !bun }, async () => {
  const out = await new Deno.Command(bun!, {
    args: [new URL("./support/h2_policy_rig.ts", import.meta.url).pathname],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, `${text}${new TextDecoder().decode(out.stderr)}`);
  assert.deepEqual(JSON.parse(text.trim().split("\n").pop()!).ok, Object.keys(CHECKS));
});
