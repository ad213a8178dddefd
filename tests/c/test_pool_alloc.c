/* The Lua state's small-block pool (pool_alloc.h): random allocations,
 * resizes and frees across the classes and past the pool's largest size,
 * each block filled with its own pattern and checked before it changes,
 * against the contents they must keep; alignment; a freed block reused by
 * the next request of its class; and, in a sanitizer build, the same
 * contract with the pool passing everything to malloc. */
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "pool_alloc.h"

#define SLOTS 2000

typedef struct slot {
  unsigned char *p;
  size_t size;
  unsigned char tag;
} slot;

static void fill(slot *s)
{
  for (size_t i = 0; i < s->size; i++)
    s->p[i] = (unsigned char)(s->tag + i);
}

static int intact(const slot *s, size_t upto)
{
  for (size_t i = 0; i < upto; i++)
    if (s->p[i] != (unsigned char)(s->tag + i))
      return 0;
  return 1;
}

static size_t random_size(unsigned *seed)
{
  unsigned r = (unsigned)rand_r(seed);
  switch (r % 4) {
  case 0: return 1 + r / 4 % 32;                  /* the smallest classes */
  case 1: return 1 + r / 4 % LLM_POOL_MAX;        /* any class */
  case 2: return LLM_POOL_MAX - 8 + r / 4 % 17;   /* around the largest */
  default: return 1 + r / 4 % (4 * LLM_POOL_MAX); /* from malloc */
  }
}

static void test_random_contents(void)
{
  llm_pool *pool = llm_pool_new();
  slot slots[SLOTS] = {{0}};
  unsigned seed = 12345;
  int bad_content = 0, bad_align = 0;
  CHECK(pool != NULL);
  for (int step = 0; step < 200000; step++) {
    slot *s = &slots[(unsigned)rand_r(&seed) % SLOTS];
    if (!s->p) {
      s->size = random_size(&seed);
      s->tag = (unsigned char)step;
      s->p = llm_pool_alloc(pool, NULL, 5 /* a type tag */, s->size);
      if (((uintptr_t)s->p & 15) != 0)
        bad_align++;
      fill(s);
    } else if (rand_r(&seed) % 3 == 0) {
      bad_content += !intact(s, s->size);
      CHECK(llm_pool_alloc(pool, s->p, s->size, 0) == NULL);
      s->p = NULL;
    } else { /* resize: the common prefix must survive */
      size_t n = random_size(&seed);
      unsigned char *q = llm_pool_alloc(pool, s->p, s->size, n);
      if (((uintptr_t)q & 15) != 0)
        bad_align++;
      s->p = q;
      bad_content += !intact(s, s->size < n ? s->size : n);
      s->size = n;
      fill(s);
    }
  }
  for (int i = 0; i < SLOTS; i++)
    if (slots[i].p) {
      bad_content += !intact(&slots[i], slots[i].size);
      llm_pool_alloc(pool, slots[i].p, slots[i].size, 0);
    }
  CHECK_INT(bad_content, 0);
  CHECK_INT(bad_align, 0);
  llm_pool_free(pool);
}

static void test_reuse_and_classes(void)
{
  llm_pool *pool = llm_pool_new();
  void *a = llm_pool_alloc(pool, NULL, 0, 40);
  void *b = llm_pool_alloc(pool, NULL, 0, 40);
  CHECK(a && b && a != b);
  if (llm_pool_active()) {
    CHECK_INT(llm_pool_reserved(pool), 64 * 1024); /* one slab so far */
    /* 33..48 bytes share a class: growing within it keeps the block */
    CHECK(llm_pool_alloc(pool, a, 40, 48) == a);
    llm_pool_alloc(pool, a, 48, 0);
    CHECK(llm_pool_alloc(pool, NULL, 0, 33) == a); /* the freed block, again */
    /* a big block is not the pool's, and no slab is taken for it */
    void *big = llm_pool_alloc(pool, NULL, 0, LLM_POOL_MAX + 1);
    CHECK(big != NULL);
    CHECK_INT(llm_pool_reserved(pool), 64 * 1024);
    llm_pool_alloc(pool, big, LLM_POOL_MAX + 1, 0);
    /* many blocks: new slabs, none lost */
    void *keep[3000];
    for (int i = 0; i < 3000; i++)
      keep[i] = llm_pool_alloc(pool, NULL, 0, 100);
    CHECK(llm_pool_reserved(pool) >= 3000 * 112);
    CHECK(llm_pool_reserved(pool) <= 3000 * 112 + 3 * 64 * 1024);
    for (int i = 0; i < 3000; i++)
      llm_pool_alloc(pool, keep[i], 100, 0);
    size_t held = llm_pool_reserved(pool);
    for (int i = 0; i < 3000; i++) /* freed blocks serve the same again */
      keep[i] = llm_pool_alloc(pool, NULL, 0, 100);
    CHECK_INT(llm_pool_reserved(pool), held);
    for (int i = 0; i < 3000; i++)
      llm_pool_alloc(pool, keep[i], 100, 0);
  } else {
    CHECK_INT(llm_pool_reserved(pool), 0); /* a sanitizer build: malloc only */
  }
  llm_pool_alloc(pool, a, 40, 0);
  llm_pool_alloc(pool, b, 40, 0);
  llm_pool_free(pool);
}

int main(void)
{
  test_random_contents();
  test_reuse_and_classes();
  return check_report("pool_alloc");
}
