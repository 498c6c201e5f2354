/**
 * Where the control plane's manifests come from: files and directories (every *.yaml, *.yml and
 * *.json under a directory, recursively, in name order), read together as one mesh, and a
 * watcher that calls back (debounced) when any of them changes.
 */
import { type FSWatcher, watch } from "node:fs";
import { readdir, readFile, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { SourceText } from "../../istio/mod.ts";

const MANIFEST = /\.(ya?ml|json)$/;

async function filesUnder(dir: string, depth = 0): Promise<string[]> {
  if (depth > 16) return [];
  const out: string[] = [];
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => a.name.localeCompare(b.name));
  for (const e of entries) {
    if (e.name.startsWith(".")) continue; // editors' swap files, atomic-write temp files
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...await filesUnder(p, depth + 1));
    else if (MANIFEST.test(e.name)) out.push(p);
  }
  return out;
}

/** A file's text with what identifies its content on disk, and whether that may be trusted. */
export type TextCache = Map<
  string,
  { readonly stamp: string; readonly stable: boolean; text: string }
>;

/** Reads every manifest file of `paths`; a missing path or an unreadable file throws. With
 * `cache`, a file whose inode, size, mtime and ctime are unchanged is not read again (a reload
 * after one edit reads one file). As git does for its index ("racy git"), a file modified less
 * than a second before it was read is read again next time: an edit within the timestamps'
 * granularity could otherwise go unseen. */
export async function readSources(
  paths: readonly string[],
  cache?: TextCache,
): Promise<SourceText[]> {
  const listed = new Set<string>(); // a file named itself and through its directory: once
  for (const p of paths) {
    const st = await stat(p);
    for (const f of st.isDirectory() ? await filesUnder(p) : [p]) listed.add(f);
  }
  const files = [...listed];
  // Files side by side, 32 at a time (the stats of a 60-file directory one after another cost
  // ~10 ms of round trips per reload; unbounded, a big directory could run out of descriptors);
  // the result keeps the files' order.
  const out = await mapLimit(files, 32, async (f): Promise<SourceText> => {
    if (!cache) return { file: f, text: await readFile(f, "utf8") };
    const fs = await stat(f);
    const stamp = `${fs.ino}|${fs.size}|${fs.mtimeMs}|${fs.ctimeMs}`;
    const held = cache.get(f);
    if (held?.stable && held.stamp === stamp) return { file: f, text: held.text };
    const readAt = Date.now();
    const text = await readFile(f, "utf8");
    const stable = fs.mtimeMs < readAt - 1000;
    cache.set(f, { stamp, stable, text });
    return { file: f, text };
  });
  if (cache) { for (const f of [...cache.keys()]) if (!listed.has(f)) cache.delete(f); }
  return out;
}

async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** Watches the directories of `paths` (a file's directory, filtered by name: editors and deploy
 * tools replace files by rename, which a file watch would stop following). */
export async function watchSources(
  paths: readonly string[],
  onChange: () => void,
  debounceMs = 10,
): Promise<() => void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const fire = (): void => {
    clearTimeout(timer);
    timer = setTimeout(onChange, debounceMs);
  };
  const watchers: FSWatcher[] = [];
  for (const p of paths) {
    const isDir = (await stat(p)).isDirectory();
    const dir = isDir ? p : dirname(p);
    const name = basename(p);
    watchers.push(watch(dir, { recursive: isDir }, (_event, f) => {
      // In a directory any change counts (a Kubernetes ConfigMap volume swaps its `..data`
      // link; unchanged files cost nothing to re-read, see the per-file parse cache).
      if (!isDir && f !== null && String(f) !== name) return;
      fire();
    }));
  }
  return () => {
    clearTimeout(timer);
    for (const w of watchers) w.close();
  };
}
