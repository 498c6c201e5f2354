/**
 * src/core/native_socket.ts (Bun's native sockets behind the L7 proxy's Duplex subset): the checks
 * in tests/support/native_socket_checks.ts run on Bun — backpressure against a slow reader,
 * half-close both ways, kept chunks and pause/resume, an idle timeout, a peer reset mid-body, 300
 * connections at
 * once, failed connects. Skipped when no bun binary is present (`deno task setup` installs one).
 */
import assert from "node:assert/strict";
import { bunPath } from "./support/weft_proc.ts";

const BUN = bunPath();

Deno.test({
  name: "native sockets (Bun): backpressure, half-close, reset mid-body, many connections",
  ignore: BUN === undefined,
  fn: async () => {
    const out = await new Deno.Command(BUN!, {
      args: [new URL("./support/native_socket_checks.ts", import.meta.url).pathname],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, text);
    assert.equal(text.match(/^ok /gm)?.length, 8, text);
  },
});
