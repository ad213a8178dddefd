/* zlib loaded on first use. See zlib_lazy.h. */
#include "zlib_lazy.h"

#include <pthread.h>
#include <stdio.h>

#include "lazylib.h"

typedef unsigned long z_ulong;

static struct {
  void *lib;
  char err[256];
  z_ulong (*bound)(z_ulong);
  int (*compress2)(unsigned char *, z_ulong *, const unsigned char *, z_ulong, int);
  int (*uncompress)(unsigned char *, z_ulong *, const unsigned char *, z_ulong);
} api;

static const llm_lazysym syms[] = {
  {"compressBound", (void **)&api.bound},
  {"compress2", (void **)&api.compress2},
  {"uncompress", (void **)&api.uncompress},
};

static pthread_once_t load_once = PTHREAD_ONCE_INIT;

static void load(void)
{
  api.lib = llm_lazylib_open("libz.so.1", "zlib1g", syms, sizeof syms / sizeof syms[0], api.err,
                             sizeof api.err);
}

int llm_zlib_load(char *err, size_t errlen)
{
  pthread_once(&load_once, load);
  if (!api.lib && err && errlen)
    snprintf(err, errlen, "%s", api.err);
  return api.lib ? 0 : -1;
}

size_t llm_zlib_bound(size_t len) { return (size_t)api.bound((z_ulong)len); }

int llm_zlib_compress(void *dst, size_t *dstlen, const void *src, size_t len, int level)
{
  z_ulong n = (z_ulong)*dstlen;
  int rc = api.compress2(dst, &n, src, (z_ulong)len, level);
  *dstlen = (size_t)n;
  return rc;
}

int llm_zlib_uncompress(void *dst, size_t *dstlen, const void *src, size_t len)
{
  z_ulong n = (z_ulong)*dstlen;
  int rc = api.uncompress(dst, &n, src, (z_ulong)len);
  *dstlen = (size_t)n;
  return rc;
}
