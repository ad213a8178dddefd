/* libhiredis is loaded on first use, not at start-up, like libcurl
 * (curl_lazy.h): most runs never talk to Redis, and a build machine
 * without it still builds and runs everything else. hiredis_lazy.c
 * defines the few hiredis functions the Redis client (redis_client.c)
 * calls as hidden forwarders that dlopen the library matching the headers
 * we were built with (libhiredis.so.<HIREDIS_SONAME>, so the structures
 * we read agree with the code that fills them). */
#ifndef LLMRUN_HIREDIS_LAZY_H
#define LLMRUN_HIREDIS_LAZY_H

#include <stddef.h>

/* Loads libhiredis if needed: 0, or -1 with a message in err naming the
 * Debian package. Thread-safe. A forwarder called when the library cannot
 * be loaded aborts, so the client checks this first. */
int llm_hiredis_load(char *err, size_t errlen);

#endif
