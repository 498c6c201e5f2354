/**
 * The collector settings a node runs with (src/core/runtime.ts GC_DEFAULTS), against real
 * processes. The compiled binary (WEFT_BIN, `deno task test:binary`) replaces itself at start with
 * Bun's GC timer off and the wasm BBQ JIT threshold raised (same pid: the variables are in its
 * /proc environ) unless the operator set them; the ready line and /config_dump say which settings
 * are in effect and where the timer's came from.
 * Without WEFT_BIN: on Bun from source nothing is re-executed (Bun's default, reported), on Deno
 * there is no such setting.
 */
import { join } from "node:path";
import { stringify } from "yaml";
import { assertEquals } from "./support/assert.ts";
import { bunPath, LISTENERS, loopbackBlock, startWeft, weftBin } from "./support/weft_proc.ts";
import { startXdsMesh, type XdsMesh } from "./support/xds_nodes.ts";

/** The environment the process `pid` runs with (after any execve: the running image's). */
async function environOf(pid: number): Promise<string[]> {
  return (await Deno.readTextFile(`/proc/${pid}/environ`)).split("\0");
}

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
      return { ready: p.ready.gc, dump: dump.node.gc, environ: await environOf(p.child.pid) };
    } finally {
      await p.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test(
  "gc: the binary adds Bun's GC timer off and the BBQ threshold unless the operator set them",
  {
    ignore: !weftBin(),
  },
  async () => {
    const BBQ = "BUN_JSC_thresholdForBBQOptimizeAfterWarmUp";
    const def = await node({});
    assertEquals(def.ready, {
      bunGcTimer: "off",
      source: "weft default",
      jsc: { [BBQ]: "20000" },
    });
    assertEquals(def.dump, def.ready);
    // execve kept the pid the test spawned: the running image has the variables.
    assertEquals(def.environ.includes("BUN_GC_TIMER_DISABLE=1"), true);
    assertEquals(def.environ.includes(`${BBQ}=20000`), true);

    // The operator's values are kept; only the missing default is added.
    const on = await node({ BUN_GC_TIMER_DISABLE: "0", BUN_JSC_logGC: "0" });
    assertEquals(on.ready, {
      bunGcTimer: "on",
      source: "environment",
      jsc: { BUN_JSC_logGC: "0", [BBQ]: "20000" },
    });
    assertEquals(
      on.environ.filter((e) => e.startsWith("WEFT_GC_DEFAULTS_SET=")),
      [`WEFT_GC_DEFAULTS_SET=${BBQ}=20000`],
    );

    // Every default set by the operator: nothing is re-executed.
    const off = await node({ BUN_GC_TIMER_DISABLE: "1", [BBQ]: "50" });
    assertEquals(off.ready, { bunGcTimer: "off", source: "environment", jsc: { [BBQ]: "50" } });
    assertEquals(off.environ.some((e) => e.startsWith("WEFT_GC_DEFAULTS_SET=")), false);
  },
);

Deno.test(
  "gc: `weft control-plane` from the binary restarts itself with the same defaults",
  { ignore: !weftBin() },
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "weft-gc-cp-" });
    try {
      await Deno.writeTextFile(
        join(dir, "mesh.yaml"),
        stringify({
          apiVersion: "v1",
          kind: "Service",
          metadata: { name: "echo", namespace: "default" },
          spec: { clusterIP: "10.96.0.10", ports: [{ port: 80 }] },
        }),
      );
      const cp = await startWeft([
        "control-plane",
        "--config-dir",
        dir,
        "--address",
        "127.0.0.1:0",
      ]);
      try {
        const environ = await environOf(cp.child.pid);
        assertEquals(cp.ready.gc, {
          bunGcTimer: "off",
          source: "weft default",
          jsc: { BUN_JSC_thresholdForBBQOptimizeAfterWarmUp: "20000" },
        });
        assertEquals(environ.includes("BUN_GC_TIMER_DISABLE=1"), true);
      } finally {
        await cp.stop();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

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

// An xDS node keeps the start-up JIT policy until its first sync is applied; a control plane that
// accepts the connection and never answers must not hold it past WEFT_XDS_JIT_HOLD_MS.
Deno.test("gc: an xDS node whose control plane never answers still leaves the start-up JIT", {
  ignore: !weftBin() && !BUN,
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "weft-gc-" });
  const ip = loopbackBlock();
  const silent = Deno.listen({ hostname: ip(1), port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const c of silent) held.push(c);
  })().catch(() => {});
  try {
    const cfg = {
      ca: { mode: "auto", stateDir: join(dir, "ca") },
      listeners: LISTENERS,
      workloads: [{ name: "w", address: ip(2) }],
    };
    await Deno.writeTextFile(join(dir, "weft.yaml"), stringify(cfg));
    const p = await startWeft(
      ["run", "--config", join(dir, "weft.yaml"), "--xds", `${ip(1)}:${silent.addr.port}`],
      { env: { WEFT_XDS_JIT_HOLD_MS: "1500" }, ...(weftBin() ? {} : { runtime: BUN! }) },
    );
    try {
      const gc = async () =>
        ((await (await fetch(`http://${p.ready.admin}/config_dump`)).json()) as {
          node: { gc: { startupJit?: string } };
        }).node.gc;
      assertEquals((await gc()).startupJit, "held");
      // Released once the 1.5 s hold has passed: polled (not a fixed sleep), 10 s at most.
      const deadline = Date.now() + 10_000;
      while ((await gc()).startupJit !== undefined && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
      }
      assertEquals((await gc()).startupJit, undefined);
    } finally {
      await p.stop();
    }
  } finally {
    silent.close();
    await accepting;
    for (const c of held) c.close();
    await Deno.remove(dir, { recursive: true });
  }
});

// With a control plane that answers, the first applied sync ends the hold (well before its 30 s).
Deno.test("gc: an xDS node leaves the start-up JIT once its first sync is applied", {
  ignore: !weftBin() && !BUN,
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "weft-gc-" });
  const ip = loopbackBlock();
  const mesh = {
    trustDomain: "cluster.local",
    workloads: [{
      name: "w",
      namespace: "default",
      serviceAccount: "sa",
      address: ip(10),
      node: "node-a",
    }],
    services: [],
  };
  let x: XdsMesh | undefined;
  try {
    const t0 = Date.now();
    x = await startXdsMesh(dir, mesh, ["node-a"], [], undefined, {
      ...(weftBin() ? {} : { nodeRuntime: BUN! }),
    });
    const a = x.nodes[0]!;
    await x.waitReady(a);
    const dump = (await (await fetch(`http://${a.ready.admin}/config_dump`)).json()) as {
      node: { gc: { startupJit?: string } };
    };
    assertEquals(dump.node.gc.startupJit, undefined);
    assertEquals(Date.now() - t0 < 30_000, true);
  } finally {
    await x?.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
