/* The growable buffer and array growth of buf.h. */
#include "buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define MIN_BYTES 64
#define MIN_ITEMS 16

/* The next capacity: double, at least min, at least need, at most max; 0
 * when need is past max. */
static size_t next_cap(size_t cap, size_t need, size_t min, size_t max)
{
  size_t n = cap < min ? min : (cap <= max / 2 ? cap * 2 : max);
  if (need > max)
    return 0;
  if (n > max)
    n = max;
  return n < need ? need : n;
}

int llm_buf_grow(llm_buf *b, size_t extra)
{
  size_t cap;
  char *p;
  if (b->failed)
    return -1;
  if (extra > SIZE_MAX - 1 - b->len ||
      (cap = next_cap(b->cap, b->len + extra + 1, MIN_BYTES, SIZE_MAX)) == 0 ||
      (p = realloc(b->data, cap)) == NULL) {
    b->failed = 1;
    return -1;
  }
  b->data = p;
  b->cap = cap;
  return 0;
}

void llm_buf_free(llm_buf *b)
{
  free(b->data);
  llm_buf_init(b);
}

void llm_buf_reset(llm_buf *b)
{
  b->len = 0;
  b->failed = 0;
  if (b->data)
    b->data[0] = '\0';
}

char *llm_buf_take(llm_buf *b, size_t *len)
{
  char *d = b->data;
  if (len)
    *len = b->len;
  llm_buf_init(b);
  return d;
}

void llm_buf_vprintf(llm_buf *b, const char *fmt, va_list ap)
{
  char small[128];
  va_list again;
  int n;
  va_copy(again, ap);
  n = vsnprintf(small, sizeof small, fmt, ap);
  if (n < 0) {
    b->failed = 1;
  } else if ((size_t)n < sizeof small) {
    llm_buf_put(b, small, (size_t)n);
  } else if (llm_buf_reserve(b, (size_t)n) == 0) {
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, again);
    b->len += (size_t)n;
  }
  va_end(again);
}

void llm_buf_printf(llm_buf *b, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  llm_buf_vprintf(b, fmt, ap);
  va_end(ap);
}

int llm_grow_upto(void *items, size_t *cap, size_t need, size_t max, size_t size)
{
  void *old, *p;
  size_t n;
  if (need <= *cap)
    return 0;
  if (size == 0 || max > SIZE_MAX / size || (n = next_cap(*cap, need, MIN_ITEMS, max)) == 0)
    return -1;
  memcpy(&old, items, sizeof old); /* items is a T **: read it as a void * */
  if ((p = realloc(old, n * size)) == NULL)
    return -1;
  memcpy(items, &p, sizeof p);
  *cap = n;
  return 0;
}
