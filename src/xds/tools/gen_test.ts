import assert from "node:assert/strict";
import { patchValidate } from "./gen.ts";

Deno.test("gen: the old npm validate.proto gains ignore_empty once, with upstream numbers", () => {
  const src = "message StringRules {\n    optional string const = 1;\n}\n" +
    "message BytesRules {\n    optional bool ignore_empty = 14;\n}\n";
  const out = patchValidate(src);
  assert.match(out, /message StringRules \{\n {4}optional bool ignore_empty = 26;/);
  assert.equal(out.match(/ignore_empty/g)?.length, 2, "existing fields are left alone");
  assert.equal(patchValidate(out), out, "idempotent");
});
