/**
 * Resources the control plane builds by the ten thousand, written field by field with one
 * reused writer: LbEndpoints, ClusterLoadAssignments, EDS Clusters and Istio Address
 * workloads. protobuf-es spends most of its time on Struct metadata and on a fresh growing buffer
 * per message; these encoders cost a fraction. Each is equality-tested against protobuf-es
 * (build_wire_test.ts).
 */
import type { Any } from "@bufbuild/protobuf/wkt";
import { parseIp } from "../../core/mod.ts";
import type { GatewayAddress } from "../../core/mod.ts";
import type { Mesh, MeshWorkload } from "./mesh.ts";

const LEN = 2;
const VARINT = 0;
const utf8 = new TextEncoder();

/** Messages are written into shared slabs of this size and handed out as views of them: one
 * allocation per ~500 resources instead of several per resource. A slab lives as long as one of
 * its messages does (at most this much per live resource, ~6 MB for a 10 000-workload mesh). */
const SLAB_BYTES = 256 * 1024;

/** The few protobuf writes these encoders need. Unlike protobuf-es's BinaryWriter (a fresh buffer
 * grown by doubling per message, every string through TextEncoder), messages share slabs and
 * ASCII strings are copied by a loop. Length prefixes are reserved as one byte and widened on
 * join, as protobuf-es does. */
class Writer {
  private buf = new Uint8Array(SLAB_BYTES);
  /** Where the message being written starts in `buf`. */
  private start = 0;
  private pos = 0;
  private readonly forks: number[] = [];

  /** Makes room for `n` more bytes: a message outgrowing the slab moves to a new one. */
  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const used = this.pos - this.start;
    let len = SLAB_BYTES;
    while (len < 2 * (used + n)) len *= 2;
    const next = new Uint8Array(len);
    next.set(this.buf.subarray(this.start, this.pos));
    for (let i = 0; i < this.forks.length; i++) this.forks[i]! -= this.start;
    this.buf = next;
    this.pos = used;
    this.start = 0;
  }

  varint(v: number): this {
    this.room(5);
    while (v > 0x7f) {
      this.buf[this.pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.buf[this.pos++] = v;
    return this;
  }

  tag(field: number, wireType: number): this {
    return this.varint((field << 3) | wireType);
  }

  string(s: string): this {
    const n = s.length;
    this.room(n + 5);
    const start = this.pos;
    this.varint(n);
    const at = this.pos;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c > 0x7f) {
        this.pos = start;
        return this.bytes(utf8.encode(s));
      }
      this.buf[at + i] = c;
    }
    this.pos = at + n;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.varint(b.length);
    this.room(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }

  fork(): this {
    this.room(1);
    this.forks.push(this.pos);
    this.buf[this.pos++] = 0;
    return this;
  }

  join(): this {
    const at = this.forks.pop()!;
    const len = this.pos - at - 1;
    if (len < 0x80) {
      this.buf[at] = len;
      return this;
    }
    let size = 1;
    for (let v = len; v > 0x7f; v >>>= 7) size++;
    this.room(size - 1);
    this.buf.copyWithin(at + size, at + 1, this.pos);
    const end = this.pos + size - 1;
    this.pos = at;
    this.varint(len);
    this.pos = end;
    return this;
  }

  finish(): Uint8Array {
    const out = this.buf.subarray(this.start, this.pos);
    this.start = this.pos;
    this.forks.length = 0;
    return out;
  }
}

/** One writer for every hand-written message; encoders never nest. */
const writer = new Writer();

/** An Any without protobuf-es's `create` (a plain object is a valid protobuf-es message). */
export function anyOf(typeUrl: string, value: Uint8Array): Any {
  return { $typeName: "google.protobuf.Any", typeUrl, value };
}

/** Resource versions are content hashes (a restarted control plane gives unchanged resources
 * their old versions). FNV-1a in four interleaved lanes, folded and finalised with MurmurHash3's
 * fmix32: one lane's multiply chain limits plain FNV-1a to a byte per multiply latency, and
 * 10 000 workloads are ~8 MB of resources. */
export function fnv(bytes: Uint8Array): string {
  const P = 0x01000193;
  let a = 0x811c9dc5, b = 0x050c5d1f, c = 0x1b873593, d = 0x2f1e4b7a;
  const n = bytes.length;
  let i = 0;
  for (; i + 3 < n; i += 4) {
    a = Math.imul(a ^ bytes[i]!, P);
    b = Math.imul(b ^ bytes[i + 1]!, P);
    c = Math.imul(c ^ bytes[i + 2]!, P);
    d = Math.imul(d ^ bytes[i + 3]!, P);
  }
  for (; i < n; i++) a = Math.imul(a ^ bytes[i]!, P);
  let h = Math.imul(Math.imul(Math.imul(a ^ b, P) ^ c, P) ^ d, P) ^ n;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0).toString(16).padStart(8, "0");
}

/** Dotted-quad IPv4 without a regex or intermediate strings; anything else through parseIp. */
export function ipBytes(ip: string): Uint8Array {
  const out = new Uint8Array(4);
  let part = 0, n = 0, digits = 0;
  for (let i = 0; i < ip.length; i++) {
    const c = ip.charCodeAt(i);
    if (c >= 48 && c <= 57 && digits < 3) {
      n = n * 10 + c - 48;
      digits++;
    } else if (c === 46 && digits > 0 && part < 3 && n <= 255) {
      out[part++] = n;
      n = 0;
      digits = 0;
    } else return parseIp(ip)?.bytes ?? new Uint8Array();
  }
  if (part !== 3 || digits === 0 || n > 255) return parseIp(ip)?.bytes ?? new Uint8Array();
  out[3] = n;
  return out;
}

/** google.protobuf.Struct{fields = 1: map<string, Value{string_value = 3, struct_value = 5}>}
 * of string leaves and nested string maps. */
function writeStruct(
  wr: Writer,
  o: Readonly<Record<string, string | Record<string, string>>>,
) {
  for (const k of Object.keys(o)) {
    const v = o[k]!;
    wr.tag(1, LEN).fork();
    wr.tag(1, LEN).string(k);
    wr.tag(2, LEN).fork();
    if (typeof v === "string") wr.tag(3, LEN).string(v);
    else {
      wr.tag(5, LEN).fork();
      writeStruct(wr, v);
      wr.join();
    }
    wr.join();
    wr.join();
  }
}

/** Metadata{filter_metadata = 1: map<string, Struct>} with the one key "weft". */
function writeWeftMetadata(
  wr: Writer,
  field: number,
  o: Readonly<Record<string, string | Record<string, string>>>,
): void {
  wr.tag(field, LEN).fork();
  wr.tag(1, LEN).fork();
  wr.tag(1, LEN).string("weft");
  wr.tag(2, LEN).fork();
  writeStruct(wr, o);
  wr.join().join().join();
}

/** LbEndpoint{endpoint = 1: Endpoint{address = 1: Address{socket_address = 1:
 * SocketAddress{address = 2, port_value = 3}}}, metadata = 3}. */
export function lbEndpointBytes(mesh: Mesh, w: MeshWorkload, targetPort: number): Uint8Array {
  const wr = writer;
  wr.tag(1, LEN).fork(); // endpoint
  wr.tag(1, LEN).fork(); // address
  wr.tag(1, LEN).fork(); // socket_address
  wr.tag(2, LEN).string(w.address);
  wr.tag(3, VARINT).varint(targetPort);
  wr.join().join().join();
  writeWeftMetadata(wr, 3, {
    workload: w.name,
    namespace: w.namespace,
    node: w.node,
    ...(w.hbone ? { hbone: `${w.address}:${mesh.hbonePort}` } : {}),
    identity: w.identity,
    labels: w.labels,
    ...(w.network ? { network: w.network } : {}),
    ...(w.networkGateway ? { networkGateway: gatewayMeta(w.networkGateway) } : {}),
  });
  return wr.finish();
}

/** A network gateway as EDS endpoint metadata (string fields; read back by
 * src/xds/resources/endpoint.ts). */
function gatewayMeta(g: GatewayAddress): Record<string, string> {
  const d = g.destination;
  const port = String(g.hboneMtlsPort);
  return d.kind === "address"
    ? { network: d.network, ip: d.ip, port }
    : { namespace: d.namespace, hostname: d.hostname, port };
}

/** ClusterLoadAssignment{cluster_name = 1, endpoints = 2: LocalityLbEndpoints{locality = 1 (empty:
 * gRPC clients skip localities without a weight), lb_endpoints = 2, load_balancing_weight = 3}}
 * from already-encoded LbEndpoints. */
export function assignmentBytes(name: string, endpoints: readonly Uint8Array[]): Uint8Array {
  const wr = writer;
  wr.tag(1, LEN).string(name);
  wr.tag(2, LEN).fork();
  wr.tag(1, LEN).bytes(new Uint8Array());
  for (const e of endpoints) wr.tag(2, LEN).bytes(e);
  wr.tag(3, LEN).fork().tag(1, VARINT).varint(1).join();
  wr.join();
  return wr.finish();
}

/** Cluster{name = 1, type = 2 (EDS = 3), eds_cluster_config = 3: {eds_config = 1:
 * ConfigSource{ads = 3: {}}}, metadata = 25: weft{hostname, subset, labels}}. */
export function edsClusterBytes(
  name: string,
  hostname: string,
  subset: string,
  labels: Readonly<Record<string, string>>,
): Uint8Array {
  const wr = writer;
  wr.tag(1, LEN).string(name);
  wr.tag(2, VARINT).varint(3);
  wr.tag(3, LEN).fork().tag(1, LEN).fork().tag(3, LEN).bytes(new Uint8Array()).join().join();
  writeWeftMetadata(wr, 25, { hostname, subset, labels });
  return wr.finish();
}

export type PortLists = Record<
  string,
  { ports: { servicePort: number; targetPort: number }[] }
>;

export function workloadUid(mesh: Mesh, w: MeshWorkload): string {
  return `${mesh.trustDomain}//Pod/${w.namespace}/${w.name}`;
}

/** istio.workload.Address{workload = 1: Workload}: name 1, namespace 2, addresses 3, network 4,
 * tunnel_protocol 5, trust_domain 6, service_account 7, node 9, canonical_name 10,
 * canonical_revision 11, workload_name 13, authorization_policies 16, network_gateway 19, uid 20,
 * services 22
 * (map<string, PortList{ports 1: Port{service_port 1, target_port 2}}>). Proto3 defaults are left
 * out, as protobuf-es does. */
export function workloadAddressBytes(
  mesh: Mesh,
  w: MeshWorkload,
  services: PortLists,
  policies: readonly string[],
): Uint8Array {
  const wr = writer;
  const str = (field: number, v: string): void => {
    if (v !== "") wr.tag(field, LEN).string(v);
  };
  wr.tag(1, LEN).fork();
  str(1, w.name);
  str(2, w.namespace);
  wr.tag(3, LEN).bytes(ipBytes(w.address));
  str(4, w.network ?? "");
  if (w.hbone) wr.tag(5, VARINT).varint(1); // HBONE
  str(6, mesh.trustDomain);
  str(7, w.serviceAccount);
  str(9, w.node);
  str(10, w.labels["app"] ?? w.name);
  str(11, w.labels["version"] ?? "");
  str(13, w.name);
  for (const p of policies) wr.tag(16, LEN).string(p);
  const gw = w.networkGateway;
  if (gw) {
    // GatewayAddress{hostname 1: NamespacedHostname{namespace 1, hostname 2} | address 2:
    // NetworkAddress{network 1, address 2}, hbone_mtls_port 3}
    const d = gw.destination;
    wr.tag(19, LEN).fork();
    if (d.kind === "hostname") {
      wr.tag(1, LEN).fork();
      str(1, d.namespace);
      str(2, d.hostname);
      wr.join();
    } else {
      wr.tag(2, LEN).fork();
      str(1, d.network);
      wr.tag(2, LEN).bytes(ipBytes(d.ip));
      wr.join();
    }
    wr.tag(3, VARINT).varint(gw.hboneMtlsPort);
    wr.join();
  }
  str(20, workloadUid(mesh, w));
  for (const k of Object.keys(services)) {
    wr.tag(22, LEN).fork();
    wr.tag(1, LEN).string(k);
    wr.tag(2, LEN).fork();
    for (const port of services[k]!.ports) {
      wr.tag(1, LEN).fork();
      if (port.servicePort) wr.tag(1, VARINT).varint(port.servicePort);
      if (port.targetPort) wr.tag(2, VARINT).varint(port.targetPort);
      wr.join();
    }
    wr.join();
    wr.join();
  }
  wr.join();
  return wr.finish();
}
