/* The simulated provider prefix cache behind usage.prompt_tokens_details
 * .cached_tokens, following OpenAI's documented rules:
 *   - caching applies to prompts of 1,024 tokens or more, and a hit needs
 *     an exact repeated prefix (developers.openai.com/docs/guides/
 *     prompt-caching);
 *   - hits count "until the first mismatched token in 128 token blocks"
 *     (OpenAI cookbook, Prompt Caching 201), so cached_tokens is a multiple
 *     of 128 that is at least 1,024;
 *   - an in-memory cached prefix stays for 5 to 10 minutes of inactivity
 *     (the same guide): sim_config.cache_ttl_s, 300 s by default.
 *
 * The simulator sees bytes, not tokens, so it remembers hashes of the
 * prompt's prefixes at every 256-byte boundary (and of the whole prompt)
 * per model. A new prompt's longest remembered prefix, in bytes, is
 * turned into tokens in proportion to the prompt's size, then rounded
 * down to the 128-token grid. A whole repeated prompt therefore gets
 * floor(prompt_tokens / 128) * 128, e.g. 1,920 of 2,006.
 *
 * The same table holds Anthropic's explicit cache entries
 * (sim_messages_cache.c), each with its own TTL (5 minutes or 1 hour). */
#include <stdlib.h>
#include <string.h>

#include "sim_server.h"

#define BLOCK 256
#define MIN_CACHED 1024
#define GRID 128
#define MAX_SLOTS ((size_t)1 << 20) /* 16 MiB of entries at most */

typedef struct entry {
  uint64_t key;  /* 0: empty */
  int64_t used;  /* last hit or insert */
  int64_t ttl;   /* its own lifetime (sim_cache_put); 0: the lookup's */
} entry;

struct sim_cache {
  entry *slots;
  size_t cap, n;
};

sim_cache *sim_cache_new(void)
{
  sim_cache *c = calloc(1, sizeof *c);
  if (!c)
    return NULL;
  c->cap = 1024;
  c->slots = calloc(c->cap, sizeof *c->slots);
  if (!c->slots) {
    free(c);
    return NULL;
  }
  return c;
}

void sim_cache_free(sim_cache *c)
{
  if (!c)
    return;
  free(c->slots);
  free(c);
}

void sim_cache_clear(sim_cache *c)
{
  memset(c->slots, 0, c->cap * sizeof *c->slots);
  c->n = 0;
}

static entry *find(sim_cache *c, uint64_t key)
{
  size_t i = (size_t)(key * 0x9e3779b97f4a7c15ull) & (c->cap - 1);
  while (c->slots[i].key && c->slots[i].key != key)
    i = (i + 1) & (c->cap - 1);
  return &c->slots[i];
}

static int live(const entry *e, int64_t now, int64_t ttl)
{
  return e->key && now - e->used <= (e->ttl ? e->ttl : ttl);
}

/* Rebuilds the table at cap, keeping the entries used within ttl. */
static void rehash(sim_cache *c, size_t cap, int64_t now, int64_t ttl)
{
  entry *old = c->slots;
  size_t oldcap = c->cap;
  entry *slots = calloc(cap, sizeof *slots);
  if (!slots)
    return; /* keep the old table; inserts stop when it is full */
  c->slots = slots;
  c->cap = cap;
  c->n = 0;
  for (size_t i = 0; i < oldcap; i++)
    if (live(&old[i], now, ttl)) {
      *find(c, old[i].key) = old[i];
      c->n++;
    }
  free(old);
}

static entry *insert(sim_cache *c, uint64_t key, int64_t now, int64_t ttl)
{
  entry *e;
  if ((c->n + 1) * 2 > c->cap) {
    rehash(c, c->cap, now, ttl); /* first drop what expired */
    if ((c->n + 1) * 2 > c->cap)
      rehash(c, c->cap < MAX_SLOTS ? c->cap * 2 : c->cap, now, ttl);
    if ((c->n + 1) * 2 > c->cap)
      sim_cache_clear(c); /* full of live entries: start over */
  }
  e = find(c, key);
  if (!e->key) {
    e->key = key;
    e->ttl = 0;
    c->n++;
  }
  e->used = now;
  return e;
}

int sim_cache_alive(sim_cache *c, uint64_t key, int64_t now, int refresh)
{
  entry *e;
  if (!c)
    return 0;
  e = find(c, key | 1);
  if (!live(e, now, 0))
    return 0;
  if (refresh)
    e->used = now; /* a read refreshes the entry for its TTL */
  return 1;
}

void sim_cache_put(sim_cache *c, uint64_t key, int64_t now, int64_t ttl_ns)
{
  entry *e;
  if (!c)
    return;
  e = insert(c, key | 1, now, ttl_ns);
  e->ttl = ttl_ns;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
  const unsigned char *s = p;
  for (size_t i = 0; i < n; i++)
    h = (h ^ s[i]) * 0x100000001b3ull;
  return h;
}

/* The prompt as one byte stream: role, separator, content, separator.
 * The running hash is recorded at each BLOCK boundary. */
typedef struct walker {
  uint64_t h;
  size_t pos;
  uint64_t *marks;  /* hash at each boundary */
  size_t nmarks, cap;
} walker;

static void feed(walker *w, const char *p, size_t n)
{
  while (n > 0) {
    size_t room = BLOCK - w->pos % BLOCK, k = n < room ? n : room;
    w->h = fnv(w->h, p, k);
    w->pos += k;
    p += k;
    n -= k;
    if (w->pos % BLOCK == 0 && w->nmarks < w->cap)
      w->marks[w->nmarks++] = w->h | 1; /* never 0, the empty key */
  }
}

int sim_cache_lookup(sim_cache *c, const sim_request *req, int prompt_tokens, int64_t now,
                     double ttl_s)
{
  walker w;
  size_t total = 0, matched = 0;
  int64_t ttl = (int64_t)(ttl_s * 1e9);
  uint64_t whole;
  entry *e;
  long long cached;
  if (!c || !req->model)
    return 0;
  for (size_t i = 0; i < req->nmessages; i++)
    total += strlen(req->messages[i].role) + 1 + req->messages[i].content_len + 1;
  memset(&w, 0, sizeof w);
  w.cap = total / BLOCK + 1;
  w.marks = malloc(w.cap * sizeof *w.marks);
  if (!w.marks)
    return 0;
  w.h = fnv(0xcbf29ce484222325ull, req->model, strlen(req->model) + 1);
  for (size_t i = 0; i < req->nmessages; i++) {
    feed(&w, req->messages[i].role, strlen(req->messages[i].role));
    feed(&w, "\x1e", 1);
    feed(&w, req->messages[i].content, req->messages[i].content_len);
    feed(&w, "\x1f", 1);
  }
  whole = (w.h ^ 0x5bd1e995ull) | 1; /* distinct from a boundary mark */

  /* the longest live prefix: the whole prompt, else the last boundary seen */
  e = find(c, whole);
  if (live(e, now, ttl)) {
    matched = total;
  } else {
    for (size_t i = w.nmarks; i-- > 0;) {
      e = find(c, w.marks[i]);
      if (live(e, now, ttl)) {
        matched = (i + 1) * BLOCK;
        break;
      }
    }
  }
  if (prompt_tokens >= MIN_CACHED) {
    for (size_t i = 0; i < w.nmarks; i++)
      insert(c, w.marks[i], now, ttl);
    insert(c, whole, now, ttl);
  }
  free(w.marks);
  if (matched == 0 || total == 0)
    return 0;
  cached = (long long)prompt_tokens * (long long)matched / (long long)total;
  cached = cached / GRID * GRID;
  return cached >= MIN_CACHED ? (int)cached : 0;
}
