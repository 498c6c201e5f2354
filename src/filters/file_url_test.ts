import { deepEqual, throws } from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { filePathOf } from "./file_url.ts";

Deno.test("filePathOf: as node:url's fileURLToPath on POSIX paths", () => {
  for (
    const u of [
      "file:///tmp/a.wasm",
      "file:///tmp/with%20space/%C3%A9.wasm",
      "file://localhost/etc/x",
      import.meta.url,
    ]
  ) {
    deepEqual(filePathOf(u), fileURLToPath(u));
  }
});

Deno.test("filePathOf: refuses what fileURLToPath refuses", () => {
  for (const u of ["http://x/a", "file://host/a", "file:///a%2fb"]) {
    throws(() => filePathOf(u));
    throws(() => fileURLToPath(u));
  }
});
