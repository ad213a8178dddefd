#include "check.h"

#include <stdarg.h>

int check_passed, check_failed;

void check_fail(const char *file, int line, const char *fmt, ...)
{
  va_list ap;
  check_failed++;
  fprintf(stderr, "%s:%d: FAIL ", file, line);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

int check_report(const char *suite)
{
  printf("%s: %d passed, %d failed\n", suite, check_passed, check_failed);
  return check_failed == 0 && check_passed > 0 ? 0 : 1;
}
