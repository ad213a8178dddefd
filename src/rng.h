/* A small, seedable pseudo-random generator for the engines that must be
 * reproducible: bootstrap resampling (same seed, same confidence
 * intervals) and reservoir sampling. xoshiro256** seeded through
 * splitmix64, as recommended by their authors (https://prng.di.unimi.it/);
 * not for anything secret. */
#ifndef LLMRUN_RNG_H
#define LLMRUN_RNG_H

#include <stdint.h>

typedef struct llm_rng {
  uint64_t s[4];
} llm_rng;

static inline uint64_t llm_rng_splitmix(uint64_t *x)
{
  uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static inline void llm_rng_seed(llm_rng *r, uint64_t seed)
{
  for (int i = 0; i < 4; i++)
    r->s[i] = llm_rng_splitmix(&seed);
}

static inline uint64_t llm_rng_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t llm_rng_next(llm_rng *r)
{
  uint64_t *s = r->s;
  uint64_t result = llm_rng_rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = llm_rng_rotl(s[3], 45);
  return result;
}

/* Uniform integer in [0, n), n > 0, without modulo bias (Lemire's
 * multiply-and-reject, https://arxiv.org/abs/1805.10941). */
static inline uint64_t llm_rng_below(llm_rng *r, uint64_t n)
{
  uint64_t x = llm_rng_next(r);
  __uint128_t m = (__uint128_t)x * n;
  uint64_t low = (uint64_t)m;
  if (low < n) {
    uint64_t threshold = -n % n;
    while (low < threshold) {
      x = llm_rng_next(r);
      m = (__uint128_t)x * n;
      low = (uint64_t)m;
    }
  }
  return (uint64_t)(m >> 64);
}

/* Uniform double in [0, 1). */
static inline double llm_rng_unit(llm_rng *r)
{
  return (double)(llm_rng_next(r) >> 11) * 0x1.0p-53;
}

#endif
