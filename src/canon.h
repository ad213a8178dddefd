/* The canonical JSON spelling behind the cache's keys: one spelling per
 * value (lualib/llm/cache_canon.lua says what it is for; src/lmod_canon.c
 * walks Lua values and writes them with these pieces).
 *
 *   strings  escaped one way: \" \\ \b \f \n \r \t, other control bytes
 *            (and DEL) as \u00XX, every other byte as it is;
 *   numbers  integers and integral doubles as integers (1, 1.0 -> "1",
 *            -0.0 -> "0"), other doubles in the shortest of %.15g / %.17g
 *            that reads back as the same double, NaN and infinities as
 *            the strings "NaN", "Infinity", "-Infinity";
 *   keys     ordered by their bytes (shorter first on a common prefix).
 *
 * An engine (no lua.h), so tests/fuzz/fuzz_canon.c can fuzz it alone. */
#ifndef LLMRUN_CANON_H
#define LLMRUN_CANON_H

#include <stddef.h>

#include "buf.h"

#define CANON_NUMBER_MAX 48 /* bytes a number's text may need, NUL included */

/* Output goes to an llm_buf (buf.h); its `failed` is set (and stays)
 * when memory ran out. */

/* A string literal, quotes included. */
void canon_put_string(llm_buf *b, const char *s, size_t len);
/* The text of a number into buf (CANON_NUMBER_MAX bytes); its length. */
size_t canon_integer(long long i, char *buf);
size_t canon_number(double x, char *buf);
/* Key order: <0, 0 or >0, as memcmp with the shorter first on a tie. */
int canon_key_compare(const char *a, size_t alen, const char *b, size_t blen);

#endif
