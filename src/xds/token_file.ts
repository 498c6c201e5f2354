/**
 * The node's bearer credential for the control plane, read from its file each time a stream
 * opens or a CSR is sent (ztunnel's AuthSource::Token does the same per request): kubelet
 * rewrites a projected service-account token (`/var/run/secrets/tokens/istio-token`, audience
 * istio-ca) well before it expires, so a rotated file must be used without a restart.
 */
import { readFileSync } from "node:fs";
import { errorMessage, logger } from "../core/mod.ts";

const log = logger("xds");

/** A fixed token, or a function that returns the current one. */
export type BearerToken = string | (() => string | undefined);

/** The token now (a function is called on every use). */
export function currentToken(token: BearerToken | undefined): string | undefined {
  return typeof token === "function" ? token() : token;
}

/** Reads `path` on every call. A file that cannot be read or is empty keeps the last token read
 * (logged once per change of reason): kubelet swaps the file atomically, so this is a transient
 * or operator problem, and the control plane judges the token either way. */
export function tokenFromFile(path: string): () => string | undefined {
  let last: string | undefined;
  let lastProblem = "";
  return () => {
    let problem = "";
    try {
      const t = readFileSync(path, "utf8").trim();
      if (t) {
        last = t;
        lastProblem = "";
        return t;
      }
      problem = "the token file is empty";
    } catch (err) {
      problem = errorMessage(err);
    }
    if (problem !== lastProblem) {
      log.warn("cannot read the control-plane token, using the last one read", {
        path,
        error: problem,
      });
      lastProblem = problem;
    }
    return last;
  };
}
