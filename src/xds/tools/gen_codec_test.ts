import assert from "node:assert/strict";
import { CODEC_PATH, generateCodec } from "./gen_codec.ts";

Deno.test("gen_codec: the committed node codec is what the generator writes from the current schemas (run `deno task gen` after a schema change)", async () => {
  const committed = await Deno.readTextFile(CODEC_PATH);
  assert.ok(
    committed === generateCodec(),
    "src/xds/gen/node_codec.ts is stale: run `deno task gen`",
  );
});
