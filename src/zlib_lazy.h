/* zlib, loaded on first use (the lazylib scheme of curl_lazy.h): the
 * shared Redis cache compresses large values, and nothing else in llmrun
 * needs zlib, so runs that do not share a cache never load it. Debian's
 * zlib1g is a required package, present on every system. */
#ifndef LLMRUN_ZLIB_LAZY_H
#define LLMRUN_ZLIB_LAZY_H

#include <stddef.h>

/* 0, or -1 with a message in err. Thread-safe. */
int llm_zlib_load(char *err, size_t errlen);
/* The most bytes compressing len bytes can take. Needs llm_zlib_load. */
size_t llm_zlib_bound(size_t len);
/* zlib's compress2 and uncompress: 0, or zlib's error code. *dstlen is
 * the room in dst on entry and the bytes written on return. */
int llm_zlib_compress(void *dst, size_t *dstlen, const void *src, size_t len, int level);
int llm_zlib_uncompress(void *dst, size_t *dstlen, const void *src, size_t len);

#endif
