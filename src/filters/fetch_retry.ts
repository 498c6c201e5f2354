/**
 * Retries of module fetches that failed (Istio's fetch failure; istio#46033: no pull retry): one
 * pending retry per filter key, for the latest wanted ref, 1 s doubling to a minute apart.
 */
import type { FilterRef } from "../core/mod.ts";
import { errorCode } from "../core/mod.ts";

const BASE_MS = 1000;
const MAX_MS = 60_000;

/** A module that could not be fetched (or failed its sha256), as opposed to one that loaded and
 * was refused: only a ref with a url (a user WasmPlugin) has something to fetch. */
export function isFetchFailure(ref: FilterRef, e: unknown): boolean {
  const code = errorCode(e);
  return ref.url !== undefined && (code === "filter_fetch" || code === "filter_sha256");
}

export class FetchRetries {
  private readonly pending = new Map<
    string,
    { ref: FilterRef; timer: ReturnType<typeof setTimeout> }
  >();

  /** The ref a retry is pending for, if any. */
  pendingRef(key: string): FilterRef | undefined {
    return this.pending.get(key)?.ref;
  }

  /** Runs `attempt(n)` after the backoff for try `n`, replacing any retry pending for `key`. */
  schedule(key: string, ref: FilterRef, n: number, attempt: () => void): void {
    this.stop(key);
    const timer = setTimeout(() => {
      if (this.pending.get(key)?.timer !== timer) return;
      this.pending.delete(key);
      attempt();
    }, Math.min(BASE_MS * 2 ** n, MAX_MS));
    this.pending.set(key, { ref, timer });
  }

  stop(key: string): void {
    const p = this.pending.get(key);
    if (p) clearTimeout(p.timer);
    this.pending.delete(key);
  }

  stopAll(): void {
    for (const key of [...this.pending.keys()]) this.stop(key);
  }
}
