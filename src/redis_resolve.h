/* A host name resolved off the loop thread, for the Redis client.
 *
 * hiredis resolves a name with getaddrinfo inside its connect call, which
 * can block for seconds on a slow DNS server: with thousands of model
 * calls on the same loop, no Redis connection may do that. So the client
 * hands hiredis an address: names are resolved here, on a short-lived
 * thread that reports back through a pipe the loop watches. Addresses
 * (127.0.0.1, ::1) need no thread. No lua.h. */
#ifndef LLMRUN_REDIS_RESOLVE_H
#define LLMRUN_REDIS_RESOLVE_H

#include <stddef.h>

#include "loop.h"

typedef struct llm_resolve llm_resolve;

/* Called from a loop turn: the first address of host as text, or NULL and
 * a message. */
typedef void (*llm_resolve_fn)(void *ud, const char *address, const char *error);

/* 1 when host is a numeric IPv4 or IPv6 address. */
int llm_resolve_is_address(const char *host);
/* Starts resolving host; fn(ud, ...) runs once, later, unless cancelled.
 * NULL (and errno) when no thread or pipe could be made. */
llm_resolve *llm_resolve_start(llm_loop *loop, const char *host, llm_resolve_fn fn, void *ud);
/* fn will not be called; the thread finishes on its own. */
void llm_resolve_cancel(llm_resolve *rs);

#endif
