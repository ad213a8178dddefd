/* A small-block allocator for the Lua state: free lists per size class,
 * carved from 64 KiB slabs, behind Lua's allocator interface.
 *
 * Why: a warm call allocates and frees some thousands of small Lua objects
 * (strings, tables, closures, their arrays). Through glibc, a collection
 * frees them in bursts the per-thread cache cannot hold, and every larger
 * request then consolidates the fast bins: malloc was about a quarter of
 * the gateway's CPU per request. Lua always tells the allocator a block's
 * size, so a pool needs no header per block: a free is a push on its
 * class's list, an allocation a pop.
 *
 * Blocks of up to LLM_POOL_MAX bytes come from the pool; larger ones from
 * malloc. Slabs stay with the pool until llm_pool_free (a state's small
 * objects come back in the same sizes; the memory limit counts what Lua
 * uses, not what the pool holds). One pool per Lua state, one thread.
 * Under AddressSanitizer the pool passes everything to malloc, so a use
 * after free is still caught. */
#ifndef LLMRUN_POOL_ALLOC_H
#define LLMRUN_POOL_ALLOC_H

#include <stddef.h>

#define LLM_POOL_MAX 512

typedef struct llm_pool llm_pool;

/* NULL when out of memory. */
llm_pool *llm_pool_new(void);
/* Frees every slab: only after the Lua state using it is closed. */
void llm_pool_free(llm_pool *p);

/* lua_Alloc's contract, ud being the pool: nsize 0 frees (returns NULL);
 * ptr NULL allocates (osize is then a type tag, ignored); otherwise
 * resizes a block of osize bytes. NULL when out of memory (the old block
 * is kept). */
void *llm_pool_alloc(void *ud, void *ptr, size_t osize, size_t nsize);

/* Bytes the pool holds in slabs (for tests and reports). */
size_t llm_pool_reserved(const llm_pool *p);
/* 0 in a sanitizer build, where every block goes to malloc. */
int llm_pool_active(void);

#endif
