/**
 * XdsClient: one ADS stream (Delta by default, SotW on request) to a control plane, applying
 * every response as one immutable Snapshot swap. While disconnected it keeps serving the last
 * snapshot and reconnects with exponential backoff plus jitter, resubscribing with what it
 * holds (xds.md §9). The lead wires `onSnapshot` to NodeProxy.update.
 */
import * as grpc from "@grpc/grpc-js";
import type { Buffer } from "node:buffer";
import { create } from "@bufbuild/protobuf";
import type { Snapshot } from "../core/mod.ts";
import { errorMessage, logger } from "../core/mod.ts";
import {
  ADS_DELTA_PATH,
  ADS_SERVICE,
  ADS_SOTW_PATH,
  CHANNEL_OPTIONS,
  clientCredentials,
  TLS_CHANNEL_OPTIONS,
  type XdsTlsMaterial,
} from "./grpc_transport.ts";
import { AdsStreamProtocol, type Mode, type Outgoing, ProtocolState } from "./protocol.ts";
import { type DeltaDiscoveryResponse, type DiscoveryResponse, NodeSchema } from "./proto.ts";
import { xdsMessages, xdsNacks, xdsTerminations } from "./metrics.ts";
import { ResourceStore } from "./store.ts";
import { type SnapshotBase, Translator } from "./translate.ts";

const log = logger("xds");

export interface XdsClientOptions {
  /** "host:port" of the control plane (plaintext gRPC on loopback). */
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
  /** Sent as `authorization: Bearer <token>` on the ADS stream. */
  readonly token?: string;
  /** With tls: the SPIFFE id the control plane must present. */
  readonly serverIdentity?: string;
  readonly maxBackoffMs?: number;
}

type Listener = (s: Snapshot) => void;

export class XdsClient {
  private readonly store = new ResourceStore();
  private readonly state = new ProtocolState(this.store);
  private readonly translator: Translator;
  private readonly listeners = new Set<Listener>();
  private client: grpc.Client | undefined;
  private call:
    | grpc.ClientDuplexStream<Outgoing, DiscoveryResponse | DeltaDiscoveryResponse>
    | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private warmTimer: ReturnType<typeof setTimeout> | undefined;
  private attempt = 0;
  private seq = 0;
  private closed = false;
  private current: Snapshot | undefined;
  /** Every subscription was answered once on some stream. */
  synced = false;
  /** Streams opened so far (a reconnect increments it). */
  streams = 0;
  connected = false;

  constructor(private readonly opts: XdsClientOptions) {
    this.translator = new Translator(opts.base, opts.initialFetchTimeoutMs ?? 15_000);
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
    // The channel's own reconnect backoff follows ours, so a restarted server is seen promptly.
    const creds = clientCredentials(this.opts.tls, this.opts.serverIdentity);
    this.client = new grpc.Client(this.opts.server, creds, {
      ...CHANNEL_OPTIONS,
      ...(this.opts.tls ? TLS_CHANNEL_OPTIONS : {}),
      "grpc.initial_reconnect_backoff_ms": this.opts.initialBackoffMs ?? 10,
      "grpc.max_reconnect_backoff_ms": this.opts.maxBackoffMs ?? 15_000,
    });
    this.open();
  }

  close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    clearTimeout(this.warmTimer);
    this.call?.cancel();
    this.call = undefined;
    this.client?.close();
    this.listeners.clear();
    return Promise.resolve();
  }

  private open(): void {
    if (this.closed || !this.client) return;
    const mode = this.opts.mode ?? "delta";
    const m = mode === "delta"
      ? ADS_SERVICE.DeltaAggregatedResources
      : ADS_SERVICE.StreamAggregatedResources;
    const md = new grpc.Metadata();
    if (this.opts.token) md.set("authorization", `Bearer ${this.opts.token}`);
    const call = this.client.makeBidiStreamRequest(
      mode === "delta" ? ADS_DELTA_PATH : ADS_SOTW_PATH,
      m.requestSerialize as (v: Outgoing) => Buffer,
      m.responseDeserialize as (b: Buffer) => DiscoveryResponse | DeltaDiscoveryResponse,
      md,
    );
    this.call = call;
    this.streams++;
    const node = create(NodeSchema, {
      id: this.opts.nodeId,
      cluster: this.opts.base.node.name,
      userAgentName: "weft",
      metadata: { NAME: this.opts.base.node.name, ...this.opts.nodeMetadata },
    });
    const proto = new AdsStreamProtocol(mode, node, this.state, (msg) => call.write(msg));
    let ended = false;
    const end = (reason: string): void => {
      if (ended) return;
      ended = true;
      this.connected = false;
      xdsTerminations.inc({ reason });
      log.info("xds stream ended", { reason, server: this.opts.server });
      if (this.call === call) this.call = undefined;
      this.schedule();
    };
    call.on("data", (res: DiscoveryResponse | DeltaDiscoveryResponse) => {
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
      } catch (err) {
        // A bug, not bad input (that is NACKed): keep serving the last snapshot, start over.
        log.error("xds response handling failed", { type: res.typeUrl, error: errorMessage(err) });
        call.cancel();
      }
    });
    call.on("error", (err: grpc.ServiceError) => end(grpc.status[err.code] ?? "error"));
    call.on("end", () => end("END"));
    proto.start();
  }

  private schedule(): void {
    if (this.closed) return;
    const initial = this.opts.initialBackoffMs ?? 10;
    const max = this.opts.maxBackoffMs ?? 15_000;
    const base = Math.min(max, initial * 2 ** this.attempt++);
    const delay = base / 2 + Math.random() * base / 2;
    this.timer = setTimeout(() => this.open(), delay);
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
