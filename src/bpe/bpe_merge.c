/* Byte-pair merging of one piece, exactly as tiktoken's _byte_pair_merge
 * (src/lib.rs): start from single bytes; repeatedly merge the adjacent pair
 * whose concatenation has the lowest rank, the leftmost on ties; stop when
 * no adjacent pair is a token.
 *
 * tiktoken rescans the whole piece after each merge, which is quadratic in
 * the piece length. Short pieces (nearly all of them) use the same scan
 * here, which is fastest when small; long ones keep their parts in a
 * linked list and the candidate pairs in a priority queue (bpe_queue.c),
 * near-linear: a stale entry is recognised because its rank no longer
 * equals the current rank of the pair at its position (a longer pair never
 * has the same rank, as each rank names one byte string). */
#include <stdlib.h>

#include "bpe_merge.h"
#include "bpe_queue.h"

#define NONE UINT32_MAX

/* ---- short pieces: tiktoken's scan ---------------------------------------- */

static size_t merge_scan(const llm_bpe *e, const uint8_t *p, size_t n, size_t avail,
                         uint32_t *out)
{
  /* llm_bpe_rank_padded reads 8 bytes from each part: near the end of
   * what may be read, work on a copy with zeros after it */
  uint8_t copy[LLM_BPE_SHORT_PIECE + 8];
  /* part i starts at byte start(i) = (uint32_t)key[i] and ends where part
   * i+1 starts; key[i] >> 32 is the rank of part i joined with part i+1
   * (NO_RANK past the last part), so the smallest key is the lowest rank,
   * the leftmost on ties. tok[b] is the rank of the merged part that
   * starts at byte b (when encoding, a single byte's byte_rank). */
  uint64_t key[LLM_BPE_SHORT_PIECE + 1];
  uint32_t tok[LLM_BPE_SHORT_PIECE];
  size_t k = n, i, j;
#define START(i) ((uint32_t)key[i])
  if (avail < n + 8) {
    static const uint8_t zeros[8];
    memcpy(copy, p, n);
    memcpy(copy + n, zeros, 8);
    p = copy;
  }
  for (i = 0; i + 1 < n; i++)
    key[i] = (uint64_t)e->pair_rank[(p[i] << 8) | p[i + 1]] << 32 | i;
  /* encoding: each part starts as its byte's token, so the ids are read
   * below without a branch on each part's length, which text of rarer
   * scripts (a few merges among many single bytes) mispredicts: ~6% less
   * time encoding scripts.txt. Counting skips both. */
  if (out)
    for (i = 0; i < n; i++)
      tok[i] = e->byte_rank[p[i]];
  key[n - 1] = (uint64_t)LLM_BPE_NO_RANK << 32 | (n - 1);
  key[n] = (uint64_t)LLM_BPE_NO_RANK << 32 | n;
  for (;;) {
    uint64_t best = key[0];
    uint32_t start, rank;
    j = 0;
    for (i = 1; i + 1 < k; i++)
      if (key[i] < best) {
        best = key[i];
        j = i;
      }
    rank = (uint32_t)(best >> 32);
    if (rank == LLM_BPE_NO_RANK)
      break;
    /* drop part j+1's start: parts j and j+1 become one */
    start = (uint32_t)best;
    tok[start] = rank;
    memmove(&key[j + 1], &key[j + 2], (k - j - 1) * sizeof key[0]);
    k--;
    key[j] = j + 1 < k ? (uint64_t)llm_bpe_rank_padded(e, p + start, START(j + 2) - start) << 32 | start
                       : (uint64_t)LLM_BPE_NO_RANK << 32 | start;
    if (j > 0)
      key[j - 1] = (uint64_t)llm_bpe_rank_padded(e, p + START(j - 1), START(j + 1) - START(j - 1)) << 32 |
                   START(j - 1);
  }
  if (out)
    for (i = 0; i < k; i++)
      out[i] = tok[START(i)];
#undef START
  return k;
}

/* ---- long pieces: a priority queue over a linked list ------------------------------ */

typedef struct {
  uint32_t *next, *prev, *pair; /* per part, indexed by its first byte */
  llm_bpe_queue q;
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
  /* n - a >= 8: the 8-byte loads of a short key stay inside the piece */
  r = n - a >= 8 ? llm_bpe_rank_padded(e, p + a, end - a) : llm_bpe_rank(e, p + a, end - a);
  l->pair[a] = r;
  return r == LLM_BPE_NO_RANK ? 0 : llm_bpe_queue_push(&l->q, r, a);
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
    if (l.pair[i] != LLM_BPE_NO_RANK && llm_bpe_queue_push(&l.q, l.pair[i], i) != 0)
      goto done;
  }
  for (;;) {
    uint32_t rank, a, b;
    int got = llm_bpe_queue_pop(&l.q, &rank, &a);
    if (got < 0)
      goto done;
    if (got > 0)
      break;
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
  llm_bpe_queue_free(&l.q);
  return result;
}

size_t llm_bpe_merge(const llm_bpe *e, const uint8_t *p, size_t n, size_t avail, uint32_t *out)
{
  if (n <= LLM_BPE_SHORT_PIECE)
    return merge_scan(e, p, n, avail, out);
  if (n >= UINT32_MAX)
    return (size_t)-1;
  return merge_queue(e, p, n, out);
}
