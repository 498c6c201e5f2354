/** The reload's file cache: unchanged files are not read again, and no edit goes unseen. */
import assert from "node:assert/strict";
import { mkdtemp, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readSources, type TextCache } from "./sources.ts";

Deno.test("readSources: an edit of the same size within the same millisecond is seen", async () => {
  const dir = await mkdtemp(join(tmpdir(), "weft-sources-"));
  try {
    const f = join(dir, "a.yaml");
    const cache: TextCache = new Map();
    await writeFile(f, "weight: 10\n");
    assert.equal((await readSources([dir], cache))[0]!.text, "weight: 10\n");
    await writeFile(f, "weight: 20\n"); // racy: same size, maybe the same mtime
    assert.equal((await readSources([dir], cache))[0]!.text, "weight: 20\n");
    // A file older than a second is trusted by its stamp: not read again...
    const old = new Date(Date.now() - 10_000);
    await utimes(f, old, old);
    await readSources([dir], cache);
    cache.get(f)!.text = "held\n";
    assert.equal((await readSources([dir], cache))[0]!.text, "held\n");
    // ...until it changes.
    await writeFile(f, "weight: 30\n");
    assert.equal((await readSources([dir], cache))[0]!.text, "weight: 30\n");
    await rm(f);
    assert.deepEqual(await readSources([dir], cache), []);
    assert.equal(cache.size, 0);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
