/**
 * Watch one file for replacement, as a mounted Kubernetes ConfigMap or Secret changes: the
 * directory is watched (kubelet swaps the `..data` symlink by rename, the file's own name sees no
 * event), events are debounced, and a `stat` poll (inode, size, mtime, following symlinks) covers
 * a directory that cannot be watched or does not exist yet.
 */
import { type FSWatcher, statSync, watch } from "node:fs";
import { stat } from "node:fs/promises";
import { dirname } from "node:path";
import { errorMessage, logger } from "../core/mod.ts";

const log = logger("crl");

function stampOf(st: { ino: number; size: number; mtimeMs: number }): string {
  return `${st.ino}:${st.size}:${st.mtimeMs}`;
}

/** Calls `onChange` (debounced) after the file may have changed; returns the stop function. */
export function watchFile(
  path: string,
  onChange: () => void,
  opts: { readonly pollMs: number; readonly debounceMs: number },
): () => void {
  let stamp: string;
  try {
    stamp = stampOf(statSync(path));
  } catch {
    stamp = "missing";
  }
  let debounce: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  const kick = (): void => {
    clearTimeout(debounce);
    debounce = setTimeout(() => stopped || onChange(), opts.debounceMs);
  };
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dirname(path), kick);
    watcher.on("error", (err) => {
      log.warn("directory watch failed; polling", { path, error: errorMessage(err) });
      watcher?.close();
      watcher = undefined;
    });
  } catch (err) {
    log.warn("cannot watch the directory; polling", { path, error: errorMessage(err) });
  }
  const poll = setInterval(() => {
    stat(path).then(stampOf, () => "missing").then((s) => {
      if (s === stamp || stopped) return;
      stamp = s;
      kick();
    });
  }, opts.pollMs);
  (poll as unknown as { unref?: () => void }).unref?.();
  return () => {
    stopped = true;
    watcher?.close();
    clearInterval(poll);
    clearTimeout(debounce);
  };
}
