#include "match.h"

int istio_match(wstr pat, wstr v, int nocase) {
  if (pat.n == 1 && pat.p[0] == '*') return v.n > 0;
  if (pat.n > 0 && pat.p[pat.n - 1] == '*') {
    wstr pre = {pat.p, pat.n - 1};
    return nocase ? wstr_has_prefix_nocase(v, pre) : wstr_has_prefix(v, pre);
  }
  if (pat.n > 0 && pat.p[0] == '*') {
    wstr suf = {pat.p + 1, pat.n - 1};
    return nocase ? wstr_has_suffix_nocase(v, suf) : wstr_has_suffix(v, suf);
  }
  return nocase ? wstr_eq_nocase(pat, v) : wstr_eq(pat, v);
}

static int parse_v4(wstr s, uint8_t *out) {
  uint32_t i = 0;
  for (int part = 0; part < 4; part++) {
    uint32_t v = 0, digits = 0;
    while (i < s.n && s.p[i] >= '0' && s.p[i] <= '9') {
      v = v * 10u + (uint32_t)(s.p[i++] - '0');
      if (++digits > 3 || v > 255) return 0;
    }
    if (digits == 0) return 0;
    out[part] = (uint8_t)v;
    if (part < 3) {
      if (i >= s.n || s.p[i] != '.') return 0;
      i++;
    }
  }
  return i == s.n;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = lower_ascii(c);
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

static int parse_v6(wstr s, uint8_t *out) {
  uint16_t words[8];
  int n = 0, gap = -1;
  uint32_t i = 0;
  if (s.n >= 2 && s.p[0] == ':' && s.p[1] == ':') { gap = 0; i = 2; }
  while (i < s.n) {
    if (n >= 8) return 0;
    /* embedded IPv4 tail */
    uint32_t j = i;
    while (j < s.n && s.p[j] != ':' && s.p[j] != '.') j++;
    if (j < s.n && s.p[j] == '.') {
      uint8_t v4[4];
      if (n > 6 || !parse_v4((wstr){s.p + i, s.n - i}, v4)) return 0;
      words[n++] = (uint16_t)(v4[0] << 8 | v4[1]);
      words[n++] = (uint16_t)(v4[2] << 8 | v4[3]);
      i = s.n;
      break;
    }
    uint32_t v = 0, digits = 0;
    while (i < s.n && hexval(s.p[i]) >= 0) {
      v = (v << 4) | (uint32_t)hexval(s.p[i++]);
      if (++digits > 4) return 0;
    }
    if (digits == 0) return 0;
    words[n++] = (uint16_t)v;
    if (i == s.n) break;
    if (s.p[i] != ':') return 0;
    i++;
    if (i < s.n && s.p[i] == ':') {
      if (gap >= 0) return 0;
      gap = n;
      i++;
    } else if (i == s.n) {
      return 0;
    }
  }
  if (gap < 0 && n != 8) return 0;
  if (gap >= 0 && n > 7) return 0;
  uint16_t full[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  if (gap < 0) {
    for (int k = 0; k < 8; k++) full[k] = words[k];
  } else {
    for (int k = 0; k < gap; k++) full[k] = words[k];
    int tail = n - gap;
    for (int k = 0; k < tail; k++) full[8 - tail + k] = words[gap + k];
  }
  for (int k = 0; k < 8; k++) {
    out[2 * k] = (uint8_t)(full[k] >> 8);
    out[2 * k + 1] = (uint8_t)full[k];
  }
  return 1;
}

int ip_parse(wstr s, cidr *out) {
  weft_memset(out, 0, sizeof(cidr));
  if (s.n >= 2 && s.p[0] == '[' && s.p[s.n - 1] == ']') s = (wstr){s.p + 1, s.n - 2};
  if (parse_v4(s, out->addr)) {
    out->bits = 32;
    return 1;
  }
  if (!parse_v6(s, out->addr)) return 0;
  out->v6 = 1;
  out->bits = 128;
  static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
  int is_mapped = 1;
  for (int k = 0; k < 12; k++)
    if (out->addr[k] != mapped[k]) is_mapped = 0;
  if (is_mapped) {
    for (int k = 0; k < 4; k++) out->addr[k] = out->addr[12 + k];
    weft_memset(out->addr + 4, 0, 12);
    out->v6 = 0;
    out->bits = 32;
  }
  return 1;
}

int cidr_parse(wstr s, cidr *out) {
  uint32_t slash = s.n;
  for (uint32_t i = 0; i < s.n; i++)
    if (s.p[i] == '/') { slash = i; break; }
  if (!ip_parse((wstr){s.p, slash}, out)) return 0;
  if (slash == s.n) return 1;
  uint64_t bits;
  if (!wstr_to_u64((wstr){s.p + slash + 1, s.n - slash - 1}, &bits)) return 0;
  if (bits > (out->v6 ? 128u : 32u)) return 0;
  out->bits = (uint8_t)bits;
  return 1;
}

int cidr_contains(const cidr *net, const cidr *ip) {
  if (net->v6 != ip->v6) return 0;
  uint32_t bits = net->bits;
  for (uint32_t k = 0; bits > 0; k++) {
    uint8_t mask = bits >= 8 ? 0xFF : (uint8_t)(0xFF << (8 - bits));
    if ((net->addr[k] & mask) != (ip->addr[k] & mask)) return 0;
    bits = bits >= 8 ? bits - 8 : 0;
  }
  return 1;
}
