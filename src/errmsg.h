/* One way for the engines to report a failure into a caller's buffer:
 * functions that can fail take (char *err, size_t n) and fill it with a
 * message the binding hands to Lua as err.message. */
#ifndef LLMRUN_ERRMSG_H
#define LLMRUN_ERRMSG_H

#include <stddef.h>

/* printf into err (n bytes, always terminated); err NULL or n 0: nothing
 * is written, so a caller that does not want the message passes NULL. */
void llm_errf(char *err, size_t n, const char *fmt, ...)
#if defined(__GNUC__)
  __attribute__((format(printf, 3, 4)))
#endif
  ;

#endif
