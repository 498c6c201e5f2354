/* Internals of the regex engine shared by regex_parse.c (pattern → AST) and regex.c
 * (AST → program, Pike VM). */
#ifndef WEFT_REGEX_INTERNAL_H
#define WEFT_REGEX_INTERNAL_H

#include "regex.h"

#define RE_MAX_PROG 4096
#define RE_MAX_DEPTH 64

enum { N_EMPTY, N_CHAR, N_SET, N_CAT, N_ALT, N_STAR, N_PLUS, N_QUEST, N_REP };
enum { I_CHAR, I_SET, I_SPLIT, I_JMP, I_MATCH };

typedef struct rnode {
  int k;
  unsigned char c;
  uint8_t *set; /* 32 bytes */
  struct rnode *a, *b;
  int min, max; /* N_REP; max -1 = unbounded */
} rnode;

typedef struct {
  uint8_t op;
  unsigned char c;
  uint8_t *set;
  int x, y;
} rinst;

struct regex {
  rinst *prog;
  int n;
  int *clist, *nlist, *stack;
  uint32_t *mark;
  uint32_t gen;
};

static inline int set_has(const uint8_t *set, unsigned c) { return (set[c >> 3] >> (c & 7)) & 1; }

/* Parses a pattern (leading (?i) and ^ handled) into an AST; 0 with *err on error. */
rnode *regex_parse(arena *a, wstr pattern, const char **err);

#endif
