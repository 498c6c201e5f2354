/**
 * Dev-mode hot reload: watches each loaded filter's .wasm and, for plugins with a plugin.json
 * beside their build/ folder, its sources. A source change rebuilds the plugin; a changed .wasm
 * is loaded as a new generation (FilterHost.reload), or rejected while the old keeps serving.
 */
import { type FSWatcher, watch } from "node:fs";
import { existsSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { errorMessage, logger } from "../core/mod.ts";
import type { FilterHost, ReloadResult } from "./filter_host.ts";
import { localPath } from "./registry.ts";

const log = logger("filters.watch");

export interface WatchEvent {
  readonly name: string;
  readonly ok: boolean;
  readonly result?: ReloadResult;
  readonly error?: string;
}

export interface FilterWatcher {
  close(): void;
}

export function watchFilters(
  host: FilterHost,
  opts: { debounceMs?: number; onEvent?: (e: WatchEvent) => void } = {},
): FilterWatcher {
  const watchers: FSWatcher[] = [];
  const timers = new Map<string, ReturnType<typeof setTimeout>>();
  const busy = new Set<string>();
  const schedule = (name: string, rebuildDir: string | undefined): void => {
    clearTimeout(timers.get(name));
    timers.set(
      name,
      setTimeout(() => {
        timers.delete(name);
        void run(name, rebuildDir);
      }, opts.debounceMs ?? 100),
    );
  };
  const run = async (name: string, rebuildDir: string | undefined): Promise<void> => {
    if (busy.has(name)) return schedule(name, rebuildDir);
    busy.add(name);
    try {
      // --dev rebuilds scaffolded plugins from source: the builder loads only then.
      if (rebuildDir) await (await import("./plugin_build.ts")).buildPlugin(rebuildDir);
      const result = await host.reload(name, { force: false });
      opts.onEvent?.({ name, ok: true, result });
    } catch (e) {
      log.warn("hot reload rejected", { filter: name, err: errorMessage(e) });
      opts.onEvent?.({ name, ok: false, error: errorMessage(e) });
    } finally {
      busy.delete(name);
    }
  };
  for (const name of host.names()) {
    const url = host.byName(name)[0]?.ref.url;
    const path = url ? localPath(url) : undefined;
    if (!path || !existsSync(path)) continue;
    const wasmDir = dirname(path);
    const file = basename(path);
    watchers.push(watch(wasmDir, (_ev, f) => {
      if (f === file) schedule(name, undefined);
    }));
    const srcDir = dirname(wasmDir);
    if (basename(wasmDir) === "build" && existsSync(join(srcDir, "plugin.json"))) {
      watchers.push(watch(srcDir, (_ev, f) => {
        if (f && /\.(c|h|js|ts|json)$/.test(f)) schedule(name, srcDir);
      }));
    }
  }
  return {
    close(): void {
      for (const w of watchers) w.close();
      for (const t of timers.values()) clearTimeout(t);
      timers.clear();
    },
  };
}
