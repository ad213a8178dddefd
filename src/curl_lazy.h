/* libcurl is loaded on first use, not at start-up.
 *
 * Linking libcurl pulls in some thirty shared libraries (OpenSSL, GSSAPI,
 * LDAP, SSH, RTMP...), which alone costs ~10 ms before main() runs: more
 * than the rest of llmrun's start-up together. So llmrun does not link it;
 * curl_lazy.c defines the curl_* functions llmrun uses as small forwarders
 * that dlopen("libcurl.so.4") on the first call, run curl_global_init
 * once, and call through. Code keeps including <curl/curl.h> and calling
 * curl_* as usual; the forwarders are hidden symbols, so the loaded
 * libcurl never binds to them. */
#ifndef LLMRUN_CURL_LAZY_H
#define LLMRUN_CURL_LAZY_H

#include <curl/curl.h>
#include <stddef.h>

/* Loads libcurl if needed: 0, or -1 with a message in err. Thread-safe.
 * A forwarder called when libcurl cannot be loaded aborts with that
 * message, so check this first where failure must be graceful. */
int llm_curl_load(char *err, size_t errlen);
int llm_curl_is_loaded(void);
/* curl_global_cleanup, if libcurl was loaded. */
void llm_curl_cleanup(void);

#endif
