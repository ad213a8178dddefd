/* The priority queue of candidate merges for long pieces (bpe_merge.c):
 * keys (rank, position), the smallest first: the lowest rank, the
 * leftmost on ties, as tiktoken picks them. */
#ifndef LLMRUN_BPE_QUEUE_H
#define LLMRUN_BPE_QUEUE_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  uint32_t pos, next;
} llm_bpe_qnode;

typedef struct {
  uint32_t rank, head, tail, last; /* a FIFO of positions, non-decreasing */
  uint32_t used, queued;
} llm_bpe_qrank;

typedef struct {
  llm_bpe_qnode *node; /* FIFO nodes; popped ones are reused */
  size_t nnode, capnode;
  uint32_t free_node; /* a list through .next; 0 in a new queue: see below */
  llm_bpe_qrank *rank; /* open addressing by rank */
  size_t nrank, caprank;
  uint32_t *heap; /* ranks with a FIFO, lowest first (lazily cleaned) */
  size_t nheap, capheap;
  uint64_t *late; /* keys pushed out of order: (rank << 32) | position */
  size_t nlate, caplate;
} llm_bpe_queue;

/* Start from {0}. push and pop return -1 when out of memory; pop returns
 * 1 when the queue is empty. (free_node stores index + 1, so that {0} is
 * an empty list.) */
int llm_bpe_queue_push(llm_bpe_queue *q, uint32_t rank, uint32_t pos);
int llm_bpe_queue_pop(llm_bpe_queue *q, uint32_t *rank, uint32_t *pos);
void llm_bpe_queue_free(llm_bpe_queue *q);

#endif
