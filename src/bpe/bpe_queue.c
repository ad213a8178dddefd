/* The merge queue for long pieces. A binary heap over (rank, position)
 * keys works but costs O(log n) cache misses per step, and long pieces are
 * exactly where that hurts: runs of one character merge level by level,
 * each level a left-to-right sweep of one rank. So keys are kept per rank
 * in FIFOs of increasing positions (a push is an append), with a small
 * heap of the ranks in use; the rare key pushed to the left of its rank's
 * last one goes to a binary heap of "late" keys, and a pop takes the
 * smaller of the two candidates. */
#include <stdlib.h>

#include "bpe_queue.h"
#include "heap.h"

#define NONE UINT32_MAX

static size_t slot_of(uint32_t rank, size_t cap)
{
  return (size_t)((rank * 0x9E3779B1u) >> 7) & (cap - 1);
}

/* The entry for `rank`, added when missing; NULL when out of memory. */
static llm_bpe_qrank *find_rank(llm_bpe_queue *q, uint32_t rank, int add)
{
  size_t i;
  if (add && 2 * (q->nrank + 1) > q->caprank) {
    size_t cap = q->caprank ? 2 * q->caprank : 64;
    llm_bpe_qrank *old = q->rank, *t = calloc(cap, sizeof *t);
    if (!t)
      return NULL;
    for (size_t k = 0; k < q->caprank; k++)
      if (old[k].used) {
        for (i = slot_of(old[k].rank, cap); t[i].used; i = (i + 1) & (cap - 1))
          ;
        t[i] = old[k];
      }
    free(old);
    q->rank = t;
    q->caprank = cap;
  }
  if (!q->caprank)
    return NULL;
  for (i = slot_of(rank, q->caprank); q->rank[i].used; i = (i + 1) & (q->caprank - 1))
    if (q->rank[i].rank == rank)
      return &q->rank[i];
  if (!add)
    return NULL;
  q->nrank++;
  q->rank[i] = (llm_bpe_qrank){ rank, NONE, NONE, 0, 1, 0 };
  return &q->rank[i];
}

/* Binary min-heaps of 32-bit ranks and of 64-bit keys (heap.h). */
#define LESS(x, y) ((x) < (y))
LLM_HEAP(rank_heap, uint32_t, LESS, LLM_HEAP_UNTRACKED)
LLM_HEAP(key_heap, uint64_t, LESS, LLM_HEAP_UNTRACKED)

int llm_bpe_queue_push(llm_bpe_queue *q, uint32_t rank, uint32_t pos)
{
  llm_bpe_qrank *r = find_rank(q, rank, 1);
  uint32_t node;
  if (!r)
    return -1;
  if (r->head != NONE && pos < r->last) {
    uint64_t key = ((uint64_t)rank << 32) | pos;
    return key_heap_push(&q->late, &q->nlate, &q->caplate, key);
  }
  if (!q->free_node && llm_grow(&q->node, &q->capnode, q->nnode + 1, sizeof *q->node) != 0)
    return -1;
  if (!r->queued && rank_heap_push(&q->heap, &q->nheap, &q->capheap, rank) != 0)
    return -1;
  if (q->free_node) {
    node = q->free_node - 1;
    q->free_node = q->node[node].next;
  } else {
    node = (uint32_t)q->nnode++;
  }
  q->node[node] = (llm_bpe_qnode){ pos, NONE };
  if (r->head == NONE)
    r->head = node;
  else
    q->node[r->tail].next = node;
  r->tail = node;
  r->last = pos;
  r->queued = 1;
  return 0;
}

int llm_bpe_queue_pop(llm_bpe_queue *q, uint32_t *rank, uint32_t *pos)
{
  llm_bpe_qrank *r = NULL;
  /* the lowest rank whose FIFO has keys; drop emptied ones on the way */
  while (q->nheap) {
    r = find_rank(q, q->heap[0], 0);
    if (r->head != NONE)
      break;
    r->queued = 0;
    r = NULL;
    rank_heap_pop(q->heap, &q->nheap);
  }
  if (r && (!q->nlate || (((uint64_t)r->rank << 32) | q->node[r->head].pos) < q->late[0])) {
    uint32_t node = r->head;
    *rank = r->rank;
    *pos = q->node[node].pos;
    r->head = q->node[node].next;
    if (r->head == NONE)
      r->tail = NONE;
    q->node[node].next = q->free_node; /* reuse it: memory stays ~ live keys */
    q->free_node = node + 1;
    return 0;
  }
  if (q->nlate) {
    uint64_t key = key_heap_pop(q->late, &q->nlate);
    *rank = (uint32_t)(key >> 32);
    *pos = (uint32_t)key;
    return 0;
  }
  return 1;
}

void llm_bpe_queue_free(llm_bpe_queue *q)
{
  free(q->node);
  free(q->rank);
  free(q->heap);
  free(q->late);
  *q = (llm_bpe_queue){0};
}
