#include "cache_lru.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* One entry: key and value bytes follow the node in the same allocation. */
typedef struct node {
  struct node *prev, *next;   /* recency list, most recent first */
  struct node *chain;         /* hash bucket chain */
  uint64_t hash;
  size_t klen, vlen;
  double created, expires;
  char bytes[];               /* key, then value */
} node;

struct llm_lru {
  node **buckets;
  size_t nbuckets;            /* a power of two */
  size_t count, bytes, budget;
  node *head, *tail;
};

/* What one entry costs against the budget, bookkeeping included. */
static size_t cost(size_t klen, size_t vlen)
{
  return sizeof(node) + sizeof(node *) + klen + vlen;
}

/* FNV-1a (http://www.isthe.com/chongo/tech/comp/fnv/): keys are short,
 * and most already end in a cryptographic hash. */
static uint64_t hash_key(const void *key, size_t klen)
{
  const unsigned char *p = key;
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < klen; i++) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

llm_lru *llm_lru_new(size_t budget)
{
  llm_lru *m = calloc(1, sizeof *m);
  if (!m)
    return NULL;
  m->nbuckets = 64;
  m->buckets = calloc(m->nbuckets, sizeof *m->buckets);
  if (!m->buckets) {
    free(m);
    return NULL;
  }
  m->budget = budget;
  return m;
}

static node **find_slot(llm_lru *m, const void *key, size_t klen, uint64_t h)
{
  node **pp = &m->buckets[h & (m->nbuckets - 1)];
  for (; *pp; pp = &(*pp)->chain)
    if ((*pp)->hash == h && (*pp)->klen == klen && memcmp((*pp)->bytes, key, klen) == 0)
      return pp;
  return pp;
}

static void unlink_recency(llm_lru *m, node *n)
{
  if (n->prev) n->prev->next = n->next; else m->head = n->next;
  if (n->next) n->next->prev = n->prev; else m->tail = n->prev;
  n->prev = n->next = NULL;
}

static void push_front(llm_lru *m, node *n)
{
  n->prev = NULL;
  n->next = m->head;
  if (m->head) m->head->prev = n; else m->tail = n;
  m->head = n;
}

/* Removes n, whose bucket slot is *pp. */
static void remove_node(llm_lru *m, node **pp, node *n)
{
  *pp = n->chain;
  unlink_recency(m, n);
  m->count--;
  m->bytes -= cost(n->klen, n->vlen);
  free(n);
}

static void remove_entry(llm_lru *m, node *n)
{
  node **pp = find_slot(m, n->bytes, n->klen, n->hash);
  remove_node(m, pp, n);
}

/* Doubles the bucket array when the load passes 1; failure only costs speed. */
static void maybe_grow(llm_lru *m)
{
  size_t nb;
  node **b;
  if (m->count < m->nbuckets)
    return;
  nb = m->nbuckets * 2;
  b = calloc(nb, sizeof *b);
  if (!b)
    return;
  for (size_t i = 0; i < m->nbuckets; i++) {
    node *n = m->buckets[i];
    while (n) {
      node *next = n->chain;
      n->chain = b[n->hash & (nb - 1)];
      b[n->hash & (nb - 1)] = n;
      n = next;
    }
  }
  free(m->buckets);
  m->buckets = b;
  m->nbuckets = nb;
}

int llm_lru_get(llm_lru *m, const void *key, size_t klen, double now, llm_lru_value *out)
{
  uint64_t h = hash_key(key, klen);
  node **pp = find_slot(m, key, klen, h);
  node *n = *pp;
  if (!n)
    return 0;
  if (n->expires > 0 && n->expires <= now) {
    remove_node(m, pp, n);
    return 0;
  }
  if (m->head != n) {
    unlink_recency(m, n);
    push_front(m, n);
  }
  out->data = n->bytes + n->klen;
  out->len = n->vlen;
  out->created = n->created;
  out->expires = n->expires;
  return 1;
}

int llm_lru_put(llm_lru *m, const void *key, size_t klen, const void *data, size_t len,
                double created, double expires)
{
  uint64_t h = hash_key(key, klen);
  node **pp = find_slot(m, key, klen, h);
  node *n;
  if (*pp)
    remove_node(m, pp, *pp);
  if (cost(klen, len) > m->budget)
    return 0; /* would evict everything and still not fit */
  n = malloc(sizeof *n + klen + len);
  if (!n)
    return -1;
  n->hash = h;
  n->klen = klen;
  n->vlen = len;
  n->created = created;
  n->expires = expires;
  memcpy(n->bytes, key, klen);
  if (len)
    memcpy(n->bytes + klen, data, len);
  pp = find_slot(m, key, klen, h); /* the removal may have moved the end of the chain */
  n->chain = NULL;
  *pp = n;
  push_front(m, n);
  m->count++;
  m->bytes += cost(klen, len);
  while (m->bytes > m->budget && m->tail && m->tail != n)
    remove_entry(m, m->tail);
  maybe_grow(m);
  return 0;
}

void llm_lru_del(llm_lru *m, const void *key, size_t klen)
{
  uint64_t h = hash_key(key, klen);
  node **pp = find_slot(m, key, klen, h);
  if (*pp)
    remove_node(m, pp, *pp);
}

void llm_lru_clear(llm_lru *m)
{
  node *n = m->head;
  while (n) {
    node *next = n->next;
    free(n);
    n = next;
  }
  memset(m->buckets, 0, m->nbuckets * sizeof *m->buckets);
  m->head = m->tail = NULL;
  m->count = m->bytes = 0;
}

void llm_lru_free(llm_lru *m)
{
  if (!m)
    return;
  llm_lru_clear(m);
  free(m->buckets);
  free(m);
}

size_t llm_lru_bytes(const llm_lru *m) { return m->bytes; }
size_t llm_lru_count(const llm_lru *m) { return m->count; }
size_t llm_lru_budget(const llm_lru *m) { return m->budget; }
