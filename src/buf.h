/* The one growable buffer, and the one way arrays grow (in the spirit of
 * lua-cjson's strbuf.c): every engine that accumulates bytes (response
 * bodies and headers, stream events, JSON and other text it writes) uses
 * llm_buf, and every growing array uses llm_grow, rather than its own
 * realloc-doubling loop.
 *
 * llm_buf keeps its bytes NUL-terminated once anything was written, so
 * they can be read as a C string. A failed allocation sets `failed`:
 * later writes are dropped, so a writer checks once at the end. Appends
 * are inline up to the capacity check; only growing calls out. */
#ifndef LLMRUN_BUF_H
#define LLMRUN_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct llm_buf {
  char *data;  /* NULL until the first write */
  size_t len;  /* bytes written, without the NUL */
  size_t cap;  /* bytes allocated; > len once data is set */
  int failed;  /* an allocation failed: the contents are incomplete */
} llm_buf;

#define LLM_BUF_INIT {NULL, 0, 0, 0}

static inline void llm_buf_init(llm_buf *b) { *b = (llm_buf)LLM_BUF_INIT; }
/* Frees the memory; the buffer is empty and usable again. Safe twice. */
void llm_buf_free(llm_buf *b);
/* Empties it, keeping the memory (and clearing `failed`). */
void llm_buf_reset(llm_buf *b);
/* Hands the bytes over (malloc'd, NUL-terminated; NULL when nothing was
 * written); the buffer is empty after. */
char *llm_buf_take(llm_buf *b, size_t *len);

/* Grows the buffer to hold `extra` more bytes and the NUL. 0, or -1 with
 * `failed` set. Call llm_buf_reserve instead: it checks first. */
int llm_buf_grow(llm_buf *b, size_t extra);

/* Room for `extra` more bytes and the NUL: 0, or -1 (failed). After it,
 * up to extra bytes may be written at data + len directly (then add them
 * to len and write the NUL, or use the put functions). */
static inline int llm_buf_reserve(llm_buf *b, size_t extra)
{
  if (b->failed)
    return -1;
  if (extra < b->cap - b->len) /* cap > len, or both 0 */
    return 0;
  return llm_buf_grow(b, extra);
}

static inline void llm_buf_put(llm_buf *b, const void *s, size_t n)
{
  if (llm_buf_reserve(b, n) != 0)
    return;
  if (n)
    memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = '\0';
}

static inline void llm_buf_putc(llm_buf *b, char c)
{
  if (llm_buf_reserve(b, 1) != 0)
    return;
  b->data[b->len++] = c;
  b->data[b->len] = '\0';
}

static inline void llm_buf_puts(llm_buf *b, const char *s) { llm_buf_put(b, s, strlen(s)); }

void llm_buf_printf(llm_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void llm_buf_vprintf(llm_buf *b, const char *fmt, va_list ap);

/* Makes room for `need` items of `size` bytes in the array at *(T **)items
 * whose capacity is *cap, doubling it (from at least 16 items); a larger
 * need is met exactly. 0, or -1 when out of memory (the array is then as
 * it was). Typical use:
 *   if (llm_grow(&items, &cap, n + 1, sizeof *items) != 0) fail;
 * llm_grow_upto is the same, never past max items (need <= max): for
 * arrays with a bound. Only growing calls out. */
int llm_grow_upto(void *items, size_t *cap, size_t need, size_t max, size_t size);
static inline int llm_grow(void *items, size_t *cap, size_t need, size_t size)
{
  return need <= *cap ? 0 : llm_grow_upto(items, cap, need, SIZE_MAX / size, size);
}

#endif
