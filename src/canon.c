/* The canonical JSON spelling of cache keys. See canon.h. */
#include "canon.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void canon_put_string(llm_buf *b, const char *s, size_t len)
{
  static const char hex[] = "0123456789abcdef";
  size_t run = 0; /* bytes copied as they are, in one go */
  llm_buf_putc(b, '"');
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c != '"' && c != '\\' && c >= 0x20 && c != 0x7f)
      continue;
    llm_buf_put(b, s + run, i - run);
    run = i + 1;
    switch (c) {
    case '"': llm_buf_put(b, "\\\"", 2); break;
    case '\\': llm_buf_put(b, "\\\\", 2); break;
    case '\b': llm_buf_put(b, "\\b", 2); break;
    case '\f': llm_buf_put(b, "\\f", 2); break;
    case '\n': llm_buf_put(b, "\\n", 2); break;
    case '\r': llm_buf_put(b, "\\r", 2); break;
    case '\t': llm_buf_put(b, "\\t", 2); break;
    default: {
      char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
      llm_buf_put(b, u, 6);
    }
    }
  }
  llm_buf_put(b, s + run, len - run);
  llm_buf_putc(b, '"');
}

size_t canon_integer(long long i, char *buf)
{
  return (size_t)snprintf(buf, CANON_NUMBER_MAX, "%lld", i);
}

size_t canon_number(double x, char *buf)
{
  int n;
  if (isnan(x))
    return (size_t)snprintf(buf, CANON_NUMBER_MAX, "\"NaN\"");
  if (isinf(x))
    return (size_t)snprintf(buf, CANON_NUMBER_MAX, x > 0 ? "\"Infinity\"" : "\"-Infinity\"");
  /* integral and within 64 bits: as the integer (Lua's math.tointeger) */
  if (x == floor(x) && x >= -9223372036854775808.0 && x < 9223372036854775808.0)
    return canon_integer((long long)x, buf);
  n = snprintf(buf, CANON_NUMBER_MAX, "%.15g", x);
  if (strtod(buf, NULL) != x)
    n = snprintf(buf, CANON_NUMBER_MAX, "%.17g", x);
  return (size_t)n;
}

int canon_key_compare(const char *a, size_t alen, const char *b, size_t blen)
{
  int c = memcmp(a, b, alen < blen ? alen : blen);
  if (c)
    return c;
  return alen < blen ? -1 : alen > blen;
}
