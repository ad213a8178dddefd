/* Byte-pair merging of one pre-tokenized piece (bpe_merge.c). */
#ifndef LLMRUN_BPE_MERGE_H
#define LLMRUN_BPE_MERGE_H

#include "bpe_internal.h"

/* Pieces up to this many bytes merge with tiktoken's own quadratic scan on
 * the stack; longer ones with an O(n log n) heap (n * ~12-36 bytes). */
#define LLM_BPE_SHORT_PIECE 48

/* Merges p[0..n) (n >= 1) and returns the number of tokens, writing their
 * ids to out[] when out is not NULL (room for n ids). p[0..avail) may be
 * read (avail >= n; more lets it skip a copy). Returns (size_t)-1 when
 * out of memory. */
size_t llm_bpe_merge(const llm_bpe *e, const uint8_t *p, size_t n, size_t avail, uint32_t *out);

#endif
