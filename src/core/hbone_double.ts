/**
 * Double HBONE (hbone.md §9, ztunnel's `proxy_to_double_hbone`): inside an upgraded CONNECT
 * stream to an east-west gateway, a second mTLS handshake end to end with the destination node
 * (verifying the final identities), then a second HTTP/2 connection, not pooled (a pooled one
 * would pin every later tunnel to the one endpoint the gateway picked first), whose CONNECT adds
 * `x-forwarded-network`. The gateway relays the inner tunnel's TLS records without reading them.
 */
import type { Duplex } from "node:stream";
import type { IdentityProvider } from "./transport.ts";
import { type ConnectRequest, dialHbone, openConnect } from "./hbone_client.ts";
import type { H2Session } from "./h2/mod.ts";

export interface InnerTunnel {
  readonly srcIdentity: string;
  /** ztunnel's `final_sans`: the identities the destination may present (none = refused). */
  readonly finalSans: readonly string[];
  /** The gateway's address, for error messages. */
  readonly via: string;
}

const SESSION = Symbol("weft.innerSession");
type InnerStream = Duplex & { [SESSION]?: H2Session };

/** The inner session ends with its one stream (no closure per tunnel: the stream names it). */
function closeSession(this: Duplex): void {
  const s = (this as InnerStream)[SESSION];
  if (s) s.close().catch(() => {});
}

/** Open the inner tunnel over `outer` (an upgraded CONNECT stream to the gateway); `req` is the
 * inner CONNECT (its `network` becomes `x-forwarded-network`). Destroys `outer` on failure. */
export async function openInnerTunnel(
  identity: IdentityProvider,
  outer: Duplex,
  inner: InnerTunnel,
  req: ConnectRequest,
  connectMs: number,
): Promise<Duplex> {
  let session: H2Session;
  try {
    session = await dialHbone(identity, {
      srcIdentity: inner.srcIdentity,
      srcIp: undefined,
      dstIdentity: inner.finalSans[0] ?? "",
      dstSans: inner.finalSans.slice(1),
      hboneAddr: inner.via,
      // node:tls over the outer stream (a Duplex): the handshake runs end to end through the
      // gateway.
      connect: () => Promise.resolve(outer),
    }, connectMs);
  } catch (e) {
    outer.destroy();
    throw e;
  }
  let stream: Duplex;
  try {
    stream = await openConnect(session, req, connectMs);
  } catch (e) {
    session.destroy();
    throw e;
  }
  (stream as InnerStream)[SESSION] = session;
  stream.once("close", closeSession);
  return stream;
}
