/**
 * The admin app (15000, localhost), on hono, served by plain_http_server.ts as the metrics (15020)
 * and readiness (15021) routes are. They read state through `AdminSource`; nothing here touches
 * the data path directly.
 */
import { Hono } from "hono";
import {
  isLogLevel,
  logger,
  logLevels,
  metrics,
  resetLogLevels,
  setLogLevel,
} from "../core/mod.ts";
import type { HttpServerHandle, LogLevel } from "../core/mod.ts";
import { dashboardHtml } from "./dashboard.ts";
import { fetchHandler, servePlainHttp } from "./plain_http_server.ts";
import { adminRefusal, refuseAdmin } from "./admin_guard.ts";
import type { BoundAddress } from "./admin_guard.ts";

export interface Readiness {
  readonly ready: boolean;
  readonly waitingFor: readonly string[];
}

export interface AdminSource {
  configDump(): Record<string, unknown>;
  readiness(): Readiness;
  /** Graceful shutdown (drain then exit 0). */
  quit(reason: string): void;
  /** Reload a filter by name (hot reload); resolves with a summary or rejects. */
  reloadFilter(name: string): Promise<Record<string, unknown>>;
}

const log = logger("admin");

/** `bound` gives the address the admin server is bound to (known once it listens); every
 * request is checked against it (admin_guard.ts: Host, custom header, Origin). */
export function adminApp(src: AdminSource, bound: () => BoundAddress | undefined): Hono {
  const app = new Hono();
  app.use("*", async (c, next) => {
    const refusal = adminRefusal(c.req.raw, bound());
    if (refusal) return refuseAdmin(c.req.raw, ...refusal);
    await next();
  });
  app.get("/", (c) => c.html(dashboardHtml(src.configDump(), src.readiness())));
  app.get("/config_dump", (c) => c.json(src.configDump()));
  app.post("/logging", (c) => {
    const q = c.req.query();
    if ("reset" in q) resetLogLevels();
    const level = q.level;
    if (level !== undefined) {
      for (const part of level.split(",")) {
        const [a, b] = part.includes(":") ? part.split(":") as [string, string] : [undefined, part];
        if (!isLogLevel(b)) return c.text(`Cannot set log level: unknown level "${b}"\n`, 400);
        setLogLevel(b as LogLevel, a);
      }
      log.info("log levels changed", { level });
    }
    return c.json(logLevels());
  });
  app.on(["GET", "PUT", "DELETE"], "/logging", (c) => c.text("use POST\n", 405));
  app.post("/quitquitquit", (c) => {
    src.quit("admin /quitquitquit");
    return c.text("OK\n");
  });
  app.post("/reload", async (c) => {
    const name = c.req.query("filter");
    if (!name) return c.text("Cannot reload: missing ?filter=<name>\n", 400);
    try {
      return c.json(await src.reloadFilter(name));
    } catch (err) {
      return c.json({ error: (err as Error).message }, 409);
    }
  });
  return app;
}

const handlerFailures = metrics.counter(
  "weft_admin_handler_failures_total",
  "Admin/metrics/readiness requests whose handling threw (answered 500)",
  [],
);

/** A request the handler (or hono itself) throws on is answered 500 and logged here, never left
 * to the runtime, which prints the stack to stderr (Bun.serve, Deno.serve): a peer's bytes must
 * not make the node write stack traces (found by bench/fuzz.ts: an empty Host on Bun). */
export function guardedFetch(
  fetch: (req: Request) => Response | Promise<Response>,
): (req: Request) => Promise<Response> {
  return async (req) => {
    try {
      return await fetch(req);
    } catch (err) {
      handlerFailures.inc({});
      log.warn("admin request failed", {
        method: req.method,
        error: err instanceof Error ? err.message : String(err),
      });
      return new Response("Cannot serve the request: internal error\n", { status: 500 });
    }
  };
}

/** Serve `app` on `address` (host:port) with plain_http_server.ts; resolves once bound. */
export function serveOn(address: string, app: Hono): Promise<HttpServerHandle> {
  return servePlainHttp(address, fetchHandler(guardedFetch(app.fetch)));
}
