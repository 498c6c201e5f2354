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

/** Reads every manifest file of `paths`; a missing path or an unreadable file throws. */
export async function readSources(paths: readonly string[]): Promise<SourceText[]> {
  const out: SourceText[] = [];
  for (const p of paths) {
    const st = await stat(p);
    const files = st.isDirectory() ? await filesUnder(p) : [p];
    for (const f of files) out.push({ file: f, text: await readFile(f, "utf8") });
  }
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
