/* A minimal table-friendly test harness for the C engine tests.
 * CHECK records a failure with file:line and keeps going, so one run shows
 * every broken case; check_report() prints "N passed, N failed" and gives
 * the exit status for ctest. */
#ifndef LLMRUN_CHECK_H
#define LLMRUN_CHECK_H

#include <stdio.h>
#include <string.h>

extern int check_passed, check_failed;

void check_fail(const char *file, int line, const char *fmt, ...);
int check_report(const char *suite);

#define CHECK(cond) \
  do { if (cond) check_passed++; \
       else check_fail(__FILE__, __LINE__, "CHECK(%s)", #cond); } while (0)

#define CHECK_INT(got, want) \
  do { long long g_ = (long long)(got), w_ = (long long)(want); \
       if (g_ == w_) check_passed++; \
       else check_fail(__FILE__, __LINE__, "%s == %lld, want %lld", #got, g_, w_); \
  } while (0)

#define CHECK_STR(got, want) \
  do { const char *g_ = (got), *w_ = (want); \
       if (g_ && w_ && strcmp(g_, w_) == 0) check_passed++; \
       else check_fail(__FILE__, __LINE__, "%s == \"%s\", want \"%s\"", #got, \
                       g_ ? g_ : "(null)", w_ ? w_ : "(null)"); } while (0)

#define CHECK_MEM(got, gotlen, want, wantlen) \
  do { size_t gl_ = (gotlen), wl_ = (wantlen); \
       if (gl_ == wl_ && memcmp((got), (want), gl_) == 0) check_passed++; \
       else check_fail(__FILE__, __LINE__, "%s: %zu bytes differ from %zu expected", \
                       #got, gl_, wl_); } while (0)

#endif
