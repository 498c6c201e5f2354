/**
 * The only writer to stdout/stderr: one JSON object per line, a constant `msg`, data in fields.
 * Levels are global with per-scope overrides (`/logging?level=xds:debug`); debug tracers are
 * enabled by name with WEFT_TRACE=xds,tls.
 */
import { env } from "./runtime.ts";

export type LogLevel = "trace" | "debug" | "info" | "warn" | "error" | "off";
const ORDER: Record<LogLevel, number> = {
  trace: 0,
  debug: 1,
  info: 2,
  warn: 3,
  error: 4,
  off: 5,
};
export const LOG_LEVELS: readonly LogLevel[] = Object.keys(ORDER) as LogLevel[];

export function isLogLevel(v: unknown): v is LogLevel {
  return typeof v === "string" && v in ORDER;
}

interface LogState {
  level: LogLevel;
  scopes: Map<string, LogLevel>;
  traces: Set<string>;
  sink: (line: string, level: LogLevel) => void;
}

const encoder = new TextEncoder();
const state: LogState = {
  level: isLogLevel(env("WEFT_LOG")) ? env("WEFT_LOG") as LogLevel : "info",
  scopes: new Map(),
  traces: new Set((env("WEFT_TRACE") ?? "").split(",").map((s) => s.trim()).filter(Boolean)),
  sink: (line, level) => {
    const bytes = encoder.encode(line + "\n");
    // deno-lint-ignore no-explicit-any
    const d = (globalThis as any).Deno;
    if (d) (level === "error" || level === "warn" ? d.stderr : d.stdout).writeSync(bytes);
    // deno-lint-ignore no-explicit-any
    else (globalThis as any).process?.stdout.write(bytes);
  },
};

export function setLogLevel(level: LogLevel, scope?: string): void {
  if (scope) state.scopes.set(scope, level);
  else state.level = level;
}

export function resetLogLevels(): void {
  state.scopes.clear();
  state.level = "info";
}

export function logLevels(): { level: LogLevel; scopes: Record<string, LogLevel> } {
  return { level: state.level, scopes: Object.fromEntries(state.scopes) };
}

/** Replace the sink (tests capture lines; nothing else should). */
export function setLogSink(sink: (line: string, level: LogLevel) => void): () => void {
  const old = state.sink;
  state.sink = sink;
  return () => {
    state.sink = old;
  };
}

export type Fields = Record<string, unknown>;

export class Logger {
  constructor(readonly scope: string) {}

  enabled(level: LogLevel): boolean {
    if (level === "debug" && state.traces.has(this.scope)) return true;
    const min = state.scopes.get(this.scope) ?? state.level;
    return ORDER[level] >= ORDER[min];
  }

  log(level: LogLevel, msg: string, fields?: Fields): void {
    if (!this.enabled(level)) return;
    const ts = new Date().toISOString();
    const rec = { ts, level, scope: this.scope, msg, ...fields };
    // A field named like the record's own keys never replaces them (it would hide the logger's
    // scope from `/logging` users and log filters).
    if (
      fields !== undefined &&
      ("ts" in fields || "level" in fields || "scope" in fields || "msg" in fields)
    ) {
      rec.ts = ts;
      rec.level = level;
      rec.scope = this.scope;
      rec.msg = msg;
    }
    state.sink(JSON.stringify(rec, replacer), level);
  }
  trace(msg: string, fields?: Fields): void {
    this.log("trace", msg, fields);
  }
  debug(msg: string, fields?: Fields): void {
    this.log("debug", msg, fields);
  }
  info(msg: string, fields?: Fields): void {
    this.log("info", msg, fields);
  }
  warn(msg: string, fields?: Fields): void {
    this.log("warn", msg, fields);
  }
  error(msg: string, fields?: Fields): void {
    this.log("error", msg, fields);
  }
}

function replacer(_k: string, v: unknown): unknown {
  if (typeof v === "bigint") return v.toString();
  if (v instanceof Error) {
    return { name: v.name, message: v.message, code: (v as { code?: unknown }).code };
  }
  return v;
}

const loggers = new Map<string, Logger>();
export function logger(scope: string): Logger {
  let l = loggers.get(scope);
  if (!l) loggers.set(scope, l = new Logger(scope));
  return l;
}

/** Plain text for a person at a terminal (CLI results, validation reports, demo tables). */
export function print(text: string, stream: "stdout" | "stderr" = "stdout"): void {
  const bytes = encoder.encode(text.endsWith("\n") ? text : text + "\n");
  // deno-lint-ignore no-explicit-any
  const g = globalThis as any;
  if (g.Deno) (stream === "stderr" ? g.Deno.stderr : g.Deno.stdout).writeSync(bytes);
  else g.process?.[stream].write(bytes);
}
