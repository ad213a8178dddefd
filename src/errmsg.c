/* llm_errf: see errmsg.h. */
#include "errmsg.h"

#include <stdarg.h>
#include <stdio.h>

void llm_errf(char *err, size_t n, const char *fmt, ...)
{
  va_list ap;
  if (!err || n == 0)
    return;
  va_start(ap, fmt);
  vsnprintf(err, n, fmt, ap);
  va_end(ap);
}
