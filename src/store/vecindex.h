/* Nearest-neighbour search for the semantic cache: brute force over one
 * contiguous float32 matrix in memory. Rows are normalised when added, so
 * cosine similarity is one dot product; rows are padded to a multiple of
 * 16 floats so the dot product is a fixed-shape loop the compiler turns
 * into SIMD code at -O2 (and into AVX2+FMA code, chosen at run time, on
 * CPUs that have it). 100,000 rows of 256 dimensions are 100 MB and one
 * scan of them a few milliseconds: fast enough that an approximate index
 * would buy little at the sizes a response cache reaches.
 *
 * Each row carries an id (the sqlite row id) and a scope: a search only
 * considers rows of its scope (requests that differ in anything but the
 * last user message never match). */
#ifndef LLMRUN_VECINDEX_H
#define LLMRUN_VECINDEX_H

#include <stddef.h>
#include <stdint.h>

typedef struct llm_vecindex llm_vecindex;

llm_vecindex *llm_vecindex_new(int dim);
void llm_vecindex_free(llm_vecindex *ix);
int llm_vecindex_dim(const llm_vecindex *ix);
size_t llm_vecindex_count(const llm_vecindex *ix);
/* Bytes of row storage held. */
size_t llm_vecindex_bytes(const llm_vecindex *ix);

/* Adds a copy of v (dim floats), normalised. 0, or -1 when out of memory
 * or v is zero or not finite. */
int llm_vecindex_add(llm_vecindex *ix, int64_t id, uint64_t scope, const float *v);
/* Removes the row with this id; 1 if there was one. */
int llm_vecindex_remove(llm_vecindex *ix, int64_t id);
/* The most similar row of the scope to q (which need not be normalised):
 * 1 with *id and *similarity (cosine, -1..1), or 0 if the scope is empty
 * or q is zero. */
int llm_vecindex_search(const llm_vecindex *ix, uint64_t scope, const float *q,
                        int64_t *id, float *similarity);

/* Scales v to unit length; returns its former length (0: left alone). */
double llm_vec_normalize(float *v, int dim);
/* The kernel in use: "avx2+fma" or "portable". */
const char *llm_vec_kernel(void);

#endif
