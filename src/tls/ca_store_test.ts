import assert from "node:assert/strict";
import { X509Certificate as NodeX509 } from "node:crypto";
import { WeftError } from "../core/mod.ts";
import { CA_CERT_FILE, CA_KEY_FILE, loadCaFiles, loadOrCreateCa, openCa } from "./ca_store.ts";

const ID = "spiffe://cluster.local/ns/default/sa/web";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "weft-castore-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("auto mode: creates ca-cert.pem + ca-key.pem (0600) once and reuses them", () =>
  withDir(async (dir) => {
    const state = `${dir}/state`;
    const a = await openCa({ mode: "auto", stateDir: state });
    assert.equal((await Deno.stat(`${state}/${CA_KEY_FILE}`)).mode! & 0o777, 0o600);
    assert.equal(await Deno.readTextFile(`${state}/${CA_CERT_FILE}`), a.rootPem);
    const b = await openCa({ mode: "auto", stateDir: state });
    assert.equal(b.serialNumber, a.serialNumber);
    // The reloaded CA signs leaves the first one's root verifies.
    const leaf = await b.issueLeaf(ID);
    assert.ok(new NodeX509(leaf.certPem).verify(new NodeX509(a.rootPem).publicKey));
    assert.deepEqual([...Deno.readDirSync(state)].map((e) => e.name).sort(), [
      CA_CERT_FILE,
      CA_KEY_FILE,
    ]);
  }));

Deno.test("auto mode: concurrent opens in one process agree on one CA", () =>
  withDir(async (dir) => {
    const cas = await Promise.all([1, 2, 3, 4, 5].map(() => loadOrCreateCa(dir)));
    assert.equal(new Set(cas.map((c) => c.serialNumber)).size, 1);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [
      CA_CERT_FILE,
      CA_KEY_FILE,
    ]);
  }));

Deno.test("auto mode: two processes released at the same moment end up with the same CA", () =>
  withDir(async (dir) => {
    const child = new URL("./testdata/ca_race_child.ts", import.meta.url).pathname;
    const procs = [0, 1].map((i) =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", child, `${dir}/state`, `${dir}/serial-${i}`],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn()
    );
    // Wait until both children are loaded (their "ready" log line), then release them together.
    const logs = await Promise.all(procs.map(async (p) => {
      const lines = p.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let seen = "";
      while (!seen.includes('"msg":"ready"')) {
        const { value, done } = await lines.read();
        if (done) break;
        seen += value;
      }
      return lines;
    }));
    const writers = procs.map((p) => p.stdin.getWriter());
    await Promise.all(writers.map((w) => w.write(new TextEncoder().encode("go\n"))));
    await Promise.all(writers.map((w) => w.close()));
    const created = await Promise.all(logs.map(async (lines) => {
      let rest = "";
      for (let r = await lines.read(); !r.done; r = await lines.read()) rest += r.value;
      return rest.includes('"msg":"dev CA created"');
    }));
    // Exactly one of them made the CA, the other loaded it.
    assert.deepEqual(created.filter(Boolean).length, 1);
    for (const p of procs) {
      const [status, err] = await Promise.all([p.status, new Response(p.stderr).text()]);
      assert.equal(status.code, 0, err);
    }
    const s0 = await Deno.readTextFile(`${dir}/serial-0`);
    const s1 = await Deno.readTextFile(`${dir}/serial-1`);
    assert.equal(s0, s1);
    assert.equal((await loadOrCreateCa(`${dir}/state`)).serialNumber, s0);
  }));

Deno.test("auto mode: a stale lock from a crashed process is broken", () =>
  withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/ca.lock`, "");
    const old = new Date(Date.now() - 60_000);
    await Deno.utime(`${dir}/ca.lock`, old, old);
    const ca = await loadOrCreateCa(dir, { lockStaleMs: 1_000 });
    assert.ok(ca.serialNumber);
  }));

Deno.test("auto mode: a live lock held too long fails with a clear error", () =>
  withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/ca.lock`, "");
    await assert.rejects(loadOrCreateCa(dir, { waitMs: 100 }), (e: unknown) => {
      assert.ok(e instanceof WeftError && e.code === "ca_lock_timeout");
      assert.match(e.hint ?? "", /delete .*ca\.lock/);
      return true;
    });
  }));

async function openssl(args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", { args, stdout: "null", stderr: "piped" }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
}

async function opensslCa(dir: string, name: string, keyArgs: string[]): Promise<void> {
  await openssl(["genpkey", ...keyArgs, "-out", `${dir}/${name}-key.pem`]);
  await openssl([
    "req",
    "-x509",
    "-new",
    "-key",
    `${dir}/${name}-key.pem`,
    "-out",
    `${dir}/${name}-cert.pem`,
    "-days",
    "2",
    "-subj",
    `/O=ops/CN=${name}`,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign",
  ]); // deno-fmt-ignore
}

Deno.test("files mode: loads openssl-made EC and RSA roots and issues leaves openssl verifies", () =>
  withDir(async (dir) => {
    await opensslCa(dir, "ec", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]);
    await opensslCa(dir, "rsa", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]);
    for (const name of ["ec", "rsa"]) {
      const ca = await openCa({
        mode: "files",
        certPath: `${dir}/${name}-cert.pem`,
        keyPath: `${dir}/${name}-key.pem`,
      });
      const leaf = await ca.issueLeaf(ID);
      await Deno.writeTextFile(`${dir}/leaf.pem`, leaf.certPem);
      await openssl(["verify", "-CAfile", `${dir}/${name}-cert.pem`, `${dir}/leaf.pem`]);
    }
  }));

Deno.test("files mode: mismatched pair, missing file, SEC1 key are clear errors", () =>
  withDir(async (dir) => {
    await opensslCa(dir, "a", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]);
    await opensslCa(dir, "b", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]);
    const is = (c: string) => (e: unknown) => e instanceof WeftError && e.code === c;
    await assert.rejects(loadCaFiles(`${dir}/a-cert.pem`, `${dir}/b-key.pem`), (e: unknown) => {
      assert.ok(is("ca_key_mismatch")(e));
      assert.match((e as Error).message, /a-cert\.pem .*b-key\.pem: the private key does not/);
      return true;
    });
    await assert.rejects(
      loadCaFiles(`${dir}/nope.pem`, `${dir}/a-key.pem`),
      is("ca_file_unreadable"),
    );
    await openssl(["ec", "-in", `${dir}/a-key.pem`, "-out", `${dir}/a-sec1.pem`]);
    await assert.rejects(
      loadCaFiles(`${dir}/a-cert.pem`, `${dir}/a-sec1.pem`),
      is("ca_key_invalid"),
    );
  }));
