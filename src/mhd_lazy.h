/* libmicrohttpd is loaded when the simulator first starts, not at start-up.
 *
 * Debian's libmicrohttpd links GnuTLS, whose load-time initialisation (and
 * the libraries it pulls in: nettle, gmp, p11-kit, idn2...) costs ~10 ms
 * before main() runs, measured with hyperfine on an empty program: more
 * than the rest of llmrun's start-up, for a server most runs never start.
 * So llmrun does not link it: mhd_lazy.c defines the MHD_* functions the
 * simulator uses as hidden forwarders that dlopen("libmicrohttpd.so.12")
 * on first call (the same scheme as libcurl's, curl_lazy.h on main). */
#ifndef LLMRUN_MHD_LAZY_H
#define LLMRUN_MHD_LAZY_H

#include <stddef.h>

/* Loads libmicrohttpd if needed: 0, or -1 with a message in err.
 * Thread-safe. A forwarder called when the library cannot be loaded
 * aborts with that message, so the server checks this first. */
int llm_mhd_load(char *err, size_t errlen);

#endif
