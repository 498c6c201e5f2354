/**
 * OCI image references of WasmPlugin urls (l7-semantics W2/W3): `oci://host[:port]/repo[:tag]
 * [@sha256:<hex>]`, a url without a scheme being one too (Istio). A first path component without
 * a `.` or `:` (and not `localhost`) is a Docker Hub repository, as go-containerregistry reads it.
 */

export interface OciRef {
  /** host[:port] */
  readonly registry: string;
  readonly repository: string;
  /** The tag; `latest` when neither a tag nor a digest is given. */
  readonly tag: string | undefined;
  /** `sha256:<64 hex>` when the reference pins one. */
  readonly digest: string | undefined;
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^\w[\w.-]{0,127}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;
const HOST =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?$/;

/** Whether a WasmPlugin url names an OCI image: `oci://`, or no scheme at all (Istio). */
export function isOciUrl(url: string): boolean {
  return url.startsWith("oci://") || (url !== "" && !/^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(url));
}

/** Parses an OCI reference; throws a TypeError saying what is wrong. */
export function parseOciRef(url: string): OciRef {
  const s = url.startsWith("oci://") ? url.slice(6) : url;
  let rest = s;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw new TypeError(`digest must be sha256:<64 lowercase hex>`);
  }
  const slash = rest.indexOf("/");
  let registry = "index.docker.io";
  let path = rest;
  const first = slash >= 0 ? rest.slice(0, slash) : "";
  if (slash >= 0 && (/[.:]/.test(first) || first === "localhost")) {
    registry = first;
    path = rest.slice(slash + 1);
  }
  if (!HOST.test(registry)) throw new TypeError(`bad registry host ${JSON.stringify(registry)}`);
  let tag: string | undefined;
  const lastSlash = path.lastIndexOf("/");
  const colon = path.indexOf(":", lastSlash + 1);
  if (colon >= 0) {
    tag = path.slice(colon + 1);
    path = path.slice(0, colon);
    if (!TAG.test(tag)) throw new TypeError(`bad tag ${JSON.stringify(tag)}`);
  }
  if (path === "" || !path.split("/").every((p) => COMPONENT.test(p))) {
    throw new TypeError(`bad repository ${JSON.stringify(path)} (lowercase path components)`);
  }
  if (registry === "index.docker.io" && !path.includes("/")) path = `library/${path}`;
  if (tag === undefined && digest === undefined) tag = "latest";
  return { registry, repository: path, tag, digest };
}

/** The text form, for logs and cache keys. */
export function ociRefText(r: OciRef): string {
  return `${r.registry}/${r.repository}${r.tag ? `:${r.tag}` : ""}${
    r.digest ? `@${r.digest}` : ""
  }`;
}
