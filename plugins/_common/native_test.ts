/**
 * Builds the portable C shared by the first-party plugins with the host clang (ASan + UBSan)
 * and runs its table-driven unit tests (c/test/native_test.c: JSON, RE2-subset regex, Istio
 * string match, CIDR). The plugins themselves are tested through the real host in
 * plugins/<name>/*_test.ts.
 */
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const C = join(dirname(fileURLToPath(import.meta.url)), "c");

Deno.test("native C unit tests (json, regex, match, cidr) under ASan/UBSan", async () => {
  const dir = await Deno.makeTempDir({ prefix: "weft-native-" });
  try {
    const exe = join(dir, "native_test");
    const build = await new Deno.Command("clang", {
      args: [
        "-O1",
        "-g",
        "-fsanitize=address,undefined",
        "-fno-sanitize-recover=all",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-o",
        exe,
        join(C, "test/native_test.c"),
        ...["weft_rt.c", "json.c", "cfg.c", "match.c", "regex.c", "regex_parse.c"].map((f) =>
          join(C, f)
        ),
      ],
    }).output();
    assert.equal(build.code, 0, new TextDecoder().decode(build.stderr));
    const run = await new Deno.Command(exe).output();
    const out = new TextDecoder().decode(run.stdout) + new TextDecoder().decode(run.stderr);
    assert.equal(run.code, 0, out);
    assert.match(out, /native tests ok/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
