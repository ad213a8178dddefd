/* Deferred response stores: with llm_cache_config.defer_puts, a put is kept
 * in memory and written with the others in one transaction by
 * llm_cache_write_deferred (the binding calls it from a timer, 50 ms after
 * the first waiting put), before any other write, and on close.
 *
 * Why: a put in a transaction of its own took the write lock, wrote the
 * WAL frames of every page it touched (about ten pwrite calls) and
 * released the lock: a fifth of the gateway's CPU per forwarded request.
 * Grouped, the locking and the page writes are paid once per batch. The
 * lock is held only while a batch is written, never across the wait, so
 * other processes sharing the file are not held up.
 *
 * What does not change: a get in this process finds a waiting entry (the
 * memory layer holds it, or the list below); a delete, clear or any other
 * write sees it on disk first. What does: another process sees the entry
 * up to the delay later, a crash loses up to the delay's worth of stores
 * (the call log's trade, too), and a store that fails on disk fails at
 * the write, not at the put (llm_cache_deferred_failures counts them). */
#include <stdlib.h>
#include <string.h>

#include "cache_internal.h"

/* Past either, the batch is written at once. */
#define DEFER_MAX_ENTRIES 512
#define DEFER_MAX_BYTES ((size_t)8 << 20)

static void drop(deferred_put *d)
{
  free(d->ns);
  free(d->data);
}

int cache_defer_add(llm_cache *c, const char *ns, const uint8_t key[LLM_CACHE_KEY_SIZE],
                    const void *data, size_t len, double now, double expires)
{
  deferred_put *d = (deferred_put *)cache_defer_find(c, ns, key);
  char *copy = malloc(len ? len : 1);
  if (!copy)
    return cache_error(c, LLM_CACHE_ENOMEM, "out of memory");
  memcpy(copy, data, len);
  if (d) { /* the same entry again: the newest value wins, as on disk */
    c->deferred_bytes -= d->len;
    free(d->data);
  } else {
    char *n = strdup(ns);
    if (!n || llm_grow(&c->deferred, &c->cap_deferred, c->ndeferred + 1, sizeof *c->deferred) != 0) {
      free(n);
      free(copy);
      return cache_error(c, LLM_CACHE_ENOMEM, "out of memory");
    }
    d = &c->deferred[c->ndeferred++];
    d->ns = n;
    memcpy(d->key, key, LLM_CACHE_KEY_SIZE);
  }
  d->data = copy;
  d->len = len;
  d->created = now;
  d->expires = expires;
  c->deferred_bytes += len;
  if (c->ndeferred >= DEFER_MAX_ENTRIES || c->deferred_bytes >= DEFER_MAX_BYTES)
    return llm_cache_write_deferred(c);
  return LLM_CACHE_OK;
}

const deferred_put *cache_defer_find(const llm_cache *c, const char *ns,
                                     const uint8_t key[LLM_CACHE_KEY_SIZE])
{
  for (int i = c->ndeferred - 1; i >= 0; i--) {
    const deferred_put *d = &c->deferred[i];
    if (memcmp(d->key, key, LLM_CACHE_KEY_SIZE) == 0 && strcmp(d->ns, ns) == 0)
      return d;
  }
  return NULL;
}

void cache_defer_free(llm_cache *c)
{
  for (int i = 0; i < c->ndeferred; i++)
    drop(&c->deferred[i]);
  free(c->deferred);
  c->deferred = NULL;
  c->ndeferred = c->cap_deferred = 0;
  c->deferred_bytes = 0;
}

int llm_cache_deferred(const llm_cache *c) { return c->ndeferred; }
long llm_cache_deferred_failures(const llm_cache *c) { return c->deferred_failures; }
const char *llm_cache_deferred_error(const llm_cache *c) { return c->deferred_why; }

int llm_cache_write_deferred(llm_cache *c)
{
  int status = LLM_CACHE_OK;
  double last = 0;
  if (c->ndeferred == 0 || c->writing_deferred)
    return LLM_CACHE_OK;
  c->writing_deferred = 1; /* cache_begin must not come back here */
  if ((status = cache_begin(c)) != LLM_CACHE_OK)
    goto done;
  for (int i = 0; i < c->ndeferred && status == LLM_CACHE_OK; i++) {
    deferred_put *d = &c->deferred[i];
    status = cache_insert(c, d->ns, d->key, d->data, d->len, d->created, d->expires);
    if (d->created > last)
      last = d->created;
  }
  if (status == LLM_CACHE_OK)
    status = cache_before_commit(c, last);
  if (status == LLM_CACHE_OK)
    status = cache_commit(c); /* rolls back itself on failure */
  else
    cache_rollback(c);
done:
  if (status != LLM_CACHE_OK) {
    c->deferred_failures += c->ndeferred;
    memcpy(c->deferred_why, c->errmsg, sizeof c->deferred_why); /* the same size */
  }
  /* written or not, the batch is done with: retrying a full disk or a
   * read-only file at every turn would only repeat the failure */
  cache_defer_free(c);
  c->writing_deferred = 0;
  return status;
}
