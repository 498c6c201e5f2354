/**
 * The process-level guard: a promise rejection nobody handled or an exception thrown from an event
 * handler or timer is logged once (constant msg "unhandled error") and counted in
 * `weft_unhandled_errors_total{kind}` instead of ending the process. Every such event is a bug
 * (each async path must have an owner), so the integration test kit fails a test when a weft
 * process logs it. Runtime-specific: Deno dispatches `unhandledrejection`/`error` events on
 * globalThis (preventDefault keeps the process alive), Bun and Node emit process events.
 */
import { errorCode, errorMessage } from "./errors.ts";
import { logger } from "./log.ts";
import { metrics } from "./metrics.ts";

const log = logger("process");
const unhandled = metrics.counter(
  "weft_unhandled_errors_total",
  "Unhandled promise rejections and uncaught exceptions caught by the process guard (bugs)",
  ["kind"],
);

/** The log message the guard writes; tests look for it. */
export const UNHANDLED_ERROR_MSG = "unhandled error";

export type UnhandledKind = "rejection" | "exception";

/** Bun delivers a worker thread's top-level exception to the main thread's uncaughtException:
 * jco's WASI shim worker (preview2-shim worker-thread.bundle.js) calls process.binding("tcp_wrap")
 * at load, which Bun does not implement. The main thread is unaffected; it is counted and logged
 * at warn under its own kind and message, so it stays visible without failing every test. */
const WORKER_STACK = /worker-thread\.bundle\.js/;

/** Log and count one escaped error (exported so the guard's path is testable in-process). */
export function reportUnhandled(kind: UnhandledKind, err: unknown): void {
  const stack = err instanceof Error ? err.stack ?? "" : "";
  if (kind === "exception" && WORKER_STACK.test(stack)) {
    unhandled.inc({ kind: "worker" });
    log.warn("worker thread error", {
      code: errorCode(err),
      error: errorMessage(err),
      effect: "jco's WASI shim worker did not start on Bun; the process and its filters run on",
    });
    return;
  }
  unhandled.inc({ kind });
  log.error(UNHANDLED_ERROR_MSG, {
    kind,
    code: errorCode(err),
    error: errorMessage(err),
    stack: err instanceof Error ? err.stack?.split("\n").slice(0, 6).join(" | ") : undefined,
  });
}

let installed = false;

/** Install the guard once per process. */
export function installProcessGuard(): void {
  if (installed) return;
  installed = true;
  // deno-lint-ignore no-explicit-any
  const g = globalThis as any;
  if (g.Deno) {
    g.addEventListener("unhandledrejection", (e: PromiseRejectionEvent) => {
      e.preventDefault();
      reportUnhandled("rejection", e.reason);
    });
    g.addEventListener("error", (e: ErrorEvent) => {
      e.preventDefault();
      reportUnhandled("exception", e.error ?? e.message);
    });
    return;
  }
  g.process.on("unhandledRejection", (reason: unknown) => reportUnhandled("rejection", reason));
  g.process.on("uncaughtException", (err: unknown) => reportUnhandled("exception", err));
}
