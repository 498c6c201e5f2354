/**
 * A LeafIssuer backed by the control plane's IstioCertificateService/CreateCertificate: the node
 * agent makes a key and CSR per workload identity and has the control plane sign it, so nodes no
 * longer share a CA key (ztunnel's model with istiod).
 */
import { errorMessage, type GrpcChannel, WeftError } from "../core/mod.ts";
import {
  createCsr,
  type IssuedLeaf,
  type IssueOptions,
  leafFromChain,
  type LeafIssuer,
} from "../tls/mod.ts";
import { bearer, CA_PATH, controlPlaneChannel, type XdsTlsMaterial } from "./grpc_transport.ts";
import { decodeIstioCertificateResponse, encodeIstioCertificateRequest } from "./node_proto.ts";
import { type BearerToken, currentToken } from "./token_file.ts";

export interface RemoteCaOptions {
  /** "host:port" of the control plane. */
  readonly address: string;
  readonly tls?: XdsTlsMaterial;
  readonly serverIdentity?: string;
  readonly timeoutMs?: number;
  /** The node's bearer token for the CA service: a node token (MeshConfig spec.nodeTokens holds
   * its hash) or a service-account JWT; a function (tokenFromFile) is asked again for every CSR. */
  readonly token?: BearerToken;
}

export class RemoteCa implements LeafIssuer {
  private root = "";
  private readonly channel: GrpcChannel;

  constructor(private readonly opts: RemoteCaOptions) {
    // Over TLS the control plane must prove its SPIFFE id: without one configured, none passes.
    const identity = opts.tls ? opts.serverIdentity ?? "" : undefined;
    this.channel = controlPlaneChannel(opts.address, opts.tls, identity);
  }

  /** The mesh root learnt from the last answer ("" before the first issuance). */
  get rootPem(): string {
    return this.root;
  }

  async issueLeaf(identity: string, opts: IssueOptions = {}): Promise<IssuedLeaf> {
    const { csrPem, keyPem } = await createCsr(identity);
    const ttlS = BigInt(Math.ceil((opts.ttlMs ?? 24 * 3_600_000) / 1000));
    let chain: string[];
    try {
      const reply = await this.channel.unary(
        {
          path: CA_PATH,
          metadata: bearer(currentToken(this.opts.token)),
          deadlineMs: this.opts.timeoutMs ?? 10_000,
        },
        encodeIstioCertificateRequest({
          csr: csrPem,
          validityDuration: ttlS,
          // ztunnel's way to ask istiod for another identity than the caller's (its NodeAuthorizer
          // checks the node); weft's CA requires it to equal the CSR's SAN.
          metadata: { ImpersonatedIdentity: identity },
        }),
      );
      chain = [...decodeIstioCertificateResponse(reply).certChain];
    } catch (err) {
      throw new WeftError(
        "ca_request_failed",
        `Cannot get a certificate for ${identity} from ${this.opts.address}: ${errorMessage(err)}`,
        { cause: err },
      );
    }
    const leaf = await leafFromChain(identity, keyPem, chain, new Date(opts.nowMs ?? Date.now()));
    this.root = leaf.rootsPem;
    return leaf;
  }

  close(): void {
    this.channel.close();
  }
}
