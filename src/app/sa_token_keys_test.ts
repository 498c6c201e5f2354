/** The control plane's service-account key file: only RSA/EC keys count, a file without one is
 * refused with the reason, and a replaced file (the issuer rotated its key) is used from the next
 * check on; a broken replacement keeps the last good keys. Tokens signed as kube-apiserver does. */
import assert from "node:assert/strict";
import { mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SaTokenSigner } from "../../tests/support/k8s_sa_tokens.ts";
import { saIssuerKeys, saTokenVerifierFromFile } from "./sa_token_keys.ts";

Deno.test("sa issuer keys: RSA/EC only; a rotated JWKS file is picked up; a broken one keeps the last", async () => {
  assert.throws(
    () => saIssuerKeys('{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}', "x"),
    /no RSA or EC public key/,
  );
  assert.throws(() => saIssuerKeys("{}", "x"), /Jwks does not have \[keys\]/);
  const dir = await mkdtemp(join(tmpdir(), "weft-jwks-"));
  try {
    const path = join(dir, "jwks.json");
    const put = async (text: string): Promise<void> => {
      await writeFile(`${path}.tmp`, text);
      await rename(`${path}.tmp`, path);
    };
    const old = SaTokenSigner.generate("RS256");
    const next = SaTokenSigner.generate("ES256");
    await put(old.jwks());
    const verify = await saTokenVerifierFromFile(path, 0);
    const claims = { namespace: "default", serviceAccount: "echo" };
    const nowS = Math.floor(Date.now() / 1000);
    assert.ok("payload" in verify(old.token(claims), nowS));
    assert.ok("error" in verify(next.token(claims), nowS));
    await put(next.jwks());
    assert.ok("payload" in verify(next.token(claims), nowS), "the new key is used");
    assert.ok("error" in verify(old.token(claims), nowS), "the old key is gone");
    await put("not json");
    assert.ok("payload" in verify(next.token(claims), nowS), "a broken file keeps the last keys");
    await assert.rejects(saTokenVerifierFromFile(join(dir, "absent.json")), /Cannot read the JWKS/);
  } finally {
    await rm(dir, { recursive: true });
  }
});
