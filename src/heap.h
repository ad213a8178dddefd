/* The one binary min-heap, written once and stamped out per element type
 * (as BSD's <sys/tree.h> and klib do), so the event loop's timers, the
 * simulator's timers and the tokenizer's merge queue share one
 * implementation at the speed of a hand-written one: the order inlines.
 *
 *   LLM_HEAP(name, T, before, placed)
 *
 * defines, over an array T *a of n elements (capacity cap, grown with
 * llm_grow):
 *   int    name_push(T **a, size_t *n, size_t *cap, T v)  adds v: 0, or -1
 *                                                         when out of memory
 *   T      name_pop(T *a, size_t *n)                      removes and returns
 *                                                         the first (n > 0)
 *   void   name_remove(T *a, size_t *n, size_t i)         removes element i
 *   size_t name_up(T *a, size_t i), void name_down(T *a, size_t n, size_t i)
 *                                                         sift element i
 * before(x, y) is nonzero when x must come out before y. placed(a, i) runs
 * whenever an element lands at index i: an intrusive heap records i in the
 * element there, to remove it later in O(log n); LLM_HEAP_UNTRACKED when
 * nothing needs to know. A type need not use every function (hence
 * "unused" on them, for clang). */
#ifndef LLMRUN_HEAP_H
#define LLMRUN_HEAP_H

#include <stddef.h>

#include "buf.h"

#define LLM_HEAP_UNTRACKED(a, i) ((void)(a), (void)(i))
#define LLM_HEAP_FN __attribute__((unused))

#define LLM_HEAP(name, T, before, placed)                                          \
  static inline LLM_HEAP_FN size_t name##_up(T *a, size_t i)                       \
  {                                                                                \
    T v = a[i];                                                                    \
    while (i > 0) {                                                                \
      size_t parent = (i - 1) / 2;                                                 \
      if (!(before(v, a[parent])))                                                 \
        break;                                                                     \
      a[i] = a[parent];                                                            \
      placed(a, i);                                                                \
      i = parent;                                                                  \
    }                                                                              \
    a[i] = v;                                                                      \
    placed(a, i);                                                                  \
    return i;                                                                      \
  }                                                                                \
                                                                                   \
  static inline LLM_HEAP_FN void name##_down(T *a, size_t n, size_t i)             \
  {                                                                                \
    T v = a[i];                                                                    \
    for (;;) {                                                                     \
      size_t c = 2 * i + 1;                                                        \
      if (c >= n)                                                                  \
        break;                                                                     \
      if (c + 1 < n && (before(a[c + 1], a[c])))                                   \
        c++;                                                                       \
      if (!(before(a[c], v)))                                                      \
        break;                                                                     \
      a[i] = a[c];                                                                 \
      placed(a, i);                                                                \
      i = c;                                                                       \
    }                                                                              \
    a[i] = v;                                                                      \
    placed(a, i);                                                                  \
  }                                                                                \
                                                                                   \
  static inline LLM_HEAP_FN int name##_push(T **a, size_t *n, size_t *cap, T v)    \
  {                                                                                \
    if (llm_grow(a, cap, *n + 1, sizeof **a) != 0)                                   \
      return -1;                                                                   \
    (*a)[(*n)++] = v;                                                              \
    name##_up(*a, *n - 1);                                                         \
    return 0;                                                                      \
  }                                                                                \
                                                                                   \
  static inline LLM_HEAP_FN void name##_remove(T *a, size_t *n, size_t i)          \
  {                                                                                \
    T last = a[--*n];                                                              \
    if (i == *n)                                                                   \
      return;                                                                      \
    a[i] = last;                                                                   \
    name##_down(a, *n, name##_up(a, i));                                           \
  }                                                                                \
                                                                                   \
  static inline LLM_HEAP_FN T name##_pop(T *a, size_t *n)                          \
  {                                                                                \
    T first = a[0];                                                                \
    name##_remove(a, n, 0);                                                        \
    return first;                                                                  \
  }

#endif
