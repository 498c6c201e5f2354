/* Istio-style string matching and CIDR parsing shared by the plugins. */
#ifndef WEFT_MATCH_H
#define WEFT_MATCH_H

#include "weft_rt.h"

/* Istio string match: "abc" exact, "abc*" prefix, "*abc" suffix, "*" presence (non-empty). */
int istio_match(wstr pattern, wstr value, int nocase);

typedef struct {
  uint8_t addr[16];
  uint8_t v6;
  uint8_t bits;
} cidr;

/* "10.0.0.0/8", "10.1.2.3" (= /32), "fd00::/8", "::1". Returns 0 when malformed. */
int cidr_parse(wstr s, cidr *out);
/* Parses a bare IP (no prefix); brackets allowed for IPv6; IPv4-mapped IPv6 becomes IPv4. */
int ip_parse(wstr s, cidr *out);
int cidr_contains(const cidr *net, const cidr *ip);

#endif
