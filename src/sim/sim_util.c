/* Hashing, deterministic random numbers and a byte buffer for the
 * simulator's model. The model must give the same answer to the same
 * request on every machine, so randomness is a pure function of hashes
 * (FNV-1a for bytes, the splitmix64 finaliser and generator for bits)
 * rather than a library PRNG whose sequence could differ. */
#include "sim_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

uint64_t sim_hash_bytes(uint64_t h, const void *p, size_t n)
{
  const unsigned char *s = p;
  for (size_t i = 0; i < n; i++) {
    h ^= s[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}

uint64_t sim_hash_str(uint64_t h, const char *s)
{
  /* The length goes in first so ("ab","c") and ("a","bc") differ. */
  size_t n = s ? strlen(s) : 0;
  h = sim_hash_u64(h, n);
  return sim_hash_bytes(h, s ? s : "", n);
}

uint64_t sim_hash_u64(uint64_t h, uint64_t v)
{
  unsigned char b[8];
  for (int i = 0; i < 8; i++)
    b[i] = (unsigned char)(v >> (8 * i));
  return sim_hash_bytes(h, b, 8);
}

uint64_t sim_mix64(uint64_t x)
{
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

void sim_rng_init(sim_rng *r, uint64_t seed)
{
  r->s = sim_mix64(seed);
}

uint64_t sim_rng_u64(sim_rng *r)
{
  r->s += 0x9e3779b97f4a7c15ULL;
  uint64_t z = r->s;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

double sim_rng_unit(sim_rng *r)
{
  return (double)(sim_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
}

uint32_t sim_rng_below(sim_rng *r, uint32_t n)
{
  return (uint32_t)(((sim_rng_u64(r) >> 32) * (uint64_t)n) >> 32);
}

double sim_rng_normal(sim_rng *r)
{
  /* Box-Muller; u1 is kept away from 0 so log() stays finite. */
  double u1 = sim_rng_unit(r), u2 = sim_rng_unit(r);
  if (u1 < 1e-300)
    u1 = 1e-300;
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

double sim_unit_of(uint64_t key)
{
  return (double)(sim_mix64(key) >> 11) * (1.0 / 9007199254740992.0);
}

/* ---- text ---------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s[0..n), or 0 if invalid
 * (overlongs, surrogates and code points above U+10FFFF are invalid). */
static size_t utf8_valid_len(const unsigned char *s, size_t n)
{
  unsigned c = s[0];
  if (c < 0x80)
    return 1;
  size_t len;
  unsigned min;
  if (c >= 0xc2 && c <= 0xdf) { len = 2; min = 0x80; }
  else if (c >= 0xe0 && c <= 0xef) { len = 3; min = 0x800; }
  else if (c >= 0xf0 && c <= 0xf4) { len = 4; min = 0x10000; }
  else return 0;
  if (n < len)
    return 0;
  unsigned cp = c & (0x3fu >> (len - 1));
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xc0) != 0x80)
      return 0;
    cp = (cp << 6) | (s[i] & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return len;
}

void sim_put_utf8(llm_buf *b, const char *s, size_t n)
{
  const unsigned char *u = (const unsigned char *)s;
  size_t i = 0, start = 0;
  while (i < n) {
    size_t k = utf8_valid_len(u + i, n - i);
    if (k) {
      i += k;
      continue;
    }
    llm_buf_put(b, s + start, i - start);
    llm_buf_put(b, "\xef\xbf\xbd", 3);
    i++;
    start = i;
  }
  llm_buf_put(b, s + start, i - start);
}

/* One digit changed: the context skill's garbled value and a task's wrong
 * answer (the same rng draws in both, so answers stay as they were). */
void sim_perturb_digit(llm_buf *out, const char *v, size_t n, sim_rng *rng)
{
  size_t digits = 0;
  for (size_t i = 0; i < n; i++)
    digits += v[i] >= '0' && v[i] <= '9';
  if (!digits)
    return;
  size_t pick = sim_rng_below(rng, (uint32_t)digits), seen = 0;
  size_t start = out->len;
  sim_put_utf8(out, v, n);
  for (size_t i = start; i < out->len; i++) {
    char c = out->data[i];
    if (c >= '0' && c <= '9' && seen++ == pick) {
      out->data[i] = (char)('0' + (c - '0' + 1 + (int)sim_rng_below(rng, 9)) % 10);
      break;
    }
  }
}
