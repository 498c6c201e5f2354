/**
 * Live edits of weft.yaml that cannot be applied, against real processes: a plugin that cannot
 * load and a file that does not validate are logged with their cause and counted in
 * weft_config_reloads_total{result}; the node keeps serving the last good config, and nothing
 * reaches the process guard (weft_proc fails the test on an unhandled error).
 */
import { join } from "node:path";
import { assert, assertEquals } from "./support/assert.ts";
import { metricSum, roundTrip, scrape, startMesh } from "./support/mesh.ts";
import { buildPlugin } from "../src/filters/plugin_build.ts";
import { examplePath } from "./support/example_plugins.ts"; // warms jco and c_faulty before tests

Deno.test("reload: an unloadable plugin or an invalid edit keeps the last good config serving", async () => {
  const m = await startMesh();
  try {
    const data = new TextEncoder().encode("still serving");
    const s = await m.dial();
    assertEquals(await roundTrip(s, data), data);
    // A plugin whose module is not WebAssembly: loading it fails after validation passes.
    const junk = join(m.pki.dir, "junk.wasm");
    await Deno.writeTextFile(junk, "not a wasm module");
    const echo = {
      name: "echo",
      namespace: "default",
      ports: [{ port: 80, targetPort: m.echo.port, protocol: "HTTP" }],
      endpoints: [{
        workload: "echo",
        namespace: "default",
        serviceAccount: "echo",
        address: m.echoIp,
      }],
      plugins: [{ name: "junk", url: `file://${junk}`, type: "component" }],
    };
    await m.writeB({ ...m.nodeB, services: [echo] });
    const failed = await m.b!.waitFor((l) =>
      l.msg === "config update failed; keeping the last good config"
    );
    assert(String(failed.error).length > 0, "the cause is logged");
    // A real filter that refuses its pluginConfig (plugins/examples/c_faulty, built from C).
    const faulty = await buildPlugin(examplePath("c_faulty"));
    const refusing = {
      ...echo,
      plugins: [{
        name: "faulty",
        url: `file://${faulty.path}`,
        type: "component",
        pluginConfig: { mode: "reject" },
      }],
    };
    await m.writeB({ ...m.nodeB, services: [refusing] });
    const refused = await m.b!.waitFor((l) =>
      l.msg === "config update failed; keeping the last good config" && l !== failed
    );
    assert(String(refused.error).includes("refuses to start"), String(refused.error));
    // An edit that does not validate.
    await m.writeB({ ...m.nodeB, node: { name: "node-b", hbonePort: 0 } });
    const rejected = await m.b!.waitFor((l) =>
      l.msg === "config update rejected; keeping the last good config"
    );
    // The problems are in the JSON record, by path; stderr holds no text lines (bench/fuzz.ts
    // found every problem printed there as plain text by the running node).
    assert(
      (rejected.problems as string[]).some((p) => p.startsWith("node.hbonePort")),
      JSON.stringify(rejected),
    );
    const stray = m.b!.stderrText().split("\n").filter((l) => l.trim() && !l.startsWith("{"));
    assertEquals(stray, []);
    // The old tunnel and a new one still carry traffic.
    assertEquals(await roundTrip(s, data), data);
    const s2 = await m.dial();
    assertEquals(await roundTrip(s2, data), data);
    const text = await scrape(m.b!);
    assertEquals(metricSum(text, "weft_config_reloads_total", 'result="failed"'), 2);
    assertEquals(metricSum(text, "weft_config_reloads_total", 'result="invalid"'), 1);
    assertEquals(metricSum(text, "weft_unhandled_errors_total"), 0);
    s.destroy();
    s2.destroy();
  } finally {
    await m.stop();
  }
});
