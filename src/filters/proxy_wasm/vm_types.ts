/** Types shared by the VM and the host functions (kept apart so vm.ts stays about the VM). */
import type {
  FilterFailureKind,
  FilterOutcome,
  HeaderMap,
  HttpRequestContext,
  HttpResponseContext,
  LocalResponse,
  Logger,
} from "../../core/mod.ts";
import type { AbiVersion } from "./abi.ts";
import type { FunctionImport } from "./module_info.ts";
import type { PluginSettings } from "./options.ts";
import type { ProxyWasmVm } from "./vm.ts";

export type Callback =
  | "none"
  | "start"
  | "vm_start"
  | "configure"
  | "request_headers"
  | "request_body"
  | "response_headers"
  | "response_body"
  | "request_trailers"
  | "response_trailers"
  | "done"
  | "log"
  | "root";

export interface StreamState {
  readonly id: number;
  readonly vm: ProxyWasmVm;
  readonly req: HttpRequestContext;
  res: HttpResponseContext | undefined;
  /** The trailers being shown to the guest (set during its trailers callback only). */
  requestTrailers: HeaderMap | undefined;
  responseTrailers: HeaderMap | undefined;
  /** Streamed bodies: what the guest holds (StopIterationAndBuffer) plus the chunk it is being
   * shown: HTTP_REQUEST_BODY / HTTP_RESPONSE_BODY while set. */
  requestHeld: Uint8Array | undefined;
  responseHeld: Uint8Array | undefined;
  /** Stream start, ms since the epoch (request.time). */
  readonly startMs: number;
  local: LocalResponse | undefined;
  /** Set while the stream is paused: settles the phase's pending outcome. */
  resume: ((o: FilterOutcome) => void) | undefined;
  pausedOn: "request" | "response" | undefined;
  awaitingDone: boolean;
  /** `proxy_http_call`s started from this stream's callbacks and not answered yet. */
  calloutsInFlight: number;
  /** Why the last callout of this stream failed (a PAUSE with nothing in flight then fails). */
  calloutError: string | undefined;
}

/** A guest failure: the VM is dead after it. */
export class GuestFailure extends Error {
  constructor(readonly kind: FilterFailureKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** proc_exit(0) during `_start`: the end of a command module's start, not a failure. */
export class StartExit extends Error {}

export interface CompiledPlugin {
  readonly module: WebAssembly.Module;
  readonly abi: AbiVersion;
  readonly imports: readonly FunctionImport[];
  readonly settings: PluginSettings;
  readonly log: Logger;
  /** Told the imports weft stubs, before each VM is instantiated. */
  readonly onImports?: (unimplemented: readonly string[], generation: number) => void;
}
