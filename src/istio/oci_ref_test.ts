/** OCI references of WasmPlugin urls (l7-semantics W2), as go-containerregistry reads them. */
import assert from "node:assert/strict";
import { isOciUrl, parseOciRef } from "./oci_ref.ts";

const D = `sha256:${"0".repeat(63)}1`;

Deno.test("OCI ref: registry, repository, tag, digest", () => {
  assert.deepEqual(parseOciRef("oci://ghcr.io/a/b:v1"), {
    registry: "ghcr.io",
    repository: "a/b",
    tag: "v1",
    digest: undefined,
  });
  assert.deepEqual(parseOciRef("foo.bar:5000/baz"), {
    registry: "foo.bar:5000",
    repository: "baz",
    tag: "latest",
    digest: undefined,
  });
  assert.deepEqual(parseOciRef(`oci://localhost/x/y@${D}`), {
    registry: "localhost",
    repository: "x/y",
    tag: undefined,
    digest: D,
  });
  assert.deepEqual(parseOciRef(`127.0.0.1:5000/x:t@${D}`), {
    registry: "127.0.0.1:5000",
    repository: "x",
    tag: "t",
    digest: D,
  });
  // Docker Hub: no registry part; a single name is library/.
  assert.equal(parseOciRef("oci://nginx").repository, "library/nginx");
  assert.equal(parseOciRef("oci://nginx").registry, "index.docker.io");
  assert.equal(parseOciRef("user/img:1").repository, "user/img");
});

Deno.test("OCI ref: malformed references are refused", () => {
  for (const bad of ["oci://", "oci://h.io/A", "oci://h.io/a:", "oci://h.io/a@sha256:xy", "a//b"]) {
    assert.throws(() => parseOciRef(bad), TypeError, bad);
  }
});

Deno.test("OCI ref: no scheme is OCI; file/http(s) are not", () => {
  assert.ok(isOciUrl("foo.bar:5000/baz:latest"));
  assert.ok(isOciUrl("oci://a/b"));
  assert.ok(!isOciUrl("https://a/b.wasm"));
  assert.ok(!isOciUrl("file:///x.wasm"));
});
