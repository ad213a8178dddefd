/* The in-memory layer of the response cache: a least-recently-used map
 * from byte-string keys to byte-string values under a byte budget. Hits
 * from here cost a hash lookup and no system call, so a hot working set
 * never touches sqlite. Values carry their expiry time (epoch seconds,
 * 0 = never) so a TTL holds in memory too. Single-threaded. */
#ifndef LLMRUN_CACHE_LRU_H
#define LLMRUN_CACHE_LRU_H

#include <stddef.h>

typedef struct llm_lru llm_lru;

typedef struct llm_lru_value {
  const char *data;     /* valid until the next call that changes the map */
  size_t len;
  double created;       /* epoch seconds */
  double expires;       /* epoch seconds, 0 = never */
} llm_lru_value;

/* budget: bytes the keys, values and bookkeeping may take together. */
llm_lru *llm_lru_new(size_t budget);
void llm_lru_free(llm_lru *m);

/* 1 and *out on a hit (the entry becomes the most recent); 0 on a miss.
 * An entry whose expiry is <= now is dropped and reported as a miss. */
int llm_lru_get(llm_lru *m, const void *key, size_t klen, double now, llm_lru_value *out);
/* Inserts or replaces, then evicts the least recently used entries until
 * the budget holds. An entry larger than the whole budget is not kept.
 * 0, or -1 when out of memory (the map is unchanged). */
int llm_lru_put(llm_lru *m, const void *key, size_t klen, const void *data, size_t len,
                double created, double expires);
void llm_lru_del(llm_lru *m, const void *key, size_t klen);
void llm_lru_clear(llm_lru *m);

size_t llm_lru_bytes(const llm_lru *m);
size_t llm_lru_count(const llm_lru *m);
size_t llm_lru_budget(const llm_lru *m);

#endif
