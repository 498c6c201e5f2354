/* A small RE2-subset regex engine: full-match only, linear time (Pike VM, no backtracking),
 * byte-oriented. Supported: literals, '.', classes [a-z] [^...] with \d\w\s inside, escapes
 * \d \D \w \W \s \S and escaped punctuation, groups (...) and (?:...), alternation |,
 * quantifiers * + ? {n} {n,} {n,m} (a trailing '?' for laziness is accepted: full match makes
 * it irrelevant), '^' at the start and '$' at the end (full match implies them), and a leading
 * (?i). Not supported (rejected at compile time): backreferences (RE2 has none either),
 * lookaround, named classes [[:alpha:]], \b, Unicode classes \p{..}. '.' matches one byte. */
#ifndef WEFT_REGEX_H
#define WEFT_REGEX_H

#include "weft_rt.h"

typedef struct regex regex;

/* Returns 0 and sets *err on a syntax error or a program over the size limit. */
regex *regex_compile(arena *a, wstr pattern, const char **err);
int regex_full_match(regex *re, wstr s);

#endif
