/* The shared growable buffer and array growth (buf.h) and the binary heap
 * (heap.h): contents across growth, the failure flag, bounds, and the heap
 * order and removal checked against a sorted reference. */
#include <stdint.h>
#include <stdlib.h>

#include "buf.h"
#include "check.h"
#include "heap.h"

static void test_buf_appends(void)
{
  llm_buf b = LLM_BUF_INIT;
  char want[5000];
  size_t n = 0;
  llm_buf_put(&b, "", 0);
  CHECK(b.data != NULL); /* an empty write still gives a C string */
  CHECK_STR(b.data, "");
  for (int i = 0; i < 1000; i++) { /* grows through several doublings */
    llm_buf_printf(&b, "%d,", i % 10);
    want[n++] = (char)('0' + i % 10);
    want[n++] = ',';
  }
  llm_buf_putc(&b, '!');
  want[n++] = '!';
  llm_buf_puts(&b, "end");
  memcpy(want + n, "end", 3);
  n += 3;
  CHECK_MEM(b.data, b.len, want, n);
  CHECK(b.data[b.len] == '\0');
  CHECK(b.cap > b.len);
  CHECK(!b.failed);
  /* printf longer than the small scratch buffer */
  llm_buf_reset(&b);
  llm_buf_printf(&b, "%0300d|%s", 7, "x");
  CHECK_INT(b.len, 302);
  CHECK(b.data[299] == '7' && b.data[300] == '|' && b.data[301] == 'x' && b.data[302] == '\0');
  size_t len;
  char *taken = llm_buf_take(&b, &len);
  CHECK_INT(len, 302);
  CHECK(b.data == NULL && b.len == 0 && b.cap == 0);
  free(taken);
  llm_buf_free(&b); /* twice is harmless */
  llm_buf_free(&b);
}

static void test_buf_failure(void)
{
  llm_buf b = LLM_BUF_INIT;
  llm_buf_puts(&b, "abc");
  /* a size no allocation can meet: the flag is set and later writes drop */
  CHECK_INT(llm_buf_reserve(&b, SIZE_MAX - 2), -1);
  CHECK(b.failed);
  llm_buf_puts(&b, "def");
  CHECK_STR(b.data, "abc");
  llm_buf_reset(&b); /* clears the flag */
  llm_buf_puts(&b, "ok");
  CHECK(!b.failed);
  CHECK_STR(b.data, "ok");
  llm_buf_free(&b);
}

static void test_grow(void)
{
  int *a = NULL;
  size_t cap = 0;
  CHECK_INT(llm_grow(&a, &cap, 1, sizeof *a), 0);
  CHECK_INT(cap, 16);
  for (int i = 0; i < 16; i++)
    a[i] = i;
  CHECK_INT(llm_grow(&a, &cap, 17, sizeof *a), 0);
  CHECK_INT(cap, 32);
  CHECK_INT(a[15], 15); /* kept across the realloc */
  CHECK_INT(llm_grow(&a, &cap, 1000, sizeof *a), 0); /* a big need is met exactly */
  CHECK_INT(cap, 1000);
  CHECK_INT(llm_grow(&a, &cap, SIZE_MAX / 2, sizeof *a), -1);
  CHECK_INT(cap, 1000);
  free(a);
  a = NULL;
  cap = 0;
  CHECK_INT(llm_grow_upto(&a, &cap, 3, 5, sizeof *a), 0);
  CHECK_INT(cap, 5); /* the bound wins over the minimum */
  CHECK_INT(llm_grow_upto(&a, &cap, 6, 5, sizeof *a), -1);
  free(a);
}

/* ---- the heap: values, and an intrusive heap with tracked indexes ---- */

#define LESS(x, y) ((x) < (y))
LLM_HEAP(ints, int, LESS, LLM_HEAP_UNTRACKED)

typedef struct item {
  double key;
  size_t index;
} item;

#define KEY_BEFORE(x, y) ((x)->key < (y)->key)
#define TRACK(a, i) ((a)[i]->index = (i))
LLM_HEAP(items, item *, KEY_BEFORE, TRACK)

static int cmp_int(const void *a, const void *b)
{
  return *(const int *)a < *(const int *)b ? -1 : *(const int *)a > *(const int *)b;
}

static void test_heap_values(void)
{
  int *h = NULL, ref[2000];
  size_t n = 0, cap = 0, nref = 0;
  srand(7);
  for (int i = 0; i < 2000; i++) {
    int v = rand() % 500; /* many equal values */
    CHECK_INT(ints_push(&h, &n, &cap, v), 0);
    ref[nref++] = v;
  }
  qsort(ref, nref, sizeof *ref, cmp_int);
  int ordered = 1;
  for (size_t i = 0; i < nref; i++)
    ordered &= ints_pop(h, &n) == ref[i];
  CHECK(ordered);
  CHECK_INT(n, 0);
  free(h);
}

static void test_heap_removal(void)
{
  item items[600], **h = NULL;
  size_t n = 0, cap = 0;
  double last = -1;
  int ok = 1;
  srand(11);
  for (int i = 0; i < 600; i++) {
    items[i].key = (double)(rand() % 1000);
    CHECK_INT(items_push(&h, &n, &cap, &items[i]), 0);
  }
  for (size_t i = 0; i < n; i++) /* every element knows its place */
    ok &= h[i]->index == i;
  CHECK(ok);
  for (int i = 0; i < 600; i += 3) /* remove a third from the middle */
    items_remove(h, &n, items[i].index);
  CHECK_INT(n, 400);
  ok = 1;
  while (n > 0) {
    item *it = items_pop(h, &n);
    ok &= it->key >= last && (it - items) % 3 != 0;
    last = it->key;
    for (size_t i = 0; i < n; i++)
      ok &= h[i]->index == i;
  }
  CHECK(ok);
  free(h);
}

int main(void)
{
  test_buf_appends();
  test_buf_failure();
  test_grow();
  test_heap_values();
  test_heap_removal();
  return check_report("buf");
}
