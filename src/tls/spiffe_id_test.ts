import assert from "node:assert/strict";
import { WeftError } from "../core/mod.ts";
import { formatSpiffeId, parseSpiffeId, principalOf, tryParseSpiffeId } from "./spiffe_id.ts";

Deno.test("parseSpiffeId accepts the ztunnel shape and round-trips", () => {
  const s = "spiffe://cluster.local/ns/default/sa/web";
  const id = parseSpiffeId(s);
  assert.deepEqual(id, {
    trustDomain: "cluster.local",
    namespace: "default",
    serviceAccount: "web",
  });
  assert.equal(formatSpiffeId(id), s);
  assert.equal(principalOf(s), "cluster.local/ns/default/sa/web");
});

Deno.test("parseSpiffeId rejects everything that is not five segments with literal ns/sa", () => {
  const bad = [
    "",
    "cluster.local/ns/default/sa/web",
    "https://cluster.local/ns/default/sa/web",
    "SPIFFE://cluster.local/ns/default/sa/web",
    "spiffe://cluster.local/ns/default/sa/web/extra",
    "spiffe://cluster.local/ns/default/sa",
    "spiffe://cluster.local/ns/default/sa/web/",
    "spiffe://cluster.local/namespace/default/sa/web",
    "spiffe://cluster.local/ns/default/serviceaccount/web",
    "spiffe://cluster.local/sa/web/ns/default",
    "spiffe:///ns/default/sa/web",
    "spiffe://cluster.local/ns//sa/web",
    "spiffe://cluster.local/ns/default/sa/",
  ];
  for (const s of bad) {
    assert.equal(tryParseSpiffeId(s), undefined, s);
    assert.throws(() => parseSpiffeId(s), (e: unknown) => {
      assert.ok(e instanceof WeftError);
      assert.equal(e.code, "spiffe_id_invalid");
      assert.match(e.message, /^Cannot parse SPIFFE id: /);
      return true;
    });
  }
});

Deno.test("formatSpiffeId refuses empty or slash-carrying parts", () => {
  assert.throws(
    () => formatSpiffeId({ trustDomain: "td", namespace: "a/b", serviceAccount: "x" }),
    /Cannot format SPIFFE id: namespace/,
  );
  assert.throws(
    () => formatSpiffeId({ trustDomain: "", namespace: "a", serviceAccount: "x" }),
    /trustDomain/,
  );
});
