/** re2_match: the same answers as JavaScript's engine on RE2 syntax both share, RE2's refusals
 * (backreferences, lookaround, bad repeats), and inputs that make a backtracking engine take
 * exponential time answered in one pass. */
import assert from "node:assert/strict";
import { compileFullRegex, regexProblem } from "./re2_match.ts";

const full = (p: string): (s: string) => boolean => {
  const m = compileFullRegex(p);
  assert.equal(typeof m, "function", `${p}: ${JSON.stringify(m)}`);
  return m as (s: string) => boolean;
};

Deno.test("re2_match: whole-value answers as JavaScript's engine on the syntax both share", () => {
  const patterns = [
    "/api/v[0-9]+",
    ".*\\.r",
    "https://.*[.]b[.]example",
    "^/(.+)/.+$",
    "spiffe://.+/ns/default/(.+/|)sa/sleep(/.+)?",
    "^[a-zA-Z][a-zA-Z0-9+.-]*://[^/\\s?#]+$",
    "a|b|",
    "(ab|a)*b?",
    "x{2,3}y{0,}z{1}",
    "[^a-c]+",
    "[a-]+",
    "\\d\\w\\s\\D",
    "(?:a|bc)+$",
    "\\bfoo\\b.*",
    "a.c",
    "\\.\\-\\/\\{\\}",
    "é+",
    "",
  ];
  const inputs = [
    "",
    "a",
    "ab",
    "abc",
    "/api/v12",
    "/api/v",
    "x.r",
    "https://a.b.example",
    "/a/b",
    "spiffe://td/ns/default/sa/sleep",
    "spiffe://td/ns/default/x/sa/sleep/y",
    "http://h:80",
    "abab",
    "xxyz",
    "xxxyyyz",
    "def",
    "a-a",
    "1a \u00e9",
    "abcbc",
    "foo bar",
    "axc",
    ".-/{}",
    "ééé",
    "https://x.y/",
  ];
  for (const p of patterns) {
    const m = full(p);
    const vm = compileFullRegex(p, true) as (s: string) => boolean;
    const js = new RegExp(`^(?:${p})$`);
    for (const s of inputs) {
      assert.equal(m(s), js.test(s), `${p} on ${JSON.stringify(s)}`);
      assert.equal(vm(s), js.test(s), `${p} on ${JSON.stringify(s)} (VM)`);
    }
  }
  // RE2-only spellings.
  assert.equal(full("(?i)c\\.com.*")("C.COM/x"), true);
  assert.equal(full("(?i:AB)c")("aBc"), true);
  assert.equal(full("(?i:AB)c")("abC"), false);
  assert.equal(full("[[:alpha:]]+1")("Zz1"), true);
  assert.equal(full("(?P<x>a)b")("ab"), true);
  assert.equal(full("[]a]+")("]a"), true);
  assert.equal(full("a{,2}")("a{,2}"), true, "not a repeat: literal, as RE2");
  assert.equal(full("\\x41\\x{42}\\101")("ABA"), true);
  assert.equal(full("a.c")("a\nc"), false, "`.` is not a newline without (?s)");
  assert.equal(full("(?s)a.c")("a\nc"), true);
  assert.equal(full("\\pL+")("abc"), true, "Unicode classes through JavaScript's engine");
});

Deno.test("re2_match: what RE2 refuses is refused with its reason (backrefs, lookaround, ...)", () => {
  for (
    const [p, why] of [
      ["(a)\\1", "invalid escape sequence"],
      ["(?=x)", "invalid or unsupported Perl syntax"],
      ["(?!x)a", "invalid or unsupported Perl syntax"],
      ["(?<=x)a", "invalid or unsupported Perl syntax"],
      ["(?<!x)a", "invalid or unsupported Perl syntax"],
      ["(?>a)", "invalid or unsupported Perl syntax"],
      ["\\k<x>", "invalid escape sequence"],
      ["a**", "invalid nested repetition operator"],
      ["a{1001}", "invalid repeat count"],
      ["a{3,2}", "invalid repeat count"],
      ["*a", "missing argument to repetition operator"],
      ["(", "missing closing )"],
      [")", "unexpected )"],
      ["[a", "missing closing ]"],
      ["[z-a]", "invalid character class range"],
      ["\\", "trailing backslash at end of expression"],
    ] as const
  ) assert.equal(regexProblem(p), why, p);
  assert.equal(regexProblem("https://[a-z]+\\.allowed\\.example"), undefined);
});

Deno.test("re2_match: nested repeats on a hostile input take one pass, not exponential time", () => {
  // A backtracking engine needs ~2^n steps for n = 40 here (minutes on V8); RE2 and this: n.
  const m = full("https://([a-z0-9]+)+\\.example\\.com");
  assert.equal(m(`https://${"a".repeat(40)}!`), false);
  assert.equal(m(`https://${"a".repeat(8000)}!`), false);
  assert.equal(m("https://ab.example.com"), true);
  assert.equal(full("(.*)*(.*)*x")("y".repeat(8000)), false);
  assert.equal(full("(a|a)*b")("a".repeat(5000)), false);
});
