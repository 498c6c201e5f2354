/** RDS header fields: Envoy's append actions weft makes, NACKs for what it cannot make. */
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import {
  HeaderValueOption_HeaderAppendAction as Action,
  HeaderValueOptionSchema,
} from "../gen/envoy/config/core/v3/base_pb.ts";
import { headerOpsOf } from "./route_headers.ts";

const opt = (key: string, value: string, init: Record<string, unknown> = {}) =>
  create(HeaderValueOptionSchema, { header: { key, value }, ...init });

Deno.test("RDS headers: overwrite, append (default and deprecated `append`), remove", () => {
  const ops = headerOpsOf(
    [
      opt("X-A", "1", { appendAction: Action.OVERWRITE_IF_EXISTS_OR_ADD }),
      opt("x-b", "2"),
      opt("x-c", "3", { append: false }),
      opt("x-empty", ""),
      opt("x-pct", "100%%"),
    ],
    ["X-Gone"],
    "t",
    "request_headers",
  );
  assert.deepEqual(ops, {
    remove: ["x-gone"],
    set: [["x-a", "1"], ["x-c", "3"]],
    add: [["x-b", "2"], ["x-pct", "100%"]],
  });
  assert.equal(headerOpsOf([], [], "t", "request_headers"), undefined);
});

Deno.test("RDS headers: pseudo-headers, host, formatters, other append actions are NACKed", () => {
  const bad: [Parameters<typeof headerOpsOf>[0], string[]][] = [
    [[opt(":path", "/")], []],
    [[], ["host"]],
    [[opt("x-a", "%DOWNSTREAM_REMOTE_ADDRESS%")], []],
    [[opt("x-a", "v", { appendAction: Action.ADD_IF_ABSENT })], []],
    [[opt("bad name", "v")], []],
  ];
  for (const [add, remove] of bad) {
    assert.throws(() => headerOpsOf(add, remove, "t", "request_headers"), JSON.stringify(add));
  }
});
