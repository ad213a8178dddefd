/* Loading a shared library on first use: dlopen plus a table of symbols.
 * Used by the forwarders that keep libcurl (curl_lazy.c) and libmicrohttpd
 * (mhd_lazy.c) out of llmrun's start-up. */
#ifndef LLMRUN_LAZYLIB_H
#define LLMRUN_LAZYLIB_H

#include <stddef.h>

/* A symbol to resolve and where its address goes (a function pointer's
 * address, cast: POSIX lets dlsym results be stored this way). */
typedef struct llm_lazysym {
  const char *name;
  void **slot;
} llm_lazysym;

/* dlopen(soname) and resolve every symbol. Returns the handle, or NULL with
 * a message in err that names the Debian package to install. */
void *llm_lazylib_open(const char *soname, const char *package, const llm_lazysym *syms,
                       size_t n, char *err, size_t errlen);

#endif
