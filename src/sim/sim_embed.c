/* The simulator's embeddings: deterministic vectors in which texts that
 * share words and spellings point the same way, so semantic-cache
 * experiments have real hits, misses and false hits.
 *
 * A text becomes features, each hashed to a dimension with a hashed sign
 * (the "hashing trick"), then the vector is L2-normalised:
 * - content words (stop words dropped, plural 's' dropped): weight 1.0,
 *   1.5 for a capitalised word inside a sentence (a name), 1.2 for a number;
 * - pairs of consecutive content words: 0.5;
 * - character 3-grams of the lower-cased text with stop words kept: 0.3.
 * Paraphrases share most content words and many 3-grams; a question about
 * another entity shares most 3-grams but not the name.
 *
 * Real embedding models are anisotropic: unrelated texts do not score 0.
 * A fixed direction per model is mixed in so that unrelated texts score
 * about 0.1 with text-embedding-3-* (and unknown models) and about 0.7 with
 * text-embedding-ada-002, which is what users of those models see; every
 * cosine c of the features becomes about (c + f) / (1 + f) with f = 0.1 or
 * 2.3. Vectors of different models are not comparable (each model has its
 * own hashing seed), as with the real ones. */
#include "sim_model.h"
#include "sim_internal.h"

#include <math.h>
#include <string.h>

#define MAX_DIMS 16384
#define W_WORD 1.0f
#define W_NAME 1.5f
#define W_NUMBER 0.5f
#define W_SYMBOL 0.35f
#define W_PAIR 0.5f
#define W_TRIGRAM 0.3f

/* Native dimensions of known embedding models (OpenAI's model pages for
 * text-embedding-3-small/-large and ada-002; the model cards of the open
 * ones). Unknown models: 1536. */
static const struct {
  const char *prefix;
  int dims;
} native[] = {
  {"text-embedding-3-large", 3072},
  {"text-embedding-3-small", 1536},
  {"text-embedding-ada-002", 1536},
  {"text-embedding-004", 768},
  {"text-embedding-005", 768},
  {"gemini-embedding", 3072},
  {"nomic-embed-text", 768},
  {"mxbai-embed-large", 1024},
  {"all-minilm", 384},
  {"bge-m3", 1024},
};

int sim_model_embed_dims(const char *model)
{
  char name[128];
  sim_model_name(model, name, sizeof name);
  for (size_t i = 0; i < sizeof native / sizeof *native; i++)
    if (strncmp(name, native[i].prefix, strlen(native[i].prefix)) == 0)
      return native[i].dims;
  return 1536;
}

static const char *const stopwords[] = {
  "a", "an", "the", "of", "for", "to", "in", "on", "at", "by", "with", "from", "and",
  "or", "is", "are", "was", "be", "it", "its", "this", "that", "what", "whats", "s",
  "me", "my", "you", "your", "our", "their", "i", "do", "does", "can", "could",
  "would", "please", "tell", "give", "know", "need", "which", "who", "how", "much",
};

static int is_stop(const char *w, size_t n)
{
  for (size_t i = 0; i < sizeof stopwords / sizeof *stopwords; i++)
    if (strlen(stopwords[i]) == n && memcmp(stopwords[i], w, n) == 0)
      return 1;
  return 0;
}

static void add(float *v, int dims, uint64_t seed, uint64_t h, float w)
{
  uint64_t x = sim_mix64(h ^ seed);
  int idx = (int)((x >> 1) % (uint64_t)dims);
  v[idx] += (x & 1) ? w : -w;
}

static int word_char(unsigned char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c >= 0x80;
}

static int symbol_char(unsigned char c)
{
  return c == '+' || c == '-' || c == '*' || c == '/' || c == '=' || c == '%' || c == '$';
}

int sim_model_embed(const char *model, const char *text, size_t len, float *out, int dims)
{
  if (!out || dims < 1 || dims > MAX_DIMS || (!text && len))
    return -1;
  char name[128];
  sim_model_name(model, name, sizeof name);
  uint64_t seed = sim_mix64(sim_hash_str(SIM_HASH_INIT, name));
  int ada = strncmp(name, "text-embedding-ada", 18) == 0;
  memset(out, 0, (size_t)dims * sizeof *out);

  /* Words and the 3-gram window walk the text once. The 3-grams see the
   * text lower-cased, with each run of separators as one space. */
  unsigned char tri[3] = {' ', ' ', ' '};
  int ntri = 1;
  uint64_t prev_word = 0;
  int have_prev = 0, sentence_start = 1;
  size_t i = 0;
  while (i <= len) {
    int at_end = i == len;
    unsigned char c = at_end ? ' ' : (unsigned char)text[i];
    if (!at_end && (word_char(c) || symbol_char(c))) {
      size_t j = i;
      int sym = symbol_char(c);
      while (j < len && (sym ? symbol_char((unsigned char)text[j])
                             : word_char((unsigned char)text[j])))
        j++;
      char w[64];
      size_t wl = 0, digits = 0;
      for (size_t k = i; k < j; k++) {
        unsigned char ch = (unsigned char)text[k];
        if (ch >= 'A' && ch <= 'Z')
          ch = (unsigned char)(ch - 'A' + 'a');
        digits += ch >= '0' && ch <= '9';
        if (wl < sizeof w)
          w[wl++] = (char)ch;
        /* 3-grams over the lower-cased characters, digits folded to one
         * symbol: like real embedding models, these see "17 + 25" and
         * "17 + 26" as nearly the same text (the number words still
         * differ). */
        tri[0] = tri[1];
        tri[1] = tri[2];
        tri[2] = ch >= '0' && ch <= '9' ? '#' : ch;
        if (++ntri >= 3)
          add(out, dims, seed, sim_hash_bytes(0x7431ULL, tri, 3), W_TRIGRAM);
      }
      int capital = text[i] >= 'A' && text[i] <= 'Z';
      size_t stem = wl;
      if (stem > 3 && w[stem - 1] == 's' && w[stem - 2] != 's')
        stem--;
      if (sym || !is_stop(w, wl)) {
        uint64_t h = sim_hash_bytes(0x5751ULL, w, sym ? wl : stem);
        float weight = sym ? W_SYMBOL : digits == wl ? W_NUMBER
                     : (capital && !sentence_start) ? W_NAME : W_WORD;
        add(out, dims, seed, h, weight);
        if (have_prev)
          add(out, dims, seed, sim_hash_u64(prev_word * 31 + 7, h), W_PAIR);
        prev_word = h;
        have_prev = 1;
      }
      sentence_start = 0;
      i = j;
      continue;
    }
    if (c == '.' || c == '!' || c == '?' || c == '\n')
      sentence_start = 1;
    /* A run of separators is one space in the 3-gram stream. */
    if (tri[2] != ' ') {
      tri[0] = tri[1];
      tri[1] = tri[2];
      tri[2] = ' ';
      if (++ntri >= 3)
        add(out, dims, seed, sim_hash_bytes(0x7431ULL, tri, 3), W_TRIGRAM);
    }
    i++;
  }

  double norm = 0;
  for (int d = 0; d < dims; d++)
    norm += (double)out[d] * out[d];
  norm = sqrt(norm);
  /* The shared direction b (a unit vector fixed per model and size): its
   * weight sqrt(f) gives unrelated texts a cosine of about f / (1 + f).
   * b is drawn twice from the same stream, first for its norm. */
  double beta = sqrt(ada ? 2.3 : 0.1), bnorm = 0, total = 0;
  sim_rng rng;
  sim_rng_init(&rng, seed ^ (uint64_t)dims ^ 0x5ca1ab1eULL);
  for (int d = 0; d < dims; d++) {
    double g = sim_rng_normal(&rng);
    bnorm += g * g;
  }
  bnorm = bnorm > 0 ? sqrt(bnorm) : 1.0;
  sim_rng_init(&rng, seed ^ (uint64_t)dims ^ 0x5ca1ab1eULL);
  for (int d = 0; d < dims; d++) {
    double x = norm > 0 ? out[d] / norm : 0;
    x += beta * sim_rng_normal(&rng) / bnorm;
    out[d] = (float)x;
    total += x * x;
  }
  total = total > 0 ? sqrt(total) : 1.0;
  for (int d = 0; d < dims; d++)
    out[d] = (float)(out[d] / total);
  return 0;
}
