/* Native (host clang) table-driven unit tests of the portable C shared by the plugins: JSON,
 * the RE2-subset regex engine, Istio string matching and CIDRs. Run by native_test.ts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cfg.h"
#include "../match.h"
#include "../regex.h"

void *weft_os_alloc(size_t n) { return malloc(n); }
void weft_os_free(void *p) { free(p); }

static int failures;
#define CHECK(cond, ...)                          \
  do {                                            \
    if (!(cond)) {                                \
      failures++;                                 \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);               \
      fputc('\n', stderr);                        \
    }                                             \
  } while (0)

static wstr W(const char *s) { return wstr_cstr(s); }

static void test_regex(arena *a) {
  static const struct { const char *re, *s; int want; } T[] = {
      {"abc", "abc", 1},           {"abc", "abcd", 0},        {"abc", "xabc", 0},
      {"a.c", "abc", 1},           {"a.c", "a\nc", 0},        {"a*", "", 1},
      {"a+", "", 0},               {"a+b", "aaab", 1},        {"ab?c", "ac", 1},
      {"ab?c", "abbc", 0},         {"(ab)+", "ababab", 1},    {"(ab)+", "aba", 0},
      {"a|b|c", "b", 1},           {"(a|bc)d", "bcd", 1},     {"x(?:y|z)*", "xyzzy", 1},
      {"[a-c]+", "abcab", 1},      {"[a-c]+", "abd", 0},      {"[^0-9]+", "abc", 1},
      {"[^0-9]+", "a1", 0},        {"\\d{3}", "123", 1},      {"\\d{3}", "12", 0},
      {"\\d{2,3}", "1234", 0},     {"\\d{2,}", "12345", 1},   {"a{0}b", "b", 1},
      {"\\w+@\\w+\\.com", "me@x.com", 1}, {"\\s", " ", 1},    {"\\S+", "a b", 0},
      {"[\\d.]+", "1.2.3", 1},     {"\\.", ".", 1},           {"\\.", "a", 0},
      {"^/api/.*$", "/api/x", 1},  {"/api/v[0-9]+/.*", "/api/v12/users", 1},
      {"(?i)hello", "HeLLo", 1},   {"hello", "HELLO", 0},     {"(a*)*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaac", 0},
      {"(a|aa)+$", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab", 0},
      {"", "", 1},                 {"", "a", 0},              {"[-a]+", "-a-", 1},
      {"[a-]+", "a-", 1},          {"[]a]+", "]a", 1},        {"a.*?b", "axxb", 1},
  };
  for (size_t i = 0; i < sizeof T / sizeof T[0]; i++) {
    const char *err = 0;
    regex *re = regex_compile(a, W(T[i].re), &err);
    CHECK(re != 0, "regex %s: compile error %s", T[i].re, err ? err : "?");
    if (re) CHECK(regex_full_match(re, W(T[i].s)) == T[i].want, "regex /%s/ on '%s' want %d", T[i].re, T[i].s, T[i].want);
  }
  static const char *BAD[] = {"(a", "a)", "[a", "*a", "a{2,1}", "a(?=b)", "\\1", "[[:alpha:]]", "\\p{L}", "\\b", "a{1001}"};
  for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
    const char *err = 0;
    CHECK(regex_compile(a, W(BAD[i]), &err) == 0 && err != 0, "regex %s should be rejected", BAD[i]);
  }
}

static void test_json(arena *a) {
  const char *err;
  uint32_t at;
  const char *doc = "{\"a\": [1, -2.5e1, true, null, \"x\\n\\u00e9\\ud83d\\ude00\"]}";
  jval *v = json_parse(a, doc, (uint32_t)strlen(doc), &err, &at);
  CHECK(v != 0 && v->t == J_OBJ, "json object");
  jval *arr = json_get(v, "a");
  CHECK(arr && arr->len == 5, "json array len");
  if (arr && arr->len == 5) {
    CHECK(arr->child->num == 1, "json 1");
    CHECK(arr->child->next->num == -25, "json -2.5e1 = %f", arr->child->next->num);
    jval *s = arr->child->next->next->next->next;
    CHECK(s->t == J_STR && s->s.n == 8 && memcmp(s->s.p, "x\n\xc3\xa9\xf0\x9f\x98\x80", 8) == 0, "json escapes");
  }
  static const char *BAD[] = {"", "{", "[1,]", "{\"a\" 1}", "01", "\"\\x\"", "tru", "[1] x", "\"a\nb\"", "{1: 2}"};
  for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++)
    CHECK(json_parse(a, BAD[i], (uint32_t)strlen(BAD[i]), &err, &at) == 0, "json '%s' should fail", BAD[i]);
  int64_t n;
  v = json_parse(a, "[7, 7.5, 4294967296]", 20, &err, &at);
  CHECK(v && json_is_int(v->child, 0, 10, &n) && n == 7, "int 7");
  CHECK(v && !json_is_int(v->child->next, 0, 10, &n), "7.5 is not an int");
  CHECK(v && !json_is_int(v->child->next->next, 0, 0xFFFFFFFFll, &n), "2^32 out of range");
}

static void test_match(void) {
  static const struct { const char *pat, *v; int nocase, want; } T[] = {
      {"abc", "abc", 0, 1}, {"abc", "abcd", 0, 0}, {"ab*", "abcd", 0, 1}, {"ab*", "ab", 0, 1},
      {"*cd", "abcd", 0, 1}, {"*cd", "abce", 0, 0}, {"*", "x", 0, 1},   {"*", "", 0, 0},
      {"ABC", "abc", 1, 1},  {"ABC", "abc", 0, 0},  {"*.COM", "x.com", 1, 1},
  };
  for (size_t i = 0; i < sizeof T / sizeof T[0]; i++)
    CHECK(istio_match(W(T[i].pat), W(T[i].v), T[i].nocase) == T[i].want, "istio_match %s %s", T[i].pat, T[i].v);
  static const struct { const char *net, *ip; int want; } C[] = {
      {"10.0.0.0/8", "10.255.1.2", 1}, {"10.0.0.0/8", "11.0.0.1", 0}, {"1.2.3.4", "1.2.3.4", 1},
      {"1.2.3.4", "1.2.3.5", 0},       {"0.0.0.0/0", "8.8.8.8", 1},   {"10.1.0.0/17", "10.1.127.1", 1},
      {"10.1.0.0/17", "10.1.128.1", 0}, {"fd00::/8", "fd12:3456::1", 1}, {"::1", "::1", 1},
      {"2001:db8::/32", "2001:db9::1", 0}, {"10.0.0.0/8", "::ffff:10.1.2.3", 1}, {"10.0.0.0/8", "fd00::1", 0},
      {"2001:db8::1:0:0:1/128", "2001:db8:0:0:1::1", 1}, {"::/0", "[::1]", 1},
  };
  for (size_t i = 0; i < sizeof C / sizeof C[0]; i++) {
    cidr net, ip;
    int ok = cidr_parse(W(C[i].net), &net) && ip_parse(W(C[i].ip), &ip);
    CHECK(ok, "parse %s %s", C[i].net, C[i].ip);
    if (ok) CHECK(cidr_contains(&net, &ip) == C[i].want, "%s contains %s want %d", C[i].net, C[i].ip, C[i].want);
  }
  static const char *BAD[] = {"10.0.0.0/33", "256.1.1.1", "1.2.3", "1.2.3.4.5", "::1::2", "fd00::/129", "abc", "1.2.3.4/", "01234::"};
  for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
    cidr c;
    CHECK(!cidr_parse(W(BAD[i]), &c), "cidr %s should fail", BAD[i]);
  }
}

int main(void) {
  arena a = {0, 0};
  test_regex(&a);
  test_json(&a);
  test_match();
  arena_free(&a);
  if (failures) {
    fprintf(stderr, "%d failure(s)\n", failures);
    return 1;
  }
  printf("native tests ok\n");
  return 0;
}
