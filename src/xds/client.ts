/**
 * XdsClient: one ADS stream (Delta by default, SotW on request) to a control plane, applying
 * every response as one immutable Snapshot swap. While disconnected it keeps serving the last
 * snapshot and reconnects with exponential backoff plus jitter, resubscribing with what it
 * holds (xds.md §9). The stream runs on weft's own HTTP/2 (grpc_transport.ts): whatever the
 * control plane does to the connection (GOAWAY, reset, close, silence past the keepalive) ends
 * the stream with a status, never the process. The lead wires `onSnapshot` to NodeProxy.update.
 */
import type { GrpcCall, GrpcChannel, GrpcStatus, Snapshot } from "../core/mod.ts";
import { errorMessage, grpcCodeName, logger } from "../core/mod.ts";
import {
  ADS_DELTA_PATH,
  ADS_SOTW_PATH,
  bearer,
  controlPlaneChannel,
  MAX_MESSAGE_BYTES,
  type XdsTlsMaterial,
} from "./grpc_transport.ts";
import { AdsStreamProtocol, type Mode, type Outgoing, ProtocolState } from "./protocol.ts";
import {
  createNode,
  decodeDeltaDiscoveryResponse,
  decodeDiscoveryResponse,
  type DeltaDiscoveryRequest,
  type DeltaDiscoveryResponse,
  type DiscoveryRequest,
  type DiscoveryResponse,
  encodeDeltaDiscoveryRequest,
  encodeDiscoveryRequest,
} from "./node_proto.ts";
import {
  JWT_AUTHN_TYPE_NAME,
  loadFilterJson,
  TYPED_STRUCT_TYPE_NAMES,
} from "./resources/http_filters.ts";
import { TYPE_NAMES } from "./node_proto.ts";
import { xdsMessages, xdsNacks, xdsTerminations } from "./metrics.ts";
import { ResourceStore } from "./store.ts";
import { EXTENSION_CONFIG, LISTENER, ROUTE } from "./type_urls.ts";
import { type SnapshotBase, Translator } from "./translate.ts";
import { type BearerToken, currentToken } from "./token_file.ts";

const log = logger("xds");

export interface XdsClientOptions {
  /** "host:port" of the control plane (plaintext h2c on loopback, else `tls`). */
  readonly server: string;
  readonly mode?: Mode;
  /** Node id; Istio form `type~ip~id~domain` or weft's node name. */
  readonly nodeId: string;
  readonly nodeMetadata?: Record<string, string>;
  readonly base: SnapshotBase;
  /** How long a listener waits for its routes/clusters/endpoints/ECDS before serving without
   * them (Envoy's initial_fetch_timeout, default 15 s; 0 = forever). */
  readonly initialFetchTimeoutMs?: number;
  readonly initialBackoffMs?: number;
  /** TLS to the control plane: mTLS with a certificate, or server-only TLS with `token`
   * (plaintext when absent: loopback only). */
  readonly tls?: XdsTlsMaterial;
  /** Sent as `authorization: Bearer <token>` on each ADS stream; a function (tokenFromFile) is
   * asked again for every stream, so a rotated token file is picked up on the next reconnect. */
  readonly token?: BearerToken;
  /** With tls: the SPIFFE id the control plane must present. */
  readonly serverIdentity?: string;
  readonly maxBackoffMs?: number;
  /** Loads and registers (core's registerFilterConfigCheck) the checks of the HTTP filter
   * configs weft converts (RBAC, HTTPFault). Awaited once, before the first response that
   * carries such a config is decoded, so those checks still decide the ACK; a node whose
   * config has none never loads them (the app's checks reach the whole filter host). */
  readonly loadFilterChecks?: () => Promise<void>;
}

type Listener = (s: Snapshot) => void;

export class XdsClient {
  private readonly store = new ResourceStore();
  private readonly state = new ProtocolState(this.store);
  private readonly translator: Translator;
  private readonly listeners = new Set<Listener>();
  private channel: GrpcChannel | undefined;
  private call: GrpcCall | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private warmTimer: ReturnType<typeof setTimeout> | undefined;
  private ttlTimer: ReturnType<typeof setTimeout> | undefined;
  private attempt = 0;
  private seq = 0;
  private closed = false;
  private current: Snapshot | undefined;
  /** Responses wait here (in order) while the filter checks and JSON mapping load. */
  private gate: Promise<void> | undefined;
  private checksLoaded: boolean;
  private jsonLoaded = false;
  /** Every subscription was answered once on some stream. */
  synced = false;
  /** Streams opened so far (a reconnect increments it). */
  streams = 0;
  connected = false;

  constructor(private readonly opts: XdsClientOptions) {
    this.translator = new Translator(opts.base, opts.initialFetchTimeoutMs ?? 15_000);
    this.checksLoaded = opts.loadFilterChecks === undefined;
  }

  get snapshot(): Snapshot | undefined {
    return this.current;
  }

  onSnapshot(cb: Listener): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

  /** Resolves with the first snapshot taken after every subscribed type was answered once on a
   * stream (ztunnel's readiness rule); wire it to the readiness endpoint. */
  ready(): Promise<Snapshot> {
    return this.waitFor(() => this.synced);
  }

  /** Resolves with the first snapshot (current or future) for which `pred` holds. */
  waitFor(pred: (s: Snapshot) => boolean): Promise<Snapshot> {
    if (this.current && pred(this.current)) return Promise.resolve(this.current);
    return new Promise((resolve) => {
      const off = this.onSnapshot((s) => {
        if (!pred(s)) return;
        off();
        resolve(s);
      });
    });
  }

  start(): void {
    this.channel = controlPlaneChannel(this.opts.server, this.opts.tls, this.opts.serverIdentity);
    this.open();
  }

  close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    clearTimeout(this.warmTimer);
    clearTimeout(this.ttlTimer);
    this.call?.cancel("client closed");
    this.call = undefined;
    this.channel?.close();
    this.listeners.clear();
    return Promise.resolve();
  }

  private open(): void {
    if (this.closed || !this.channel) return;
    const mode = this.opts.mode ?? "delta";
    this.streams++;
    const node = createNode({
      id: this.opts.nodeId,
      cluster: this.opts.base.node.name,
      userAgentName: "weft",
      // Delta resources may carry a TTL (xds.md §12); SotW ones are not wrapped in Resource.
      clientFeatures: mode === "delta" ? ["xds.config.supports-resource-ttl"] : [],
      metadata: { NAME: this.opts.base.node.name, ...this.opts.nodeMetadata },
    });
    // Sends start with proto.start(), below, once the call exists.
    const proto = new AdsStreamProtocol(mode, node, this.state, (msg: Outgoing) => {
      c.send(
        mode === "delta"
          ? encodeDeltaDiscoveryRequest(msg as DeltaDiscoveryRequest)
          : encodeDiscoveryRequest(msg as DiscoveryRequest),
      );
    });
    const handle = (bytes: Uint8Array): void => {
      let res: DiscoveryResponse | DeltaDiscoveryResponse;
      try {
        res = mode === "delta"
          ? decodeDeltaDiscoveryResponse(bytes)
          : decodeDiscoveryResponse(bytes);
      } catch (err) {
        // Not a DiscoveryResponse at all: nothing to NACK against; drop this stream.
        log.warn("xds response undecodable", { error: errorMessage(err) });
        return c.cancel("undecodable response");
      }
      this.deliver(c, bytes, res, () => this.onResponse(c, proto, mode, res));
    };
    const c: GrpcCall = this.channel.call({
      path: mode === "delta" ? ADS_DELTA_PATH : ADS_SOTW_PATH,
      metadata: bearer(currentToken(this.opts.token)),
      maxMessageBytes: MAX_MESSAGE_BYTES,
    }, {
      onMessage: handle,
      onClose: (st) => this.ended(c, st),
    });
    this.call = c;
    proto.start();
  }

  /** Handle one response in stream order; the first one that names a checked filter type
   * (RBAC, HTTPFault) waits for the filter checks to load, the first one naming a TypedStruct for
   * protobuf-es's JSON mapping (and every later response behind them). */
  private deliver(
    call: GrpcCall,
    bytes: Uint8Array,
    res: { typeUrl: string },
    handle: () => void,
  ): void {
    const loads: (() => Promise<void>)[] = [];
    if (FILTER_CARRIERS.has(res.typeUrl)) {
      if (!this.checksLoaded && mentionsCheckedFilter(bytes)) {
        this.checksLoaded = true;
        loads.push(() => this.opts.loadFilterChecks!());
      }
      if (!this.jsonLoaded && mentionsAny(TYPED_STRUCT, bytes)) {
        this.jsonLoaded = true;
        loads.push(loadFilterJson);
      }
    }
    if (loads.length) {
      // Behind whatever already waits, so responses stay in stream order.
      this.gate = (this.gate ?? Promise.resolve()).then(() => Promise.all(loads.map((l) => l())))
        .then(
          () => {},
          (err) =>
            // A broken build, not bad input: the configs are still decoded (a TypedStruct is
            // NACKed without its JSON mapping); the filter host reports them when it loads them.
            log.error("xds filter checks failed to load", { error: errorMessage(err) }),
        );
    }
    if (!this.gate) return handle();
    const gate: Promise<void> = this.gate.then(() => {
      // A message of a stream that ended meanwhile is dropped; the next stream resubscribes.
      if (this.call === call && !this.closed) handle();
    }).catch((err) => log.error("xds response handling failed", { error: errorMessage(err) }))
      .finally(() => {
        if (this.gate === gate) this.gate = undefined;
      });
    this.gate = gate;
  }

  private onResponse(
    call: GrpcCall,
    proto: AdsStreamProtocol,
    mode: Mode,
    res: DiscoveryResponse | DeltaDiscoveryResponse,
  ): void {
    this.connected = true;
    this.attempt = 0;
    xdsMessages.inc({ url: res.typeUrl });
    try {
      const out = mode === "delta"
        ? proto.onDelta(res as DeltaDiscoveryResponse)
        : proto.onSotw(res as DiscoveryResponse);
      if (out.nack) {
        xdsNacks.inc({ url: res.typeUrl });
        log.warn("xds update rejected", { type: res.typeUrl, reason: out.nack });
      }
      const first = !this.synced && proto.synced;
      if (first) this.synced = true;
      if (out.changed || !this.current || first) this.emit();
      this.scheduleTtl();
    } catch (err) {
      // A bug, not bad input (that is NACKed): keep serving the last snapshot, start over.
      log.error("xds response handling failed", { type: res.typeUrl, error: errorMessage(err) });
      call.cancel("response handling failed");
    }
  }

  /** The stream is over (the control plane ended it, went away, or we cancelled it): keep the
   * last snapshot and reconnect after a back-off. */
  private ended(call: GrpcCall, st: GrpcStatus): void {
    this.connected = false;
    const reason = grpcCodeName(st.code);
    xdsTerminations.inc({ reason: st.code === 0 ? "END" : reason });
    log.info("xds stream ended", { reason, message: st.message, server: this.opts.server });
    if (this.call === call) this.call = undefined;
    this.schedule();
  }

  private schedule(): void {
    if (this.closed) return;
    const initial = this.opts.initialBackoffMs ?? 10;
    const max = this.opts.maxBackoffMs ?? 15_000;
    const base = Math.min(max, initial * 2 ** this.attempt++);
    const delay = base / 2 + Math.random() * base / 2;
    this.timer = setTimeout(() => this.open(), delay);
  }

  /** Resources with a TTL are removed when it runs out, connected or not (xds.md §12). */
  private scheduleTtl(): void {
    clearTimeout(this.ttlTimer);
    const at = this.state.nextExpiry();
    if (at === undefined || this.closed) return;
    this.ttlTimer = setTimeout(() => {
      if (this.state.expire()) this.emit();
      this.scheduleTtl();
    }, Math.max(0, at - performance.now()) + 1);
  }

  private emit(): void {
    const snap = this.translator.build(this.store, `xds-${++this.seq}`);
    this.current = snap;
    for (const cb of [...this.listeners]) cb(snap);
    clearTimeout(this.warmTimer);
    const deadline = this.translator.nextDeadline();
    if (deadline !== undefined && !this.closed) {
      this.warmTimer = setTimeout(() => this.emit(), Math.max(0, deadline - performance.now()) + 1);
    }
  }
}

/** The types whose resources carry HTTP filter configs (inline in an HCM, per route, ECDS). */
const FILTER_CARRIERS: ReadonlySet<string> = new Set([LISTENER, ROUTE, EXTENSION_CONFIG]);

/** Type names searched for in response bytes: inside an Any or a TypedStruct they appear verbatim,
 * so a byte search cannot miss one (a false match only loads early). Each is found from its first
 * capital (rarer in protobuf bytes than a lower-case letter), by the runtime's native TypedArray
 * search. CHECKED: the filter configs whose checks load lazily; TYPED_STRUCT: wrappers whose
 * contents need protobuf-es's JSON mapping. */
type Needles = readonly { bytes: Uint8Array; anchor: number }[];
const needles = (names: readonly string[]): Needles =>
  names.map((n) => ({ bytes: new TextEncoder().encode(n), anchor: n.search(/[A-Z]/) }));
const CHECKED = needles([
  TYPE_NAMES.rbac,
  TYPE_NAMES.fault,
  "envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
  JWT_AUTHN_TYPE_NAME,
]);
const TYPED_STRUCT = needles(TYPED_STRUCT_TYPE_NAMES);

export function mentionsCheckedFilter(hay: Uint8Array): boolean {
  return mentionsAny(CHECKED, hay);
}

function mentionsAny(names: Needles, hay: Uint8Array): boolean {
  return names.some(({ bytes, anchor }) => {
    const a = bytes[anchor]!;
    for (let i = hay.indexOf(a, anchor); i >= 0; i = hay.indexOf(a, i + 1)) {
      const start = i - anchor;
      if (start + bytes.length > hay.length) return false;
      let j = 0;
      while (j < bytes.length && hay[start + j] === bytes[j]) j++;
      if (j === bytes.length) return true;
    }
    return false;
  });
}
