/**
 * `clientAuth: "jwt"` over real gRPC and server TLS, with tokens signed the way kube-apiserver
 * signs them (tests/support/k8s_sa_tokens.ts: RS256 and ES256 keys, the bound-token claim set)
 * and verified by the real verifier the app wires in (src/app/sa_token_keys.ts, the jwt_authn
 * filter's): istiod's KubeJWTAuthenticator + NodeAuthorizer. A trusted node agent's token bound
 * to node-a gets node-a's workloads' certificates and no other node's; a workload's token gets
 * only its own; hostile tokens are refused UNAUTHENTICATED and counted; an ADS stream serves
 * the token's node whatever node.id claims; a rotated token file is picked up.
 */
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import { CertificateAuthority, createCsr } from "../../tls/mod.ts";
import { type GrpcChannel, GrpcCode, GrpcError } from "../../core/mod.ts";
import { saIssuerKeys, saTokenVerifier } from "../../app/sa_token_keys.ts";
import { meshManifestsFromYaml } from "../../../tests/support/istio_manifests.ts";
import {
  type BoundToken,
  K8S_ISSUER,
  SaTokenSigner,
} from "../../../tests/support/k8s_sa_tokens.ts";
import { BASE, compactMeshYaml } from "../_test_fixtures.ts";
import { XdsClient } from "../client.ts";
import { bearer, CA_PATH, controlPlaneChannel } from "../grpc_transport.ts";
import { IstioCertificateRequestSchema } from "../proto.ts";
import { tokenFromFile } from "../token_file.ts";
import { type ControlPlane, startControlPlane } from "./mod.ts";
import { authRefusals } from "./sa_token.ts";

const CP_ID = "spiffe://cluster.local/ns/istio-system/sa/weft-control-plane";
const ECHO = "spiffe://cluster.local/ns/default/sa/echo"; // echo-1 on node-a, echo-2 on node-b
const DB = "spiffe://cluster.local/ns/default/sa/default"; // db-1 on node-b only
const agent = (node?: string): BoundToken => ({
  namespace: "istio-system",
  serviceAccount: "weft-node",
  pod: "weft-node-x1",
  ...(node ? { node } : {}),
});
const workload = (sa: string): BoundToken => ({
  namespace: "default",
  serviceAccount: sa,
  pod: `${sa}-1`,
  node: "node-a",
});

interface Rig {
  readonly cp: ControlPlane;
  readonly ca: CertificateAuthority;
  readonly rsa: SaTokenSigner;
  readonly ec: SaTokenSigner;
  readonly dir: string;
  /** CreateCertificate for `identity` with `token`: null, or the gRPC error. */
  ask(token: string, identity: string, impersonated?: string): Promise<GrpcError | null>;
  close(): Promise<void>;
}

async function rig(): Promise<Rig> {
  const dir = await mkdtemp(join(tmpdir(), "weft-sa-"));
  const path = join(dir, "mesh.yaml");
  await writeFile(
    path,
    meshManifestsFromYaml(`nodeTokens: { node-b: ${STATIC_B_HASH} }\n${compactMeshYaml(10)}`),
  );
  const ca = await CertificateAuthority.generate();
  const leaf = await ca.issueLeaf(CP_ID);
  const rsa = SaTokenSigner.generate("RS256");
  const ec = SaTokenSigner.generate("ES256");
  // The cluster's JWKS holds both keys (an issuer mid-rotation, or one of each kind).
  const jwks = JSON.stringify({
    keys: [...JSON.parse(rsa.jwks()).keys, ...JSON.parse(ec.jwks()).keys],
  });
  const cp = await startControlPlane({
    configPath: path,
    address: "127.0.0.1:0",
    ca,
    tls: { rootsPem: ca.rootPem, certChainPem: leaf.chainPem, keyPem: leaf.keyPem },
    clientAuth: "jwt",
    serviceAccountTokens: {
      issuer: K8S_ISSUER,
      verify: saTokenVerifier(saIssuerKeys(jwks, "test")),
    },
  });
  const channels: GrpcChannel[] = [];
  return {
    cp,
    ca,
    rsa,
    ec,
    dir,
    async ask(token, identity, impersonated) {
      const c = controlPlaneChannel(cp.address, { rootsPem: ca.rootPem }, CP_ID);
      channels.push(c);
      const csr = (await createCsr(identity)).csrPem;
      const req = toBinary(
        IstioCertificateRequestSchema,
        create(IstioCertificateRequestSchema, {
          csr,
          validityDuration: 3600n,
          ...(impersonated ? { metadata: { ImpersonatedIdentity: impersonated } } : {}),
        }),
      );
      try {
        await c.unary({ path: CA_PATH, metadata: bearer(token), deadlineMs: 10_000 }, req);
        return null;
      } catch (err) {
        if (err instanceof GrpcError) return err;
        throw err;
      }
    },
    async close() {
      for (const c of channels) c.close();
      await cp.close();
      await rm(dir, { recursive: true });
    },
  };
}

// A static node token (MeshConfig nodeTokens) keeps working next to service-account tokens.
const STATIC_B = "static-token-b";
const STATIC_B_HASH = "ff49c72c29529bfb3d54ce18e754510b451bab3e472fe517c68dd544fff93690";

Deno.test("sa tokens: a node agent's bound token gets its node's workloads, not another node's; a workload's token only its own", async () => {
  const r = await rig();
  try {
    const a = r.rsa.token(agent("node-a"));
    assert.equal(await r.ask(a, ECHO), null, "echo-1 runs on node-a");
    assert.equal(await r.ask(a, ECHO, ECHO), null, "ztunnel's ImpersonatedIdentity, the same id");
    const mismatch = await r.ask(a, ECHO, DB);
    assert.equal(mismatch?.code, GrpcCode.INVALID_ARGUMENT);
    assert.match(mismatch!.message, /is not ImpersonatedIdentity/);
    const notHere = await r.ask(a, DB);
    assert.equal(notHere?.code, GrpcCode.PERMISSION_DENIED);
    assert.match(notHere!.message, /node node-a hosts no workload with identity .*sa\/default/);
    assert.equal(await r.ask(r.ec.token(agent("node-b")), DB), null, "ES256, node-b hosts db-1");
    // A node agent's token not bound to a node (no kubernetes.io.node) cannot act for one.
    const before = authRefusals.get({ service: "ca", reason: "no_node_claim" });
    const unbound = await r.ask(r.rsa.token(agent()), ECHO);
    assert.equal(unbound?.code, GrpcCode.PERMISSION_DENIED);
    assert.match(unbound!.message, /names no node/);
    assert.equal(authRefusals.get({ service: "ca", reason: "no_node_claim" }), before + 1);
    // A workload's token: its own identity (wherever it runs), nothing else, even on its node.
    const echoTok = r.rsa.token(workload("echo"));
    assert.equal(await r.ask(echoTok, ECHO), null);
    const other = await r.ask(echoTok, DB);
    assert.equal(other?.code, GrpcCode.PERMISSION_DENIED);
    assert.match(other!.message, /may get only spiffe:\/\/cluster.local\/ns\/default\/sa\/echo/);
    // Another account listed nowhere is not a node agent, even in the agents' namespace.
    const impostor = r.rsa.token({ ...agent("node-b"), serviceAccount: "weft-node-2" });
    assert.equal((await r.ask(impostor, DB))?.code, GrpcCode.PERMISSION_DENIED);
    // Static node tokens still work in jwt mode.
    assert.equal(await r.ask(STATIC_B, DB), null);
  } finally {
    await r.close();
  }
});

Deno.test("sa tokens: wrong audience, wrong issuer, expired, not yet valid, bad signature, alg none, HS256 with the public key, sub disagreeing: UNAUTHENTICATED, counted", async () => {
  const r = await rig();
  try {
    const nowS = Math.floor(Date.now() / 1000);
    const stranger = SaTokenSigner.generate("RS256");
    const claims = r.rsa.claims(agent("node-a"));
    const hs = (() => {
      const h = Buffer.from(JSON.stringify({ alg: "HS256", kid: r.rsa.kid })).toString("base64url");
      const p = Buffer.from(JSON.stringify(claims)).toString("base64url");
      const pem = JSON.parse(r.rsa.jwks()).keys[0];
      const mac = createHmac("sha256", JSON.stringify(pem)).update(`${h}.${p}`).digest("base64url");
      return `${h}.${p}.${mac}`;
    })();
    const none = `${Buffer.from('{"alg":"none"}').toString("base64url")}.${
      Buffer.from(JSON.stringify(claims)).toString("base64url")
    }.`;
    const cases: [string, string, string, RegExp][] = [
      [
        "wrong audience",
        r.rsa.token({ ...agent("node-a"), audiences: ["api"] }),
        "wrong_audience",
        /audience \["api"\]/,
      ],
      [
        "wrong issuer",
        r.rsa.token({ ...agent("node-a"), issuer: "https://evil" }),
        "wrong_issuer",
        /issuer "https:\/\/evil"/,
      ],
      [
        "expired",
        r.rsa.token({ ...agent("node-a"), nowS: nowS - 50_000 }),
        "invalid_token",
        /Jwt is expired/,
      ],
      [
        "not yet valid",
        r.rsa.signRaw({ alg: "RS256", kid: r.rsa.kid }, { ...claims, nbf: nowS + 3600 }),
        "invalid_token",
        /not yet valid/,
      ],
      [
        "bad signature",
        stranger.signRaw({ alg: "RS256", kid: r.rsa.kid }, claims),
        "invalid_token",
        /verification fails/,
      ],
      ["alg none", none, "invalid_token", /alg/],
      ["HS256 keyed with the public key", hs, "invalid_token", /HS256 is not RS\* or ES\*/],
      [
        "sub disagrees",
        r.rsa.signRaw({ alg: "RS256", kid: r.rsa.kid }, {
          ...claims,
          sub: "system:serviceaccount:default:echo",
        }),
        "claims_disagree",
        /disagree/,
      ],
      ["not a token", "guess", "invalid_token", /Jwt is not in the form/],
    ];
    for (const [name, token, reason, msg] of cases) {
      const before = authRefusals.get({ service: "ca", reason });
      const err = await r.ask(token, ECHO);
      assert.equal(err?.code, GrpcCode.UNAUTHENTICATED, name);
      assert.match(err!.message, msg, name);
      assert.equal(authRefusals.get({ service: "ca", reason }), before + 1, `${name} counted`);
    }
    const missing = await r.ask("", ECHO);
    assert.equal(missing?.code, GrpcCode.UNAUTHENTICATED);
    assert.match(missing!.message, /audience istio-ca/);
    assert.equal(
      await r.ask(r.rsa.token(agent("node-a")), ECHO),
      null,
      "the good token still works",
    );
  } finally {
    await r.close();
  }
});

Deno.test("sa tokens: an ADS stream serves the token's node, not node.id; a workload's or an unbound token gets no stream; a rotated token file is picked up", async () => {
  const r = await rig();
  const path = join(r.dir, "istio-token");
  const rotate = async (t: string): Promise<void> => {
    await writeFile(`${path}.tmp`, t);
    await rename(`${path}.tmp`, path);
  };
  await rotate(r.rsa.token(workload("echo")));
  const client = new XdsClient({
    server: r.cp.address,
    nodeId: "node-b",
    base: { ...BASE, node: { ...BASE.node, name: "node-b" } },
    tls: { rootsPem: r.ca.rootPem },
    serverIdentity: CP_ID,
    token: tokenFromFile(path),
    initialBackoffMs: 20,
    maxBackoffMs: 50,
  });
  const refusals = (reason: string): number => authRefusals.get({ service: "ads", reason });
  const until = async (pred: () => boolean): Promise<void> => {
    const deadline = Date.now() + 10_000;
    while (!pred()) {
      assert.ok(Date.now() < deadline, "timed out");
      await new Promise((res) => setTimeout(res, 10));
    }
  };
  try {
    const notAgent = refusals("not_node_agent");
    client.start();
    await until(() => refusals("not_node_agent") >= notAgent + 2); // refused, retried, refused
    assert.equal(r.cp.streams(), 0);
    const unbound = refusals("no_node_claim");
    await rotate(r.rsa.token(agent()));
    await until(() => refusals("no_node_claim") > unbound);
    assert.equal(client.snapshot, undefined, "no config without a node");
    // The agent's token bound to node-a: the next reconnect reads it; node.id says node-b.
    await rotate(r.ec.token(agent("node-a")));
    const s = await client.ready();
    assert.ok(s.services.length > 0);
    assert.deepEqual(r.cp.streamNodes(), ["node-a"]);
  } finally {
    await client.close();
    await r.close();
  }
});
