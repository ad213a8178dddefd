/* Tests for the simulator's embeddings (sim_model_embed): unit norm for
 * every size, determinism, bad arguments, and the cosines the semantic
 * cache experiments rely on (the README's table). */
#include "check.h"
#include "sim/sim_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double cosine(const char *model, const char *x, const char *y, int dims)
{
  float *a = malloc((size_t)dims * sizeof *a), *b = malloc((size_t)dims * sizeof *b);
  sim_model_embed(model, x, strlen(x), a, dims);
  sim_model_embed(model, y, strlen(y), b, dims);
  double d = 0;
  for (int i = 0; i < dims; i++)
    d += (double)a[i] * b[i];
  free(a);
  free(b);
  return d;
}

static void test_embeddings(void)
{
  CHECK_INT(sim_model_embed_dims("text-embedding-3-small"), 1536);
  CHECK_INT(sim_model_embed_dims("text-embedding-3-large"), 3072);
  CHECK_INT(sim_model_embed_dims("openai/text-embedding-ada-002"), 1536);
  CHECK_INT(sim_model_embed_dims("nomic-embed-text:latest"), 768);
  CHECK_INT(sim_model_embed_dims("who-knows"), 1536);
  CHECK_INT(sim_model_embed_dims(NULL), 1536);

  static const int dims[] = {1, 2, 8, 256, 1536, 3072, 16384};
  static const char *const texts[] = {"", "a", "What is 17 + 25?", "\xff\xfe broken utf-8 \xc3"};
  for (size_t d = 0; d < sizeof dims / sizeof *dims; d++) {
    float *v = malloc((size_t)dims[d] * sizeof *v), *w = malloc((size_t)dims[d] * sizeof *w);
    for (size_t t = 0; t < sizeof texts / sizeof *texts; t++) {
      CHECK_INT(sim_model_embed("text-embedding-3-small", texts[t], strlen(texts[t]), v, dims[d]), 0);
      double norm = 0;
      int finite = 1;
      for (int i = 0; i < dims[d]; i++) {
        norm += (double)v[i] * v[i];
        finite &= isfinite(v[i]);
      }
      CHECK(finite && fabs(norm - 1.0) < 1e-4);
      sim_model_embed("text-embedding-3-small", texts[t], strlen(texts[t]), w, dims[d]);
      CHECK(memcmp(v, w, (size_t)dims[d] * sizeof *v) == 0);
    }
    free(v);
    free(w);
  }
  float v[4];
  CHECK_INT(sim_model_embed("text-embedding-3-small", "x", 1, v, 0), -1);
  CHECK_INT(sim_model_embed("text-embedding-3-small", "x", 1, v, -3), -1);
  CHECK_INT(sim_model_embed("text-embedding-3-small", NULL, 1, v, 4), -1);
  CHECK_INT(sim_model_embed("text-embedding-3-small", "x", 1, NULL, 4), -1);
  float *big = malloc(20000 * sizeof *big);
  CHECK_INT(sim_model_embed("text-embedding-3-small", "x", 1, big, 16385), -1);
  free(big);

  /* The cosine table of the README. */
  static const struct { const char *a, *b; double lo, hi; } pairs[] = {
    {"What is the access code for the Lisbon office?", "What's the Lisbon office's access code?", 0.85, 0.95},
    {"What is the access code for the Lisbon office?", "Could you tell me the access code of the Lisbon office?", 0.85, 0.95},
    {"What is the access code for the Lisbon office?", "Lisbon office access code?", 0.8, 0.95},
    {"How do I reset my password?", "How can I reset my password?", 0.85, 0.97},
    {"What is 17 + 25?", "What is 17 + 26?", 0.75, 0.95},
    {"What is 17 + 25?", "Compute 17 + 25.", 0.65, 0.9},
    {"What is the access code for the Lisbon office?", "What is the alarm code for the Lisbon office?", 0.7, 0.9},
    {"What is the access code for the Lisbon office?", "What is the access code for the Porto office?", 0.6, 0.85},
    {"What is the access code for the Lisbon office?", "How do I reset my password?", -0.1, 0.3},
    {"Write a poem about the sea.", "Quarterly revenue grew by 12 percent in Europe.", -0.1, 0.3},
  };
  printf("cosines (text-embedding-3-small / ada-002):\n");
  for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++) {
    double c = cosine("text-embedding-3-small", pairs[i].a, pairs[i].b, 1536);
    double ada = cosine("text-embedding-ada-002", pairs[i].a, pairs[i].b, 1536);
    printf("  %.3f  %.3f  %s | %s\n", c, ada, pairs[i].a, pairs[i].b);
    CHECK(c >= pairs[i].lo && c <= pairs[i].hi);
    CHECK(ada > c); /* ada-002's floor lifts every pair */
  }
  /* Unrelated texts with ada-002 score about 0.7, as with the real one. */
  double ada = cosine("text-embedding-ada-002", "Write a poem about the sea.",
                      "Quarterly revenue grew by 12 percent in Europe.", 1536);
  CHECK(ada > 0.6 && ada < 0.8);
  /* Smaller dims keep the ordering. */
  CHECK(cosine("text-embedding-3-large", "What is 17 + 25?", "What is 17 + 26?", 256) >
        cosine("text-embedding-3-large", "What is 17 + 25?", "How do I reset my password?", 256));
  /* Different models are different spaces. */
  float a[1536], b[1536];
  sim_model_embed("text-embedding-3-small", "same text", 9, a, 1536);
  sim_model_embed("text-embedding-3-large", "same text", 9, b, 1536);
  double d = 0;
  for (int i = 0; i < 1536; i++)
    d += (double)a[i] * b[i];
  CHECK(d < 0.5);
}

int main(void)
{
  test_embeddings();
  return check_report("sim_embed");
}
