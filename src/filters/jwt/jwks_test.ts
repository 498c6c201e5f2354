/** A jwksUri's key set: istiod's fake set while it cannot be fetched, the real one once it can,
 * a rotated set after a refresh, and the last good set kept when a refresh fails. */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createServer } from "node:http";
import { FAKE_JWKS, JwksSource, parseJwks } from "./jwks.ts";

const key = (kid: string) => ({ kty: "EC", crv: "P-256", kid, x: "", y: "" });

async function ecJwk(kid: string) {
  const kp = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  return { ...(await crypto.subtle.exportKey("jwk", kp.publicKey)), kid };
}

const until = async (ok: () => boolean, ms = 3000) => {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 10));
  }
};

Deno.test("jwks: fake set while unreachable, then fetched, refreshed, last good set kept", async () => {
  let body: string | undefined; // undefined: answer 503
  let hits = 0;
  const server = createServer((_q, res) => {
    hits++;
    if (body === undefined) {
      res.statusCode = 503;
      res.end();
    } else res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/jwks`;
  const src = await JwksSource.remote(url, 1000, { refreshMs: 50, retryMs: 20 });
  try {
    assert.equal(src.keys, FAKE_JWKS);
    body = JSON.stringify({ keys: [await ecJwk("a")] });
    await until(() => src.keys[0]?.kid === "a");
    body = JSON.stringify({ keys: [await ecJwk("b")] });
    await until(() => src.keys[0]?.kid === "b");
    body = undefined;
    const seen = hits;
    await until(() => hits > seen + 1);
    assert.equal(src.keys[0]?.kid, "b");
  } finally {
    src.close();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

Deno.test("jwks: Envoy's errors for sets without a usable key", () => {
  assert.deepEqual(parseJwks("{"), { error: "Jwks is an invalid JSON" });
  assert.deepEqual(parseJwks("{}"), { error: "Jwks does not have [keys] field" });
  assert.deepEqual(parseJwks('{"keys":1}'), { error: "[keys] in Jwks is not an array" });
  assert.deepEqual(parseJwks(JSON.stringify({ keys: [key("x")] })), {
    error: "Jwks doesn't have any valid public key",
  });
});

Deno.test("jwks: a huge jwksUri answer is cut off at 1 MiB, never buffered whole; last good set kept", async () => {
  let huge = false;
  const sent: number[] = []; // bytes written per huge answer
  const good = JSON.stringify({ keys: [await ecJwk("g")] });
  const server = createServer((_q, res) => {
    if (!huge) return void res.end(good);
    // 64 MiB of JSON whitespace, written as fast as the client reads, no content-length.
    const i = sent.push(0) - 1;
    const chunk = Buffer.alloc(1 << 16, 0x20);
    const pump = () => {
      while (sent[i]! < 64 << 20) {
        sent[i]! += chunk.length;
        if (!res.write(chunk)) return void res.once("drain", pump);
      }
      res.end(good);
    };
    res.on("error", () => {});
    res.on("close", () => res.removeAllListeners("drain"));
    pump();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/jwks`;
  const src = await JwksSource.remote(url, 5000, { refreshMs: 20, retryMs: 20 });
  try {
    assert.equal(src.keys[0]?.kid, "g");
    huge = true;
    // A second huge request means the first one was given up (or read whole).
    await until(() => sent.length >= 2, 10_000);
    assert(sent[0]! < 16 << 20, `the client read ${sent[0]} bytes of the first answer`);
    assert.equal(src.keys[0]?.kid, "g");
  } finally {
    src.close();
    server.closeAllConnections?.();
    await new Promise<void>((r) => server.close(() => r()));
  }
});
