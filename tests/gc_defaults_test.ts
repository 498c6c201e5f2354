/**
 * The collector settings a node runs with (src/core/runtime.ts GC_DEFAULTS), against real
 * processes. The compiled binary (WEFT_BIN, `deno task test:binary`) replaces itself at start with
 * Bun's GC timer off (same pid: the variable is in its /proc environ) unless the operator set the
 * variable; the ready line and /config_dump say which setting is in effect and where it came from.
 * Without WEFT_BIN: on Bun from source nothing is re-executed (Bun's default, reported), on Deno
 * there is no such setting.
 */
import { join } from "node:path";
import { stringify } from "yaml";
import { assertEquals } from "./support/assert.ts";
import { bunPath, LISTENERS, loopbackBlock, startWeft, weftBin } from "./support/weft_proc.ts";

async function node(
  env: Record<string, string>,
  runtime?: string,
): Promise<{ ready: unknown; dump: unknown; environ: string[] }> {
  const dir = await Deno.makeTempDir({ prefix: "weft-gc-" });
  const ip = loopbackBlock();
  try {
    const cfg = {
      ca: { mode: "auto", stateDir: join(dir, "ca") },
      listeners: LISTENERS,
      workloads: [{ name: "w", address: ip(2) }],
    };
    await Deno.writeTextFile(join(dir, "weft.yaml"), stringify(cfg));
    const p = await startWeft(["run", "--config", join(dir, "weft.yaml")], {
      env,
      ...(runtime ? { runtime } : {}),
    });
    try {
      const r = await fetch(`http://${p.ready.admin}/config_dump`);
      const dump = (await r.json()) as { node: { gc?: unknown } };
      const environ = (await Deno.readTextFile(`/proc/${p.child.pid}/environ`)).split("\0");
      return { ready: p.ready.gc, dump: dump.node.gc, environ };
    } finally {
      await p.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("gc: the binary starts with Bun's GC timer off unless the operator sets it", {
  ignore: !weftBin(),
}, async () => {
  const def = await node({});
  assertEquals(def.ready, { bunGcTimer: "off", source: "weft default" });
  assertEquals(def.dump, def.ready);
  // execve kept the pid the test spawned: the running image has the variable.
  assertEquals(def.environ.includes("BUN_GC_TIMER_DISABLE=1"), true);

  const on = await node({ BUN_GC_TIMER_DISABLE: "0", BUN_JSC_logGC: "0" });
  assertEquals(on.ready, {
    bunGcTimer: "on",
    source: "environment",
    jsc: { BUN_JSC_logGC: "0" },
  });
  assertEquals(on.environ.some((e) => e.startsWith("WEFT_GC_DEFAULTS_SET=")), false);

  const off = await node({ BUN_GC_TIMER_DISABLE: "1" });
  assertEquals(off.ready, { bunGcTimer: "off", source: "environment" });
});

Deno.test(
  "gc: from source, Deno reports no setting",
  { ignore: weftBin() !== undefined },
  async () => {
    assertEquals((await node({})).ready, undefined);
  },
);

const BUN = bunPath();
Deno.test("gc: from source on Bun, nothing is re-executed: Bun's default, reported", {
  ignore: weftBin() !== undefined || !BUN,
}, async () => {
  const b = await node({}, BUN);
  assertEquals(b.ready, { bunGcTimer: "on", source: "bun default" });
  assertEquals(b.dump, b.ready);
});
