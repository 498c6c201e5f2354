/** The per-generation sandbox settings of a component filter and their defaults. */
export interface SandboxOptions {
  /** Wall-clock budget of one hook call. */
  readonly callBudgetMs: number;
  readonly maxMemoryBytes: number;
  /** Idle instances kept per generation. */
  readonly poolMax: number;
  /** Traps within `crashWindowMs` that put the filter into backoff. */
  readonly crashLoopLimit: number;
  readonly crashWindowMs: number;
  /** First backoff; doubles per consecutive crash loop up to 30 s (Envoy FAIL_RELOAD: 1 s). */
  readonly backoffBaseMs: number;
}

export const DEFAULT_SANDBOX: SandboxOptions = Object.freeze({
  callBudgetMs: 50,
  maxMemoryBytes: 64 * 1024 * 1024,
  poolMax: 4,
  crashLoopLimit: 5,
  crashWindowMs: 10_000,
  backoffBaseMs: 1_000,
});

/** Power of two. */
export const LATENCY_SAMPLE_EVERY = 8;
