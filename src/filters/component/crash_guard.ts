/**
 * Reload-on-trap bookkeeping of one component filter generation: what a guest failure was (trap,
 * timeout, bad output, memory), and the crash-loop limit with doubling backoff (Envoy FAIL_RELOAD
 * starts at 1 s; here up to 30 s) during which calls answer `unavailable`.
 */
import type { FilterFailureKind } from "../../core/mod.ts";
import { logger } from "../../core/mod.ts";
import { BadOutput } from "./guest.ts";
import { CallTimeout } from "./host_bridge.ts";
import type { SandboxOptions } from "./sandbox_options.ts";

const log = logger("filters");

export class CrashGuard {
  private crashes: number[] = [];
  private backoffUntil = 0;
  private backoffMs: number;

  constructor(private readonly name: string, private readonly sandbox: SandboxOptions) {
    this.backoffMs = sandbox.backoffBaseMs;
  }

  /** True while the filter is backing off after a crash loop. */
  backingOff(): boolean {
    if (this.backoffUntil === 0) return false;
    if (performance.now() < this.backoffUntil) return true;
    this.backoffUntil = 0;
    return false;
  }

  /** Classifies a guest failure and counts it toward the crash loop. */
  onTrap(e: unknown, memoryBytes: number): FilterFailureKind {
    let kind: FilterFailureKind = "trap";
    if (e instanceof CallTimeout) kind = "timeout";
    else if (e instanceof BadOutput) kind = "bad_output";
    else if (memoryBytes + 1024 * 1024 >= this.sandbox.maxMemoryBytes) kind = "memory";
    const now = performance.now();
    this.crashes = this.crashes.filter((t) => now - t < this.sandbox.crashWindowMs);
    this.crashes.push(now);
    if (this.crashes.length >= this.sandbox.crashLoopLimit) {
      this.backoffUntil = now + this.backoffMs;
      log.warn("filter crash loop", { filter: this.name, backoffMs: this.backoffMs });
      this.backoffMs = Math.min(this.backoffMs * 2, 30_000);
      this.crashes = [];
    } else if (this.crashes.length === 1) {
      this.backoffMs = this.sandbox.backoffBaseMs;
    }
    return kind;
  }
}
