/** weft's one error type: a stable `code` (safe as a metric label), a message of the form
 * "Cannot <action>: <reason>", an optional hint when the fix is known, and the cause. */
export class WeftError extends Error {
  readonly code: string;
  readonly hint: string | undefined;

  constructor(code: string, message: string, options: { cause?: unknown; hint?: string } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "WeftError";
    this.code = code;
    this.hint = options.hint;
  }

  /** Message plus hint, for one-line reports to a person. */
  describe(): string {
    return this.hint ? `${this.message} (hint: ${this.hint})` : this.message;
  }
}

/** Narrow an unknown thrown value to a message without losing WeftError's code. */
export function errorCode(err: unknown): string {
  if (err instanceof WeftError) return err.code;
  if (err && typeof err === "object" && "code" in err && typeof err.code === "string") {
    return err.code;
  }
  return "unknown";
}

export function errorMessage(err: unknown): string {
  if (err instanceof WeftError) return err.describe();
  if (err instanceof Error) return err.message;
  return String(err);
}

/** A broken invariant is a bug: fail loudly. */
export function assert(cond: unknown, what: string): asserts cond {
  if (!cond) throw new WeftError("invariant", `Cannot continue: invariant broken: ${what}`);
}
