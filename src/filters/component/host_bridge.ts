/**
 * The host side of `weft:filter/host@0.1.0`, independent of how the guest is bound (direct
 * canonical ABI or jco bindings). One bridge per guest instance; `begin` points it at the request
 * a hook runs for. Calls are synchronous, so an instance never sees two requests at once.
 */
import type { HeaderMap, HttpRequestContext, HttpResponseContext } from "../../core/mod.ts";
import { logger, type LogLevel } from "../../core/mod.ts";
import { filterMetrics } from "../filter_metrics.ts";

const guestLog = logger("filter.guest");
const LEVELS: readonly LogLevel[] = ["trace", "debug", "info", "warn", "error"];
const STATE_PREFIX = "filter_state.";

/** 0 = request headers, 1 = response headers (the WIT enum order). */
export type WhichMap = 0 | 1;

/** Thrown by the sandbox check when a call overruns its budget. */
export class CallTimeout extends Error {
  constructor(readonly budgetMs: number) {
    super(`filter call exceeded its ${budgetMs} ms budget`);
  }
}

export class HostBridge {
  private req: HttpRequestContext | undefined;
  private res: HttpResponseContext | undefined;
  deadline = Infinity;
  budgetMs = 50;

  constructor(readonly filterName: string, private readonly fuel: number) {}

  /** `startMs`: performance.now() at call start; 0 = start the clock lazily at the first fuel
   * check (saves a clock read per call; the budget then starts at most one fuel period late,
   * i.e. after ~20k guest loop iterations/calls, microseconds). */
  begin(
    req: HttpRequestContext | undefined,
    res: HttpResponseContext | undefined,
    budgetMs: number,
    startMs: number = performance.now(),
  ): void {
    this.req = req;
    this.res = res;
    this.budgetMs = budgetMs;
    this.deadline = startMs === 0 ? 0 : startMs + budgetMs;
  }

  end(): void {
    this.req = undefined;
    this.res = undefined;
    this.deadline = Infinity;
  }

  /** The sandbox's `weft:sandbox.check`: trap past the deadline, else refill the fuel. */
  readonly check = (): number => {
    const now = performance.now();
    if (this.deadline === 0) this.deadline = now + this.budgetMs;
    else if (now > this.deadline) throw new CallTimeout(this.budgetMs);
    return this.fuel;
  };

  private map(which: WhichMap): HeaderMap | undefined {
    return which === 0 ? this.req?.requestHeaders : this.res?.responseHeaders;
  }

  getHeader(which: WhichMap, name: string): string | undefined {
    return this.map(which)?.get(name.toLowerCase());
  }
  setHeader(which: WhichMap, name: string, value: string): void {
    this.map(which)?.set(name.toLowerCase(), value);
  }
  addHeader(which: WhichMap, name: string, value: string): void {
    this.map(which)?.add(name.toLowerCase(), value);
  }
  removeHeader(which: WhichMap, name: string): void {
    this.map(which)?.remove(name.toLowerCase());
  }
  /** "name\0value\0" repeated. */
  getHeaders(which: WhichMap): string {
    const m = this.map(which);
    if (!m) return "";
    let out = "";
    for (const [k, v] of m.entries()) out += `${k}\0${v}\0`;
    return out;
  }

  getProperty(name: string): string | undefined {
    const req = this.req;
    if (name === "filter.name") return this.filterName;
    if (!req) return undefined;
    const p = req.peer;
    switch (name) {
      case "request.path":
        return req.path;
      case "request.url_path": {
        const q = req.path.indexOf("?");
        return q < 0 ? req.path : req.path.slice(0, q);
      }
      case "request.method":
        return req.method;
      case "request.host":
        return req.authority;
      case "request.scheme":
        return req.scheme;
      case "request.protocol":
        return req.protocol;
      case "request.id":
        return req.requestId;
      case "source.address":
        return p.sourceAddress;
      case "source.port":
        return String(p.sourcePort);
      case "source.principal":
        return p.sourcePrincipal;
      case "source.namespace":
        return p.sourceNamespace;
      case "destination.address":
        return p.destinationAddress;
      case "destination.port":
        return String(p.destinationPort);
      case "destination.service":
        return p.destinationService;
      case "destination.workload":
        return p.destinationWorkload;
      case "destination.namespace":
        return p.destinationNamespace;
      case "destination.principal":
        return p.destinationPrincipal;
      case "connection.mtls":
        return p.mtls ? "true" : "false";
      case "direction":
        return req.direction;
      case "response.code":
        return this.res ? String(this.res.status) : undefined;
    }
    if (name.startsWith(STATE_PREFIX)) {
      const v = req.filterState.get(name.slice(STATE_PREFIX.length));
      return typeof v === "string" ? v : undefined;
    }
    return undefined;
  }

  setState(key: string, value: string): void {
    this.req?.filterState.set(key, value);
  }

  log(level: number, message: string): void {
    const l = LEVELS[level] ?? "info";
    if (guestLog.enabled(l)) {
      guestLog.log(l, "filter log", {
        filter: this.filterName,
        message,
        requestId: this.req?.requestId,
      });
    }
  }

  counterAdd(name: string, delta: bigint): void {
    filterMetrics.guestCounter.inc({ filter: this.filterName, name }, Number(delta));
  }

  nowNs(): bigint {
    return BigInt(Date.now()) * 1_000_000n;
  }
  monotonicNs(): bigint {
    return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
  }
  randomU64(): bigint {
    const a = new BigUint64Array(1);
    crypto.getRandomValues(a);
    return a[0]!;
  }
}
