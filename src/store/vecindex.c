#include "vecindex.h"

#include "buf.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LANES 16 /* row padding and accumulator count: one AVX-512 or two AVX2 registers */

struct llm_vecindex {
  int dim, stride;      /* stride: dim rounded up to LANES */
  size_t n, cap;
  float *rows;          /* n * stride floats, zero padded */
  int64_t *ids;
  uint64_t *scopes;
};

llm_vecindex *llm_vecindex_new(int dim)
{
  llm_vecindex *ix;
  if (dim <= 0 || dim > (1 << 20))
    return NULL;
  ix = calloc(1, sizeof *ix);
  if (!ix)
    return NULL;
  ix->dim = dim;
  ix->stride = (dim + LANES - 1) / LANES * LANES;
  return ix;
}

void llm_vecindex_free(llm_vecindex *ix)
{
  if (!ix)
    return;
  free(ix->rows);
  free(ix->ids);
  free(ix->scopes);
  free(ix);
}

int llm_vecindex_dim(const llm_vecindex *ix) { return ix->dim; }
size_t llm_vecindex_count(const llm_vecindex *ix) { return ix->n; }

size_t llm_vecindex_bytes(const llm_vecindex *ix)
{
  return ix->cap * ((size_t)ix->stride * sizeof(float) + sizeof(int64_t) + sizeof(uint64_t));
}

double llm_vec_normalize(float *v, int dim)
{
  double sum = 0;
  for (int i = 0; i < dim; i++)
    sum += (double)v[i] * v[i];
  if (!(sum > 0) || !isfinite(sum))
    return 0;
  double norm = sqrt(sum);
  for (int i = 0; i < dim; i++)
    v[i] = (float)(v[i] / norm);
  return norm;
}

/* Three arrays side by side, grown to the same capacity (llm_grow is
 * deterministic: the same old capacity and need give the same new one). */
static int grow(llm_vecindex *ix)
{
  size_t rows = ix->cap, ids = ix->cap, scopes = ix->cap;
  if (llm_grow(&ix->rows, &rows, ix->n + 1, (size_t)ix->stride * sizeof(float)) != 0 ||
      llm_grow(&ix->ids, &ids, ix->n + 1, sizeof *ix->ids) != 0 ||
      llm_grow(&ix->scopes, &scopes, ix->n + 1, sizeof *ix->scopes) != 0)
    return -1;
  ix->cap = scopes;
  return 0;
}

int llm_vecindex_add(llm_vecindex *ix, int64_t id, uint64_t scope, const float *v)
{
  float *row;
  if (ix->n == ix->cap && grow(ix) != 0)
    return -1;
  row = ix->rows + ix->n * (size_t)ix->stride;
  memcpy(row, v, (size_t)ix->dim * sizeof(float));
  memset(row + ix->dim, 0, (size_t)(ix->stride - ix->dim) * sizeof(float));
  if (llm_vec_normalize(row, ix->dim) == 0)
    return -1;
  ix->ids[ix->n] = id;
  ix->scopes[ix->n] = scope;
  ix->n++;
  return 0;
}

int llm_vecindex_remove(llm_vecindex *ix, int64_t id)
{
  for (size_t i = 0; i < ix->n; i++) {
    if (ix->ids[i] != id)
      continue;
    size_t last = ix->n - 1;
    if (i != last) {
      memcpy(ix->rows + i * (size_t)ix->stride, ix->rows + last * (size_t)ix->stride,
             (size_t)ix->stride * sizeof(float));
      ix->ids[i] = ix->ids[last];
      ix->scopes[i] = ix->scopes[last];
    }
    ix->n--;
    return 1;
  }
  return 0;
}

/* ---- the scan ----------------------------------------------------------------
 * LANES independent partial sums: the loop needs no reassociation of float
 * additions (which -O2 may not do without -ffast-math), so it vectorises as
 * written. The same source is compiled twice: for the baseline ISA and,
 * on x86-64, for AVX2+FMA, picked once at run time. */

#define SCAN_BODY                                                              \
  {                                                                            \
    int found = 0;                                                             \
    float best = -2.0f;                                                        \
    size_t best_i = 0;                                                         \
    for (size_t i = 0; i < n; i++) {                                           \
      if (scopes[i] != scope)                                                  \
        continue;                                                              \
      const float *restrict r = rows + i * (size_t)stride;                     \
      float acc[LANES] = {0};                                                  \
      for (int j = 0; j < stride; j += LANES)                                  \
        for (int k = 0; k < LANES; k++)                                        \
          acc[k] += r[j + k] * q[j + k];                                       \
      float s = 0;                                                             \
      for (int k = 0; k < LANES; k++)                                          \
        s += acc[k];                                                           \
      if (s > best) {                                                          \
        best = s;                                                              \
        best_i = i;                                                            \
        found = 1;                                                             \
      }                                                                        \
    }                                                                          \
    *best_row = best_i;                                                        \
    *best_sim = best;                                                          \
    return found;                                                              \
  }

typedef int (*scan_fn)(const float *restrict rows, const uint64_t *scopes, size_t n,
                       int stride, uint64_t scope, const float *restrict q,
                       size_t *best_row, float *best_sim);

static int scan_portable(const float *restrict rows, const uint64_t *scopes, size_t n,
                         int stride, uint64_t scope, const float *restrict q,
                         size_t *best_row, float *best_sim)
SCAN_BODY

#if defined(__x86_64__) && defined(__GNUC__)
#define HAVE_AVX2_KERNEL 1
__attribute__((target("avx2,fma")))
static int scan_avx2(const float *restrict rows, const uint64_t *scopes, size_t n,
                     int stride, uint64_t scope, const float *restrict q,
                     size_t *best_row, float *best_sim)
SCAN_BODY
#endif

static scan_fn pick_kernel(const char **name)
{
#ifdef HAVE_AVX2_KERNEL
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    *name = "avx2+fma";
    return scan_avx2;
  }
#endif
  *name = "portable";
  return scan_portable;
}

static scan_fn kernel;
static const char *kernel_name;

const char *llm_vec_kernel(void)
{
  if (!kernel)
    kernel = pick_kernel(&kernel_name);
  return kernel_name;
}

int llm_vecindex_search(const llm_vecindex *ix, uint64_t scope, const float *q,
                        int64_t *id, float *similarity)
{
  float stackq[1024], *nq = stackq;
  size_t row;
  float sim;
  int found;
  if (ix->n == 0)
    return 0;
  if (ix->stride > (int)(sizeof stackq / sizeof stackq[0])) {
    nq = malloc((size_t)ix->stride * sizeof(float));
    if (!nq)
      return 0;
  }
  memcpy(nq, q, (size_t)ix->dim * sizeof(float));
  memset(nq + ix->dim, 0, (size_t)(ix->stride - ix->dim) * sizeof(float));
  if (llm_vec_normalize(nq, ix->dim) == 0) {
    if (nq != stackq)
      free(nq);
    return 0;
  }
  llm_vec_kernel();
  found = kernel(ix->rows, ix->scopes, ix->n, ix->stride, scope, nq, &row, &sim);
  if (nq != stackq)
    free(nq);
  if (!found)
    return 0;
  *id = ix->ids[row];
  *similarity = sim > 1.0f ? 1.0f : sim;
  return 1;
}
