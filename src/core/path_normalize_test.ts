import assert from "node:assert/strict";
import { normalizePath, pathEnd, splitAbsoluteForm } from "./path_normalize.ts";

// Istio's normalization page (BASE, the default) as examples.
Deno.test("normalizePath: Istio BASE", () => {
  const cases: [string, string | undefined][] = [
    ["/public/x", "/public/x"],
    ["/public/./data/abc/../xyz", "/public/data/xyz"],
    ["/a/../b", "/b"],
    ["/some%2fdata/%61%62%63", "/some%2fdata/abc"], // %2f kept by BASE
    ["/%2D%2e%5F%7e%30%5A", "/-._~0Z"],
    ["/some\\data", "/some/data"],
    ["/some%5cdata", "/some%5cdata"],
    ["/a//b", "/a//b"], // merging slashes is MERGE_SLASHES, not BASE
    ["/..", "/"],
    ["/../../etc/passwd", "/etc/passwd"],
    ["/a/b/..", "/a/"],
    ["/a/.", "/a/"],
    ["/%2e%2e/admin", "/admin"],
    ["/x/%2E%2E/admin?q=/../%61", "/admin?q=/../%61"], // the query is left as sent
    ["/admin#/../x", "/admin#/../x"],
    ["/a%00b", undefined],
    ["/a%2", "/a%2"],
    ["/a%zz", "/a%zz"],
    ["*", "*"],
    ["admin/../x", undefined],
    ["host:443", undefined],
    ["/", "/"],
  ];
  for (const [input, want] of cases) assert.equal(normalizePath(input), want, input);
  assert.equal(normalizePath("host:443", "CONNECT"), "host:443");
});

Deno.test("splitAbsoluteForm: RFC 9112 §3.2.2", () => {
  assert.deepEqual(splitAbsoluteForm("http://Echo:80/admin?x"), {
    authority: "Echo:80",
    path: "/admin?x",
  });
  assert.deepEqual(splitAbsoluteForm("HTTPS://h"), { authority: "h", path: "/" });
  assert.deepEqual(splitAbsoluteForm("http://h?q"), { authority: "h", path: "/?q" });
  assert.equal(splitAbsoluteForm("/x"), undefined);
  assert.equal(splitAbsoluteForm("ftp://h/x"), undefined);
});

Deno.test("normalizePath: the fast scan finds every path that needs work", () => {
  // Against the rule it replaces: a `%`, a backslash, or a `.`/`..` segment in the path part.
  const needsWork = (t: string): boolean => {
    const q = t.search(/[?#]/);
    return /[%\\]|\/\.\.?(?:\/|$)/.test(q < 0 ? t : t.slice(0, q));
  };
  const parts = ["/", ".", "..", "a", "%41", "\\", "?", "#", "/.", "...", "x."];
  const seen = new Set<string>();
  for (const a of parts) {
    for (const b of parts) {
      for (const c of parts) {
        const t = `/${a}${b}${c}`;
        if (seen.has(t)) continue;
        seen.add(t);
        assert.equal(pathEnd(t) >= 0, needsWork(t), t);
        if (!needsWork(t)) assert.equal(normalizePath(t), t, t);
      }
    }
  }
});
