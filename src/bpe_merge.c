/* Byte-pair merging of one piece, exactly as tiktoken's _byte_pair_merge
 * (src/lib.rs): start from single bytes; repeatedly merge the adjacent pair
 * whose concatenation has the lowest rank, the leftmost on ties; stop when
 * no adjacent pair is a token.
 *
 * tiktoken rescans the whole piece after each merge, which is quadratic in
 * the piece length. Short pieces (nearly all of them) use the same scan
 * here, which is fastest when small; long ones use a binary heap of
 * candidate pairs over a linked list of parts, O(n log n): a stale heap
 * entry is recognised because its rank no longer equals the current rank of
 * the pair at its position (a longer pair never has the same rank, as each
 * rank names one byte string). */
#include <stdlib.h>

#include "bpe_merge.h"

#define NONE UINT32_MAX

/* ---- short pieces: tiktoken's scan ---------------------------------------- */

static size_t merge_scan(const llm_bpe *e, const uint8_t *p, size_t n, uint32_t *out)
{
  uint32_t start[LLM_BPE_SHORT_PIECE + 1], pair[LLM_BPE_SHORT_PIECE], tok[LLM_BPE_SHORT_PIECE];
  size_t k = n, i, j;
  /* parts are p[start[i] .. start[i+1]) with rank tok[i]; pair[i] is the
   * rank of part i joined with part i+1, NO_RANK past the last part */
  for (i = 0; i < n; i++) {
    start[i] = (uint32_t)i;
    tok[i] = e->byte_rank[p[i]];
  }
  start[n] = (uint32_t)n;
  for (i = 0; i + 1 < n; i++)
    pair[i] = e->pair_rank[(p[i] << 8) | p[i + 1]];
  pair[n - 1] = LLM_BPE_NO_RANK;
  for (;;) {
    uint32_t best = LLM_BPE_NO_RANK;
    j = 0;
    for (i = 0; i + 1 < k; i++)
      if (pair[i] < best) {
        best = pair[i];
        j = i;
      }
    if (best == LLM_BPE_NO_RANK)
      break;
    /* drop the boundary start[j+1]: parts j and j+1 become one */
    tok[j] = best;
    memmove(&start[j + 1], &start[j + 2], (k - j - 1) * sizeof start[0]);
    memmove(&tok[j + 1], &tok[j + 2], (k - j - 2) * sizeof tok[0]);
    memmove(&pair[j + 1], &pair[j + 2], (k - j - 2) * sizeof pair[0]);
    k--;
    pair[j] = j + 2 <= k ? llm_bpe_rank(e, p + start[j], start[j + 2] - start[j])
                         : LLM_BPE_NO_RANK;
    if (j > 0)
      pair[j - 1] = llm_bpe_rank(e, p + start[j - 1], start[j + 1] - start[j - 1]);
  }
  if (out)
    memcpy(out, tok, k * sizeof tok[0]);
  return k;
}

/* ---- long pieces: a priority queue over a linked list ------------------------------ */

/* Keys are (rank << 32) | position: the lowest key is the pair to merge.
 *
 * A radix heap holds them: each key sits in the bucket named by the
 * highest bit where it differs from the last key taken out, so pushes are
 * appends and a key moves to lower buckets a few times at most. It needs
 * keys no lower than the last taken; BPE nearly always obeys that (a new
 * pair usually ranks above the merge that made it), and the rare lower
 * key goes to a small binary heap beside it. */
typedef struct {
  uint64_t *v;
  size_t n, cap;
} keys;

typedef struct {
  keys bucket[65];
  keys low; /* binary heap of keys below `last` */
  uint64_t last;
  size_t count; /* keys in the buckets */
} radix_heap;

static int keys_push(keys *k, uint64_t v)
{
  if (k->n == k->cap) {
    size_t cap = k->cap ? 2 * k->cap : 64;
    uint64_t *grown = realloc(k->v, cap * sizeof *grown);
    if (!grown)
      return -1;
    k->v = grown;
    k->cap = cap;
  }
  k->v[k->n++] = v;
  return 0;
}

static int bucket_of(uint64_t key, uint64_t last)
{
  return key == last ? 0 : 64 - __builtin_clzll(key ^ last);
}

static int rh_push(radix_heap *h, uint64_t key)
{
  keys *low = &h->low;
  size_t i;
  if (key >= h->last) {
    h->count++;
    return keys_push(&h->bucket[bucket_of(key, h->last)], key);
  }
  if (keys_push(low, key) != 0)
    return -1;
  for (i = low->n - 1; i > 0 && low->v[(i - 1) / 2] > key; i = (i - 1) / 2)
    low->v[i] = low->v[(i - 1) / 2];
  low->v[i] = key;
  return 0;
}

static uint64_t low_pop(keys *low)
{
  uint64_t top = low->v[0], last = low->v[--low->n];
  size_t i = 0, c;
  while ((c = 2 * i + 1) < low->n) {
    if (c + 1 < low->n && low->v[c + 1] < low->v[c])
      c++;
    if (low->v[c] >= last)
      break;
    low->v[i] = low->v[c];
    i = c;
  }
  if (low->n)
    low->v[i] = last;
  return top;
}

/* Makes bucket 0 hold the smallest keys; call with count > 0. Returns -1
 * when out of memory. */
static int rh_settle(radix_heap *h)
{
  keys *b;
  uint64_t min;
  int i = 1;
  if (h->bucket[0].n)
    return 0;
  while (h->bucket[i].n == 0)
    i++;
  b = &h->bucket[i];
  min = b->v[0];
  for (size_t j = 1; j < b->n; j++)
    if (b->v[j] < min)
      min = b->v[j];
  h->last = min;
  /* every key of bucket i moves to a lower bucket */
  for (size_t j = 0; j < b->n; j++)
    if (keys_push(&h->bucket[bucket_of(b->v[j], min)], b->v[j]) != 0)
      return -1;
  b->n = 0;
  return 0;
}

/* Pops the smallest key into *key; requires a key to be present. Returns
 * -1 when out of memory. */
static int rh_pop(radix_heap *h, uint64_t *key)
{
  if (h->count) {
    if (rh_settle(h) != 0)
      return -1;
    if (!h->low.n || h->bucket[0].v[h->bucket[0].n - 1] < h->low.v[0]) {
      h->count--;
      *key = h->bucket[0].v[--h->bucket[0].n];
      return 0;
    }
  }
  *key = low_pop(&h->low);
  return 0;
}

static void rh_free(radix_heap *h)
{
  for (int i = 0; i < 65; i++)
    free(h->bucket[i].v);
  free(h->low.v);
}

typedef struct {
  uint32_t *next, *prev, *pair; /* per part, indexed by its first byte */
  radix_heap q;
} lattice;

/* Sets the pair at part `a` (a joined with its next part) and queues it. */
static int set_pair(const llm_bpe *e, lattice *l, const uint8_t *p, size_t n, uint32_t a)
{
  uint32_t b = l->next[a], end, r;
  if (b == NONE) {
    l->pair[a] = LLM_BPE_NO_RANK;
    return 0;
  }
  end = l->next[b] == NONE ? (uint32_t)n : l->next[b];
  r = llm_bpe_rank(e, p + a, end - a);
  l->pair[a] = r;
  return r == LLM_BPE_NO_RANK ? 0 : rh_push(&l->q, ((uint64_t)r << 32) | a);
}

static size_t merge_queue(const llm_bpe *e, const uint8_t *p, size_t n, uint32_t *out)
{
  lattice l = {0};
  size_t k = n, result = (size_t)-1;
  uint32_t i;
  l.next = malloc(n * sizeof *l.next);
  l.prev = malloc(n * sizeof *l.prev);
  l.pair = malloc(n * sizeof *l.pair);
  if (!l.next || !l.prev || !l.pair)
    goto done;
  for (i = 0; i < n; i++) {
    l.next[i] = i + 1 < n ? i + 1 : NONE;
    l.prev[i] = i > 0 ? i - 1 : NONE;
    l.pair[i] = i + 1 < n ? e->pair_rank[(p[i] << 8) | p[i + 1]] : LLM_BPE_NO_RANK;
    if (l.pair[i] != LLM_BPE_NO_RANK && rh_push(&l.q, ((uint64_t)l.pair[i] << 32) | i) != 0)
      goto done;
  }
  while (l.q.count || l.q.low.n) {
    uint64_t top;
    uint32_t rank, a, b;
    if (rh_pop(&l.q, &top) != 0)
      goto done;
    rank = (uint32_t)(top >> 32);
    a = (uint32_t)top;
    if (l.pair[a] != rank)
      continue; /* stale: part a was absorbed, or its pair changed */
    /* merge a with its next part b */
    b = l.next[a];
    l.next[a] = l.next[b];
    if (l.next[b] != NONE)
      l.prev[l.next[b]] = a;
    l.pair[b] = LLM_BPE_NO_RANK; /* b is gone: its queued keys go stale */
    k--;
    if (set_pair(e, &l, p, n, a) != 0 ||
        (l.prev[a] != NONE && set_pair(e, &l, p, n, l.prev[a]) != 0))
      goto done;
  }
  if (out) {
    size_t t = 0;
    for (uint32_t a = 0; a != NONE; a = l.next[a]) {
      uint32_t end = l.next[a] == NONE ? (uint32_t)n : l.next[a];
      out[t++] = end - a == 1 ? e->byte_rank[p[a]] : llm_bpe_rank(e, p + a, end - a);
    }
  }
  result = k;
done:
  free(l.next);
  free(l.prev);
  free(l.pair);
  rh_free(&l.q);
  return result;
}

size_t llm_bpe_merge(const llm_bpe *e, const uint8_t *p, size_t n, uint32_t *out)
{
  if (n <= LLM_BPE_SHORT_PIECE)
    return merge_scan(e, p, n, out);
  if (n >= UINT32_MAX)
    return (size_t)-1;
  return merge_queue(e, p, n, out);
}
