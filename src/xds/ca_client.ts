/**
 * A LeafIssuer backed by the control plane's IstioCertificateService/CreateCertificate: the node
 * agent makes a key and CSR per workload identity and has the control plane sign it, so nodes no
 * longer share a CA key (ztunnel's model with istiod).
 */
import * as grpc from "@grpc/grpc-js";
import { create } from "@bufbuild/protobuf";
import { WeftError } from "../core/mod.ts";
import {
  createCsr,
  type IssuedLeaf,
  type IssueOptions,
  leafFromChain,
  type LeafIssuer,
} from "../tls/mod.ts";
import {
  CA_SERVICE,
  CHANNEL_OPTIONS,
  clientCredentials,
  TLS_CHANNEL_OPTIONS,
  type XdsTlsMaterial,
} from "./grpc_transport.ts";
import { IstioCertificateRequestSchema } from "./proto.ts";

export interface RemoteCaOptions {
  /** "host:port" of the control plane. */
  readonly address: string;
  readonly tls?: XdsTlsMaterial;
  readonly serverIdentity?: string;
  readonly timeoutMs?: number;
  /** The node's bearer token for the CA service (MeshConfig spec.nodeTokens holds its hash). */
  readonly token?: string;
}

export class RemoteCa implements LeafIssuer {
  private root = "";
  private readonly client: grpc.Client;

  constructor(private readonly opts: RemoteCaOptions) {
    const creds = opts.tls
      ? clientCredentials(opts.tls, opts.serverIdentity ?? "")
      : grpc.credentials.createInsecure();
    this.client = new grpc.Client(opts.address, creds, {
      ...CHANNEL_OPTIONS,
      ...(opts.tls ? TLS_CHANNEL_OPTIONS : {}),
    });
  }

  /** The mesh root learnt from the last answer ("" before the first issuance). */
  get rootPem(): string {
    return this.root;
  }

  private metadata(): grpc.Metadata {
    const md = new grpc.Metadata();
    if (this.opts.token) md.set("authorization", `Bearer ${this.opts.token}`);
    return md;
  }

  async issueLeaf(identity: string, opts: IssueOptions = {}): Promise<IssuedLeaf> {
    const { csrPem, keyPem } = await createCsr(identity);
    const ttlS = BigInt(Math.ceil((opts.ttlMs ?? 24 * 3_600_000) / 1000));
    const m = CA_SERVICE.CreateCertificate;
    const chain = await new Promise<string[]>((resolve, reject) => {
      const deadline = new Date(Date.now() + (this.opts.timeoutMs ?? 10_000));
      this.client.makeUnaryRequest(
        m.path,
        m.requestSerialize,
        m.responseDeserialize,
        create(IstioCertificateRequestSchema, { csr: csrPem, validityDuration: ttlS }),
        this.metadata(),
        { deadline },
        (err, res) => {
          if (err) {
            reject(
              new WeftError(
                "ca_request_failed",
                `Cannot get a certificate for ${identity} from ${this.opts.address}: ${
                  err.details || err.message
                }`,
                { cause: err },
              ),
            );
          } else resolve([...((res as { certChain?: string[] } | undefined)?.certChain ?? [])]);
        },
      );
    });
    const leaf = await leafFromChain(identity, keyPem, chain, new Date(opts.nowMs ?? Date.now()));
    this.root = leaf.rootsPem;
    return leaf;
  }

  close(): void {
    this.client.close();
  }
}
