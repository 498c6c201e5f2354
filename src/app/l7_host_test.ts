import { assertEquals } from "../../tests/support/assert.ts";
import type { FilterRef, Service } from "../core/mod.ts";
import { scopeCollisions } from "./l7_host.ts";
import "../../tests/support/example_plugins.ts"; // warms jco before sanitized tests

const ref = (name: string, config: unknown): FilterRef => ({
  name,
  type: "weft.proxy_wasm",
  url: "file:///p.wasm",
  sha256: undefined,
  config,
  failPolicy: "FAIL_CLOSE",
  phase: "UNSPECIFIED",
  priority: 0,
});

const svc = (name: string, inbound: FilterRef[]): Service =>
  ({ name, namespace: "ns", inboundFilters: inbound, outboundFilters: [] }) as unknown as Service;

Deno.test("unscoped refs: one filter per name unless configs clash across services", () => {
  const services = [
    svc("a", [ref("shared", { x: 1 }), ref("inline", { who: "a" })]),
    svc("b", [ref("shared", { x: 1 }), ref("inline", { who: "b" })]),
  ];
  scopeCollisions(services);
  assertEquals(services.map((s) => s.inboundFilters.map((r) => r.scope)), [
    [undefined, "ns/a/inbound"],
    [undefined, "ns/b/inbound"],
  ]);
});
