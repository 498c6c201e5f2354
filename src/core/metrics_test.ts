import assert from "node:assert/strict";
import { Registry } from "./metrics.ts";

/** Counters, gauges and histograms bumped through every entry point (inc/add/set/observe and the
 * bound forms), with label values that need escaping and series first used through a binding. */
function exercise(r: Registry): void {
  const c = r.counter("weft_test_total", "A counter", ["side", "code"]);
  c.inc({ side: "client", code: "200" });
  const bound = c.bind({ side: "server", code: "503" });
  const unused = c.bind({ side: "never", code: "0" });
  void unused; // a binding never bumped adds no series
  c.inc({ side: 'q"uote\\back\nline', code: "x" }, 2);
  bound();
  bound(5);
  c.inc({ side: "client", code: "200" }, 0.5);
  c.inc({ side: "client" }); // a missing label renders as "unknown"
  r.counter("weft_plain_total", "Unlabelled").inc();
  const g = r.gauge("weft_test_gauge", "A gauge", ["direction"]);
  g.add({ direction: "inbound" }, 3);
  g.add({ direction: "inbound" }, -1);
  g.set({ direction: "outbound" }, 7);
  const gb = g.bind({ direction: "inbound" });
  gb(10);
  gb(-4);
  r.gauge("weft_collected", "Computed at scrape").collect(() => 42);
  const h = r.histogram("weft_test_seconds", "A histogram", ["op"], [0.001, 0.01, 1]);
  h.observe({ op: "a" }, 0.0005);
  const hb = h.bind({ op: "b" });
  hb(0.005);
  hb(2);
  h.observe({ op: "a" }, 0.02);
}

/** The text the registry rendered for `exercise` before counters held their values in cells
 * (commit 12a5cb3): the exposition must stay byte-identical. */
const EXPECTED = `# HELP weft_test_total A counter
# TYPE weft_test_total counter
weft_test_total{side="client",code="200"} 1.5
weft_test_total{side="q\\"uote\\\\back\\nline",code="x"} 2
weft_test_total{side="server",code="503"} 6
weft_test_total{side="client",code="unknown"} 1
# HELP weft_plain_total Unlabelled
# TYPE weft_plain_total counter
weft_plain_total 1
# HELP weft_test_gauge A gauge
# TYPE weft_test_gauge gauge
weft_test_gauge{direction="inbound"} 8
weft_test_gauge{direction="outbound"} 7
# HELP weft_collected Computed at scrape
# TYPE weft_collected gauge
weft_collected 42
# HELP weft_test_seconds A histogram
# TYPE weft_test_seconds histogram
weft_test_seconds_bucket{op="a",le="0.001"} 1
weft_test_seconds_bucket{op="a",le="0.01"} 1
weft_test_seconds_bucket{op="a",le="1"} 2
weft_test_seconds_bucket{op="a",le="+Inf"} 2
weft_test_seconds_sum{op="a"} 0.0205
weft_test_seconds_count{op="a"} 2
weft_test_seconds_bucket{op="b",le="0.001"} 0
weft_test_seconds_bucket{op="b",le="0.01"} 1
weft_test_seconds_bucket{op="b",le="1"} 1
weft_test_seconds_bucket{op="b",le="+Inf"} 2
weft_test_seconds_sum{op="b"} 2.005
weft_test_seconds_count{op="b"} 2
`;

Deno.test("metrics: the exposition text is byte-identical through inc, bind, add, set, observe", () => {
  const r = new Registry();
  exercise(r);
  assert.equal(r.render(), EXPECTED);
  // /config_dump's metricsFamilies: the count of TYPE lines, without rendering.
  assert.equal(r.familyCount, EXPECTED.split("\n").filter((l) => l.startsWith("# TYPE")).length);
  assert.equal(r.familyCount, 5);
});

Deno.test("metrics: bound counters and gauges read back through get and sum", () => {
  const r = new Registry();
  const c = r.counter("weft_x_total", "x", ["k"]);
  const inc = c.bind({ k: "a" });
  assert.equal(c.get({ k: "a" }), 0);
  for (let i = 0; i < 1000; i++) inc();
  c.inc({ k: "a" }, 2);
  c.inc({ k: "b" }, 3);
  assert.equal(c.get({ k: "a" }), 1002);
  assert.equal(c.sum(), 1005);
  assert.equal(c.sum({ k: "b" }), 3);
  const g = r.gauge("weft_y", "y", ["k"]);
  const add = g.bind({ k: "a" });
  add(5);
  g.set({ k: "a" }, 1); // set and a binding share one value
  add(2);
  assert.equal(g.get({ k: "a" }), 3);
  // Registering a family twice returns the first one (and its values).
  assert.equal(r.counter("weft_x_total", "x", ["k"]).get({ k: "a" }), 1002);
});
