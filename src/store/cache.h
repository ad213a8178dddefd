/* The cache store: LLM responses, embedding vectors and semantic-cache
 * vectors in one sqlite file, with an in-memory LRU in front.
 *
 * The file: $XDG_CACHE_HOME/llmrun/cache.db by default, created 0600 (before
 * sqlite opens it, so the -wal and -shm files sqlite derives from it are
 * 0600 too) in a 0700 directory. WAL journal with synchronous=NORMAL: a
 * crash of the process loses nothing committed, readers never block the
 * writer, and several processes may share the file (one host, local disk).
 * Every write is one BEGIN IMMEDIATE transaction, so a writer that has to
 * wait does so in the busy handler (busy_timeout) instead of failing with
 * SQLITE_BUSY halfway through. The schema carries its version in
 * PRAGMA user_version; migrations run once, in order, each in the same
 * transaction as the version bump, and a file from a newer llmrun is
 * refused rather than guessed at.
 *
 * Entries live in namespaces and are keyed by 32-byte hashes the caller
 * computes (the Lua layer hashes a canonical form of the request). They may
 * expire (TTL); the whole store may be bounded in bytes, evicting the
 * entries stored longest ago (least recently stored: a hit costs no write,
 * so reads stay fast and never contend for the write lock).
 *
 * Time is passed in (epoch seconds) so tests control expiry. No lua.h. */
#ifndef LLMRUN_CACHE_H
#define LLMRUN_CACHE_H

#include <stddef.h>
#include <stdint.h>

#define LLM_CACHE_KEY_SIZE 32
/* The schema this build writes; see the migrations in cache.c. */
#define LLM_CACHE_SCHEMA_VERSION 3

typedef struct llm_cache llm_cache;

typedef struct llm_cache_config {
  const char *path;         /* NULL: llm_cache_default_path() */
  size_t memory_bytes;      /* LRU budget; 0: no memory layer */
  int64_t max_bytes;        /* bound on stored bytes; 0: unbounded */
  size_t max_entry_bytes;   /* larger values are refused (ETOOBIG); 0: 64 MiB */
  int busy_timeout_ms;      /* 0: 5000 */
  int readonly;             /* open an existing file for reading only */
  int schema_limit;         /* tests: migrate no further than this; 0: all */
  int defer_puts;           /* puts wait in memory for llm_cache_write_deferred */
} llm_cache_config;

enum llm_cache_status {
  LLM_CACHE_OK = 0,
  LLM_CACHE_MISS = 1,
  LLM_CACHE_EIO = -1,       /* sqlite or file system failure */
  LLM_CACHE_ENOMEM = -2,
  LLM_CACHE_ENEWER = -3,    /* written by a newer llmrun: refused */
  LLM_CACHE_ECORRUPT = -4,  /* not a database, or a damaged one */
  LLM_CACHE_EREADONLY = -5, /* the file or its directory is read-only */
  LLM_CACHE_EFULL = -6,     /* disk full or file size limit */
  LLM_CACHE_EFOREIGN = -7,  /* a database of some other program */
  LLM_CACHE_ETOOBIG = -8,   /* value over max_entry_bytes */
  LLM_CACHE_EMISUSE = -9    /* bad argument */
};

/* Short name of a status: "ok", "miss", "io", "newer_schema", "corrupt"... */
const char *llm_cache_status_name(int status);

/* "<$XDG_CACHE_HOME or ~/.cache>/llmrun/cache.db"; with create_dir the
 * directory is made (0700). 0, or -1 with errno. */
int llm_cache_default_path(char *out, size_t n, int create_dir);

/* Opens (creating and migrating as needed). NULL on failure, with the
 * status in *status and a message naming the file in err. */
llm_cache *llm_cache_open(const llm_cache_config *cfg, int *status, char *err, size_t errlen);
/* Writes pending statistics and closes. NULL is harmless. */
void llm_cache_close(llm_cache *c);

const char *llm_cache_path(const llm_cache *c);
/* The message of the last failure. */
const char *llm_cache_errmsg(const llm_cache *c);
int llm_cache_is_readonly(const llm_cache *c);
/* Why a store opened for writing could only be opened read-only (a
 * read-only file, directory or file system), or "" when read-only was
 * asked for or the store is writable. Such a store serves what it holds
 * and refuses writes. */
const char *llm_cache_readonly_reason(const llm_cache *c);
int llm_cache_schema_version(const llm_cache *c);

/* ---- responses ---------------------------------------------------------------- */

typedef struct llm_cache_hit {
  const char *data;         /* valid until the next call on this cache */
  size_t len;
  double created, expires;  /* epoch seconds; expires 0: never */
  int from_memory;          /* served by the LRU */
} llm_cache_hit;

/* OK with *hit, MISS (also for an expired entry), or an error. */
int llm_cache_get(llm_cache *c, const char *ns, const uint8_t key[LLM_CACHE_KEY_SIZE],
                  double now, llm_cache_hit *hit);
/* Stores (replacing), in one transaction with pending statistics and
 * any eviction. ttl: seconds, 0: never expires. */
int llm_cache_put(llm_cache *c, const char *ns, const uint8_t key[LLM_CACHE_KEY_SIZE],
                  const void *data, size_t len, double now, double ttl);
int llm_cache_delete(llm_cache *c, const char *ns, const uint8_t key[LLM_CACHE_KEY_SIZE]);

/* With defer_puts, a put waits in memory (gets in this process find it)
 * until this writes every waiting one in one transaction; any other write,
 * the statistics, info and close write them first. The caller calls it
 * soon after a put (llmrun: 50 ms): another process sees an entry only
 * then. A failed write drops the batch (a full disk would fail again) and
 * counts its entries in llm_cache_deferred_failures. */
int llm_cache_write_deferred(llm_cache *c);
/* Puts waiting to be written. */
int llm_cache_deferred(const llm_cache *c);
long llm_cache_deferred_failures(const llm_cache *c);
/* Why the last failed batch failed ("" when none has). */
const char *llm_cache_deferred_error(const llm_cache *c);
/* Removes a namespace's entries, vectors and statistics (ns NULL: the
 * whole store, embeddings and audit records included); with expired_only,
 * only entries expired at now. *removed: entries removed (may be NULL). */
int llm_cache_clear(llm_cache *c, const char *ns, int expired_only, double now,
                    int64_t *removed);

/* ---- statistics ------------------------------------------------------------------ */

enum llm_cache_counter {
  LLM_CC_HITS_EXACT, LLM_CC_HITS_SEMANTIC, LLM_CC_HITS_SHARED, LLM_CC_MISSES,
  LLM_CC_STORES, LLM_CC_SKIPPED, LLM_CC_ERRORS, LLM_CC_TOKENS_SAVED,
  LLM_CC_COST_SAVED, LLM_CC_TIME_SAVED_MS, LLM_CC_COUNT
};

typedef struct llm_cache_counts {
  double v[LLM_CC_COUNT];
} llm_cache_counts;

/* Column name of a counter ("hits_exact", ...), NULL past the end. */
const char *llm_cache_counter_name(int counter);
/* Adds to a counter in memory; written with the next write or flush. */
int llm_cache_count(llm_cache *c, const char *ns, int counter, double amount);
int llm_cache_flush(llm_cache *c);

typedef struct llm_cache_ns_stats {
  const char *ns;
  llm_cache_counts counts;  /* persisted plus pending */
  int64_t entries, bytes;   /* stored responses in the namespace */
  int64_t vectors;          /* semantic-cache vectors */
} llm_cache_ns_stats;

/* Calls fn for ns (or, with ns NULL, for every namespace that has entries
 * or statistics, in name order). fn returns 0 to go on. */
int llm_cache_stats(llm_cache *c, const char *ns,
                    int (*fn)(void *ud, const llm_cache_ns_stats *s), void *ud);

typedef struct llm_cache_info {
  int64_t bytes;            /* stored bytes, as counted against max_bytes */
  int64_t entries, embeddings, vectors, audits;
  size_t memory_bytes, memory_entries, memory_budget;
  int64_t memory_hits, disk_hits, misses; /* this connection's lookups */
} llm_cache_info;

int llm_cache_info_get(llm_cache *c, llm_cache_info *out);
/* PRAGMA integrity_check: "ok" or its first message, in out. */
int llm_cache_integrity(llm_cache *c, char *out, size_t n);

/* ---- embeddings: one vector per (model, dimensions, text) ---------------------- */

/* OK with *vec (dim floats, valid until the next call), or MISS. */
int llm_cache_embed_get(llm_cache *c, const char *model, int dims,
                        const uint8_t text_hash[LLM_CACHE_KEY_SIZE], double now,
                        const float **vec, int *dim);
/* Stores n vectors in one transaction: all of them or none. */
int llm_cache_embed_put(llm_cache *c, const char *model, int dims, int n,
                        const uint8_t (*text_hashes)[LLM_CACHE_KEY_SIZE],
                        const float *const *vecs, const int *lens, double now);

/* ---- semantic cache: prompt vectors pointing at response entries ------------------
 * A space is one embedding model at one dimension within a namespace; the
 * scope partitions it further (see vecindex.h). Vectors are persisted and
 * loaded into a vecindex on first use; rows other processes add are picked
 * up at the next search. */

typedef struct llm_cache_sem_hit {
  int64_t id;
  uint8_t key[LLM_CACHE_KEY_SIZE]; /* the response entry */
  float similarity;
  const char *prompt;              /* the stored prompt text; valid until the next call */
} llm_cache_sem_hit;

int llm_cache_sem_add(llm_cache *c, const char *ns, const char *space, uint64_t scope,
                      const uint8_t key[LLM_CACHE_KEY_SIZE], const float *vec, int dim,
                      const char *prompt, double now, int64_t *id);
/* OK with the nearest row of the scope (whatever its similarity), or MISS. */
int llm_cache_sem_search(llm_cache *c, const char *ns, const char *space, uint64_t scope,
                         const float *q, int dim, llm_cache_sem_hit *hit);
int llm_cache_sem_remove(llm_cache *c, const char *ns, const char *space, int64_t id);

/* ---- audit of semantic hits -------------------------------------------------------
 * One record per comparison of a cached answer with a fresh one: the
 * similarity of the two prompts, whether the answers differed, and a
 * weight (1 / the sampling rate) so that sampled hits and fully observed
 * near misses combine into unbiased rates. */

int llm_cache_audit_add(llm_cache *c, const char *ns, double similarity, int differs,
                        double weight, double now);

typedef struct llm_cache_audit_row {
  double threshold;
  int64_t samples;          /* records with similarity >= threshold */
  int64_t differed;
  double false_hit_rate;    /* weighted share that differed; NaN without samples */
} llm_cache_audit_row;

int llm_cache_audit_table(llm_cache *c, const char *ns, const double *thresholds, int n,
                          llm_cache_audit_row *rows);

#endif
