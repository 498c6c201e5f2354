/* RE2-subset regex: AST → Thompson program → Pike VM full match (linear time). */
#include "regex_internal.h"

typedef struct {
  rinst *prog;
  int n;
  const char **err;
} rc;

static int emit(rc *c, uint8_t op) {
  if (c->n >= RE_MAX_PROG) { *c->err = "pattern too large"; return -1; }
  weft_memset(&c->prog[c->n], 0, sizeof(rinst));
  c->prog[c->n].op = op;
  return c->n++;
}

static int gen(rc *c, const rnode *r) {
  int s, j;
  switch (r->k) {
    case N_EMPTY: return 0;
    case N_CHAR: if ((s = emit(c, I_CHAR)) < 0) return -1; c->prog[s].c = r->c; return 0;
    case N_SET: if ((s = emit(c, I_SET)) < 0) return -1; c->prog[s].set = r->set; return 0;
    case N_CAT: return gen(c, r->a) < 0 ? -1 : gen(c, r->b);
    case N_ALT:
      if ((s = emit(c, I_SPLIT)) < 0) return -1;
      c->prog[s].x = c->n;
      if (gen(c, r->a) < 0 || (j = emit(c, I_JMP)) < 0) return -1;
      c->prog[s].y = c->n;
      if (gen(c, r->b) < 0) return -1;
      c->prog[j].x = c->n;
      return 0;
    case N_STAR:
      if ((s = emit(c, I_SPLIT)) < 0) return -1;
      c->prog[s].x = c->n;
      if (gen(c, r->a) < 0 || (j = emit(c, I_JMP)) < 0) return -1;
      c->prog[j].x = s;
      c->prog[s].y = c->n;
      return 0;
    case N_PLUS:
      s = c->n;
      if (gen(c, r->a) < 0 || (j = emit(c, I_SPLIT)) < 0) return -1;
      c->prog[j].x = s;
      c->prog[j].y = c->n;
      return 0;
    case N_QUEST:
      if ((s = emit(c, I_SPLIT)) < 0) return -1;
      c->prog[s].x = c->n;
      if (gen(c, r->a) < 0) return -1;
      c->prog[s].y = c->n;
      return 0;
    case N_REP: {
      for (int k = 0; k < r->min; k++)
        if (gen(c, r->a) < 0) return -1;
      if (r->max < 0) {
        rnode star = {N_STAR, 0, 0, r->a, 0, 0, 0};
        return gen(c, &star);
      }
      rnode q = {N_QUEST, 0, 0, r->a, 0, 0, 0};
      for (int k = r->min; k < r->max; k++)
        if (gen(c, &q) < 0) return -1;
      return 0;
    }
  }
  return -1;
}

regex *regex_compile(arena *a, wstr pat, const char **err) {
  rnode *root = regex_parse(a, pat, err);
  if (root == 0) return 0;
  regex *re = (regex *)arena_alloc(a, sizeof(regex));
  if (re == 0) { *err = "out of memory"; return 0; }
  static rinst scratch[RE_MAX_PROG]; /* compile here, then keep only what was used */
  rc c = {scratch, 0, err};
  if (gen(&c, root) < 0 || emit(&c, I_MATCH) < 0) return 0;
  rinst *prog = (rinst *)arena_alloc(a, sizeof(rinst) * (size_t)c.n);
  if (prog == 0) { *err = "out of memory"; return 0; }
  weft_memcpy(prog, scratch, sizeof(rinst) * (size_t)c.n);
  re->prog = prog;
  re->n = c.n;
  re->clist = (int *)arena_alloc(a, sizeof(int) * (size_t)c.n);
  re->nlist = (int *)arena_alloc(a, sizeof(int) * (size_t)c.n);
  re->stack = (int *)arena_alloc(a, sizeof(int) * ((size_t)c.n * 2 + 2));
  re->mark = (uint32_t *)arena_alloc(a, sizeof(uint32_t) * (size_t)c.n);
  if (!re->clist || !re->nlist || !re->stack || !re->mark) { *err = "out of memory"; return 0; }
  weft_memset(re->mark, 0, sizeof(uint32_t) * (size_t)c.n);
  re->gen = 0;
  return re;
}

/* Adds pc and everything reachable through JMP/SPLIT to list (once per generation). */
static int add(regex *re, int *list, int cnt, int pc) {
  int sp = 0;
  re->stack[sp++] = pc;
  while (sp > 0) {
    int q = re->stack[--sp];
    if (re->mark[q] == re->gen) continue;
    re->mark[q] = re->gen;
    rinst *in = &re->prog[q];
    if (in->op == I_JMP) re->stack[sp++] = in->x;
    else if (in->op == I_SPLIT) { re->stack[sp++] = in->y; re->stack[sp++] = in->x; }
    else list[cnt++] = q;
  }
  return cnt;
}

static void next_gen(regex *re) {
  if (++re->gen == 0) {
    weft_memset(re->mark, 0, sizeof(uint32_t) * (size_t)re->n);
    re->gen = 1;
  }
}

int regex_full_match(regex *re, wstr s) {
  next_gen(re);
  int nc = add(re, re->clist, 0, 0);
  for (uint32_t i = 0; i < s.n && nc > 0; i++) {
    unsigned char ch = (unsigned char)s.p[i];
    next_gen(re);
    int nn = 0;
    for (int k = 0; k < nc; k++) {
      rinst *in = &re->prog[re->clist[k]];
      if ((in->op == I_CHAR && in->c == ch) || (in->op == I_SET && set_has(in->set, ch)))
        nn = add(re, re->nlist, nn, re->clist[k] + 1);
    }
    int *t = re->clist;
    re->clist = re->nlist;
    re->nlist = t;
    nc = nn;
  }
  for (int k = 0; k < nc; k++)
    if (re->prog[re->clist[k]].op == I_MATCH) return 1;
  return 0;
}
