/* The small-block allocator for the Lua state (see pool_alloc.h). */
#include "pool_alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define POOL_OFF 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define POOL_OFF 1
#endif
#endif
#ifndef POOL_OFF
#define POOL_OFF 0
#endif

#define GRAIN 16 /* class step and alignment: >= Lua's LUAI_MAXALIGN */
#define CLASSES (LLM_POOL_MAX / GRAIN)
#define SLAB_BYTES ((size_t)64 * 1024)

typedef struct block {
  struct block *next;
} block;

/* A slab begins with this header (GRAIN bytes, so blocks stay aligned). */
typedef union slab {
  union slab *prev;
  char pad[GRAIN];
} slab;

struct llm_pool {
  block *free[CLASSES]; /* class c holds blocks of (c + 1) * GRAIN bytes */
  char *bump, *end;     /* the unused tail of the newest slab */
  slab *slabs;          /* newest first */
  size_t reserved;
};

static inline size_t class_of(size_t size) { return (size + GRAIN - 1) / GRAIN - 1; }

llm_pool *llm_pool_new(void) { return calloc(1, sizeof(llm_pool)); }

void llm_pool_free(llm_pool *p)
{
  if (!p)
    return;
  for (slab *s = p->slabs, *prev; s; s = prev) {
    prev = s->prev;
    free(s);
  }
  free(p);
}

size_t llm_pool_reserved(const llm_pool *p) { return p->reserved; }
int llm_pool_active(void) { return !POOL_OFF; }

static void push(llm_pool *p, size_t c, void *ptr)
{
  block *b = ptr;
  b->next = p->free[c];
  p->free[c] = b;
}

/* A block of class c from a new slab; the old slab's tail, too small for
 * it, goes to the list of the class it fits. */
static void *from_new_slab(llm_pool *p, size_t c)
{
  size_t tail = (size_t)(p->end - p->bump);
  if (tail >= GRAIN)
    push(p, tail / GRAIN - 1, p->bump);
  slab *s = malloc(SLAB_BYTES);
  if (!s)
    return NULL;
  s->prev = p->slabs;
  p->slabs = s;
  p->reserved += SLAB_BYTES;
  p->bump = (char *)s + sizeof(slab);
  p->end = (char *)s + SLAB_BYTES;
  void *b = p->bump;
  p->bump += (c + 1) * GRAIN;
  return b;
}

static void *take(llm_pool *p, size_t c)
{
  block *b = p->free[c];
  if (b) {
    p->free[c] = b->next;
    return b;
  }
  size_t size = (c + 1) * GRAIN;
  if ((size_t)(p->end - p->bump) >= size) {
    void *r = p->bump;
    p->bump += size;
    return r;
  }
  return from_new_slab(p, c);
}

void *llm_pool_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
  llm_pool *p = ud;
  if (POOL_OFF) {
    if (nsize == 0) {
      free(ptr);
      return NULL;
    }
    return realloc(ptr, nsize);
  }
  int old_small = ptr && osize > 0 && osize <= LLM_POOL_MAX; /* never a 0-byte block of ours */
  if (nsize == 0) {
    if (old_small)
      push(p, class_of(osize), ptr);
    else
      free(ptr);
    return NULL;
  }
  if (nsize > LLM_POOL_MAX) {
    if (!ptr || !old_small)
      return realloc(ptr, nsize);
    void *n = malloc(nsize);
    if (n) {
      memcpy(n, ptr, osize);
      push(p, class_of(osize), ptr);
    }
    return n;
  }
  size_t c = class_of(nsize);
  if (old_small && class_of(osize) == c)
    return ptr;
  void *n = take(p, c);
  if (n && ptr) {
    memcpy(n, ptr, osize < nsize ? osize : nsize);
    if (old_small)
      push(p, class_of(osize), ptr);
    else
      free(ptr);
  }
  return n;
}
