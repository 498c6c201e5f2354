import assert from "node:assert/strict";
import { emptyPool, pooled, pooledMap } from "./string_pool.ts";

Deno.test("string pool: equal label maps within one response are one frozen object; emptied after", () => {
  const a = pooledMap({ app: "echo", version: "v1" });
  const b = pooledMap({ app: ["ec", "ho"].join(""), version: "v1" });
  assert.equal(a, b, "one instance");
  assert.ok(Object.isFrozen(a));
  assert.deepEqual(a, { app: "echo", version: "v1" });
  assert.notEqual(pooledMap({ app: "echo" }), a, "a different map is another object");
  assert.equal(pooledMap({}), pooledMap({}));
  assert.equal(pooled("x"), "x");
  emptyPool();
  const c = pooledMap({ app: "echo", version: "v1" });
  assert.notEqual(c, a, "nothing survives emptyPool");
  assert.deepEqual(c, a);
  emptyPool();
});
