/** What the filter host needs from one instantiated guest, however it is bound. */
import type { BodyDecision, BodyMode, FilterDecision } from "../../core/mod.ts";

export const WORLD_PACKAGE = "weft:filter@0.1.0";
export const HOST_IMPORT = "weft:filter/host@0.1.0";
export const HANDLER_EXPORT = "weft:filter/handler@0.1.0";
/** 0.2.0 adds body phases; the host interface is the same. */
export const HOST_IMPORT_V2 = "weft:filter/host@0.2.0";
export const HANDLER_EXPORT_V2 = "weft:filter/handler@0.2.0";
/** 0.3.0 adds trailers: two header-map cases and two hooks. */
export const HOST_IMPORT_V3 = "weft:filter/host@0.3.0";
export const HANDLER_EXPORT_V3 = "weft:filter/handler@0.3.0";

export type WorldVersion = "0.1.0" | "0.2.0" | "0.3.0";

/** What a trailers hook answers (0.3.0 `trailers-action`). */
export type TrailersDecision =
  | { readonly action: "continue" }
  | Extract<FilterDecision, { action: "respond" }>;

export interface BodyModes {
  readonly request: BodyMode;
  readonly response: BodyMode;
}
export const NO_BODIES: BodyModes = Object.freeze({ request: "none", response: "none" });
export const BODY_MODES: readonly BodyMode[] = ["none", "buffered", "streamed"];

export interface Guest {
  /** Returns the guest's error message, or undefined when the config was accepted. */
  configure(config: Uint8Array): string | undefined;
  /** What configure asked for (0.1.0 guests: no bodies). */
  readonly bodyModes: BodyModes;
  onRequestHeaders(): FilterDecision;
  onResponseHeaders(): FilterDecision;
  /** 0.2.0 only. */
  onRequestBody?(body: Uint8Array, endOfStream: boolean): BodyDecision;
  onResponseBody?(body: Uint8Array, endOfStream: boolean): BodyDecision;
  /** 0.3.0 only: the trailer map is the bridge's during the call. */
  onRequestTrailers?(): TrailersDecision;
  onResponseTrailers?(): TrailersDecision;
  /** Current linear-memory size of the main module (for memory-cap classification). */
  memoryBytes(): number;
}

/** The guest returned something the host cannot use (a bug in the filter, not a trap). */
export class BadOutput extends Error {}

const CONTINUE: FilterDecision = { action: "continue" };

export function continueDecision(): FilterDecision {
  return CONTINUE;
}

export function respondDecision(
  status: number,
  headers: [string, string][],
  body: Uint8Array,
  details: string,
): FilterDecision {
  if (!Number.isInteger(status) || status < 200 || status > 599) {
    throw new BadOutput(`local response status ${status} is not 200-599`);
  }
  return { action: "respond", response: { status, headers, body, details } };
}

export function delayDecision(ms: number): FilterDecision {
  return { action: "delay", delayMs: ms, then: CONTINUE };
}

export function routeDecision(service: string, subset: string | undefined): FilterDecision {
  if (service === "") throw new BadOutput("route with an empty service");
  return { action: "continue", route: { service, subset } };
}
