/**
 * Node agent lifecycle with real processes: certificate rotation under traffic without dropping
 * the connection, SIGTERM drain letting an in-flight transfer finish, bad config refused before
 * binding.
 */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { closed, metricSum, roundTrip, scrape, startMesh } from "./support/mesh.ts";
import { runWeft } from "./support/weft_proc.ts";

Deno.test("rotation: certificates rotate at half-life under traffic; no connection drops", async () => {
  const m = await startMesh({ certificates: { ttl: "4s", rotateAtFraction: 0.5 } });
  try {
    const s = await m.dial();
    const before =
      (await (await fetch(`http://${m.b!.ready.admin}/config_dump`)).json()).certificates[0].serial;
    const data = new TextEncoder().encode("tick");
    const deadline = Date.now() + 60_000;
    let rotated = false;
    while (!rotated && Date.now() < deadline) {
      assertEquals(await roundTrip(s, data), data);
      const text = await scrape(m.b!);
      rotated = metricSum(text, "weft_certificate_rotations_total") >= 1;
      if (!rotated) await new Promise((r) => setTimeout(r, 200));
    }
    assert(rotated, "no rotation seen");
    assertEquals(await roundTrip(s, data), data); // the old connection still works
    const after =
      (await (await fetch(`http://${m.b!.ready.admin}/config_dump`)).json()).certificates[0].serial;
    assert(after !== before, "serial must change on rotation");
    const s2 = await m.dial(); // and new handshakes use the new certificate
    assertEquals(await roundTrip(s2, data), data);
    s.destroy();
    s2.destroy();
  } finally {
    await m.stop();
  }
});

Deno.test("drain: SIGTERM lets an in-flight transfer finish inside the window, then exit 0", async () => {
  const m = await startMesh({ timeouts: { drain: "8s" } });
  try {
    const s = await m.dial();
    const part = new TextEncoder().encode("x".repeat(1000));
    assertEquals(await roundTrip(s, part), part);
    m.b!.child.kill("SIGTERM");
    await m.b!.waitFor((l) => l.msg === "draining");
    // Keep the transfer going during the drain: it must not be reset.
    for (let i = 0; i < 5; i++) {
      assertEquals(await roundTrip(s, part), part);
      await new Promise((r) => setTimeout(r, 100));
    }
    s.end();
    await closed(s);
    assertEquals((await m.b!.exited).code, 0);
  } finally {
    await m.stop();
  }
});

Deno.test("config: weft validate prints every problem with its path and exits non-zero", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const bad = `${dir}/bad.yaml`;
    await Deno.writeTextFile(
      bad,
      "node: { hbonePort: 0 }\nworkloads: [{ name: x, address: nope }]\n",
    );
    const r = await runWeft(["validate", bad]);
    assertEquals(r.code, 1);
    assertMatch(r.stderr, /node\.hbonePort: must be an integer 1-65535/);
    assertMatch(r.stderr, /workloads\[0\]\.address: must be an IP address/);
    const run = await runWeft(["run", "--config", bad]);
    assertEquals(run.code, 1);
    assert(!run.stdout.includes('"msg":"ready"'), "must exit before binding");
    const good = `${dir}/good.yaml`;
    await Deno.writeTextFile(good, "node: { name: n1 }\n");
    assertEquals((await runWeft(["validate", good])).code, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("drain: in-flight tunnels keep flowing while idle pooled sessions close at SIGTERM (node A)", async () => {
  const m = await startMesh({
    timeouts: { drain: "30s" },
    limits: { poolMaxStreamsPerConnection: 10 },
  });
  try {
    const data = new TextEncoder().encode("y".repeat(1024));
    const socks = await Promise.all(Array.from({ length: 100 }, () => m.dial())); // 10 sessions
    await Promise.all(socks.map(async (s) => assertEquals(await roundTrip(s, data), data)));
    const busy = socks.filter((_, i) => i % 10 === 0);
    const rest = socks.filter((_, i) => i % 10 !== 0);
    await Promise.all(rest.map((s) => (s.end(), closed(s))));
    // Traffic in flight while SIGTERM arrives and the idle sessions go.
    let stop = false;
    const loops = busy.map(async (s) => {
      for (let i = 0; !stop || i < 3; i++) assertEquals(await roundTrip(s, data), data);
    });
    await new Promise((r) => setTimeout(r, 200));
    m.a.child.kill("SIGTERM");
    await m.a.waitFor((l) => l.msg === "draining");
    await new Promise((r) => setTimeout(r, 500));
    stop = true;
    await Promise.all(loops);
    await Promise.all(busy.map((s) => (s.end(), closed(s))));
    assertEquals((await m.a.exited).code, 0);
  } finally {
    await m.stop();
  }
});
