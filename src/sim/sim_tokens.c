/* The simulator's token counts. One function, sim_token_ends(), decides
 * every token count the simulator reports and the piece boundaries it
 * streams. It uses llmrun's tokenizer with o200k_base (the encoding of the
 * gpt-4o, gpt-4.1, o-series and gpt-5 families), so usage matches what
 * tiktoken would count for those models; pieces never split a UTF-8
 * character (a token ending inside one joins the next).
 *
 * The approximation below is the fallback if the encoding cannot load
 * (it is built into the binary, so that should not happen). How it works: the text is first split the way tiktoken's cl100k_base /
 * o200k_base pre-tokenizer regex splits it (a word with its leading space
 * or punctuation, runs of 1-3 digits, punctuation runs, whitespace runs;
 * the regex is in openai/tiktoken, tiktoken_ext/openai_public.py). BPE then
 * turns most English words into one token and long or rare ones into
 * several; without the vocabulary we use the expected number of tokens for
 * a word of that length, case and prefix, measured with o200k_base on
 * ~120,000 tokens of English prose and technical Markdown (GNU and Mozilla
 * licences, Node.js API docs). The fraction is rounded up or down by a
 * hash of the word, so a given word always gets the same count and totals
 * come out right on average. On that corpus the totals are within a few
 * per cent of o200k_base and cl100k_base (see the tests). Text that is not
 * English (CJK, Cyrillic...) is estimated from its character count and is
 * rougher. */
#include "sim_internal.h"

#include "bpe/bpe.h"

#include <stdint.h>

/* Expected tokens of an ASCII letter run of length 1..16 by class, from
 * the measurement above (smoothed where samples were few). Longer runs:
 * length / 4.3. */
enum { W_SP_LOWER, W_NO_LOWER, W_PU_LOWER, W_SP_CAP, W_NO_CAP, W_PU_CAP, W_UPPER, W_NCLASS };
static const float word_tokens[W_NCLASS][16] = {
  [W_SP_LOWER] = {1, 1, 1, 1.01f, 1.02f, 1.02f, 1.02f, 1.04f, 1.08f, 1.22f, 1.22f, 1.3f, 1.5f, 1.75f, 2.6f, 3.2f},
  [W_NO_LOWER] = {1, 1, 1.2f, 1.06f, 1.06f, 1.09f, 1.05f, 1.26f, 1.53f, 1.73f, 1.89f, 1.9f, 2.6f, 2.4f, 2.9f, 3.0f},
  [W_PU_LOWER] = {1.02f, 1.06f, 1.16f, 1.28f, 1.41f, 1.62f, 1.68f, 1.74f, 1.78f, 2.16f, 2.26f, 2.3f, 2.6f, 2.87f, 2.9f, 3.45f},
  [W_SP_CAP] = {1, 1, 1.01f, 1.01f, 1.06f, 1.11f, 1.11f, 1.22f, 1.31f, 1.58f, 1.5f, 1.44f, 1.6f, 1.8f, 2.4f, 2.6f},
  [W_NO_CAP] = {1, 1, 1, 1.03f, 1.04f, 1.06f, 1.12f, 1.39f, 1.64f, 1.69f, 1.64f, 2.2f, 2.5f, 2.6f, 2.7f, 2.8f},
  [W_PU_CAP] = {1.05f, 1.2f, 1.5f, 1.4f, 1.8f, 1.77f, 2.4f, 2.8f, 3.0f, 3.0f, 2.8f, 2.8f, 2.9f, 3.0f, 3.1f, 3.2f},
  [W_UPPER] = {1, 1, 1.2f, 1.3f, 1.7f, 1.9f, 1.6f, 2.2f, 2.4f, 2.5f, 2.6f, 2.8f, 3.0f, 3.2f, 3.4f, 3.6f},
};

/* Expected tokens of a punctuation run of length 1..7; longer: len / 2.3. */
static const float punct_tokens[7] = {1, 1.07f, 1.2f, 1.35f, 2.2f, 2.2f, 3.0f};

enum { C_SPACE, C_NEWLINE, C_DIGIT, C_LETTER, C_PUNCT };

/* Decodes the character at s[i] (n bytes left): its class and byte length.
 * Invalid UTF-8 counts as one punctuation byte, as byte-level BPE would
 * treat it as an unknown symbol. */
static int char_class(const unsigned char *s, size_t n, size_t *len)
{
  unsigned c = s[0];
  *len = 1;
  if (c < 0x80) {
    if (c == '\n' || c == '\r')
      return C_NEWLINE;
    if (c == ' ' || c == '\t' || c == '\v' || c == '\f')
      return C_SPACE;
    if (c >= '0' && c <= '9')
      return C_DIGIT;
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')
      return C_LETTER;
    return C_PUNCT;
  }
  size_t k = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
  if (k == 0 || k > n)
    return C_PUNCT;
  unsigned cp = c & (0x7fu >> k);
  for (size_t i = 1; i < k; i++) {
    if ((s[i] & 0xc0) != 0x80)
      return C_PUNCT;
    cp = (cp << 6) | (s[i] & 0x3f);
  }
  *len = k;
  /* Latin-1 punctuation, general punctuation (dashes, curly quotes),
   * arrows, symbols and emoji are not letters for the pre-tokenizer. */
  if (cp == 0xa0 || cp == 0x2028 || cp == 0x2029 || cp == 0x3000)
    return C_SPACE;
  if ((cp >= 0xa1 && cp <= 0xbf) || cp == 0xd7 || cp == 0xf7 ||
      (cp >= 0x2000 && cp <= 0x2bff) || (cp >= 0x3001 && cp <= 0x303f) ||
      (cp >= 0xff01 && cp <= 0xff0f) || cp >= 0x1f000)
    return C_PUNCT;
  return C_LETTER;
}

static int class_at(const char *s, size_t n, size_t i, size_t *len)
{
  if (i >= n) {
    *len = 0;
    return -1;
  }
  return char_class((const unsigned char *)s + i, n - i, len);
}

/* Rounds an expected count to an integer, up or down by a hash of the
 * piece, so the same word always gets the same count. */
static size_t round_by_hash(double e, const char *s, size_t n)
{
  size_t whole = (size_t)e;
  double frac = e - (double)whole;
  if (frac > 0 && sim_unit_of(sim_hash_bytes(SIM_HASH_INIT, s, n)) < frac)
    whole++;
  return whole ? whole : 1;
}

/* Expected tokens of a letter pretoken: prefix is 0 (none), ' ' or other
 * punctuation; the run is s[a..b). */
static double letters_expected(const char *s, size_t a, size_t b, int prefix)
{
  size_t ascii = 0, two = 0, more = 0, upper = 0;
  for (size_t i = a; i < b;) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x80) {
      ascii++;
      upper += c >= 'A' && c <= 'Z';
      i++;
    } else {
      size_t k = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
      if (k == 2)
        two++;
      else
        more++;
      i += k;
    }
  }
  if (two || more) /* rough: accented Latin/Cyrillic ~2 chars a token, CJK ~1 */
    return (double)ascii / 4.3 + (double)two * 0.5 + (double)more * 0.9 + 0.3;
  size_t len = ascii;
  if (len > 16)
    return (double)len / 4.3;
  int cls;
  int first_upper = s[a] >= 'A' && s[a] <= 'Z';
  if (upper == len && len > 1)
    cls = W_UPPER;
  else if (first_upper)
    cls = prefix == ' ' ? W_SP_CAP : prefix ? W_PU_CAP : W_NO_CAP;
  else
    cls = prefix == ' ' ? W_SP_LOWER : prefix ? W_PU_LOWER : W_NO_LOWER;
  return word_tokens[cls][len - 1];
}

/* Emits a pretoken s[a..b) as k pieces of about equal character counts. */
static size_t emit(const char *s, size_t a, size_t b, size_t k, size_t *ends,
                   size_t cap, size_t count)
{
  if (k <= 1) { /* the common case: one piece */
    if (ends && count < cap)
      ends[count] = b;
    return count + 1;
  }
  size_t chars = 0;
  for (size_t i = a; i < b; chars++) {
    size_t len;
    class_at(s, b, i, &len);
    i += len;
  }
  if (k > chars)
    k = chars;
  if (k == 0)
    k = 1;
  size_t per = chars / k, extra = chars % k, i = a;
  for (size_t piece = 0; piece < k; piece++) {
    size_t want = per + (piece < extra);
    for (size_t c = 0; c < want && i < b; c++) {
      size_t len;
      class_at(s, b, i, &len);
      i += len;
    }
    if (piece == k - 1)
      i = b;
    if (ends && count < cap)
      ends[count] = i;
    count++;
  }
  return count;
}

static int is_contraction(const char *s, size_t n, size_t i, size_t *len)
{
  static const char *const suffixes[] = {"ll", "ve", "re", "s", "t", "m", "d"};
  if (s[i] != '\'' && !(i + 2 < n && (unsigned char)s[i] == 0xe2 &&
                        (unsigned char)s[i + 1] == 0x80 && (unsigned char)s[i + 2] == 0x99))
    return 0;
  size_t q = s[i] == '\'' ? 1 : 3;
  for (size_t k = 0; k < sizeof suffixes / sizeof *suffixes; k++) {
    size_t m = 0;
    while (suffixes[k][m] && i + q + m < n && (s[i + q + m] | 0x20) == suffixes[k][m])
      m++;
    if (suffixes[k][m] != '\0')
      continue;
    size_t l2;
    if (class_at(s, n, i + q + m, &l2) == C_LETTER)
      continue;
    *len = q + m;
    return 1;
  }
  return 0;
}

static size_t approx_token_ends(const char *s, size_t n, size_t *ends, size_t cap)
{
  size_t count = 0, i = 0;
  if (!s)
    return 0;
  while (i < n) {
    size_t len, len2, j;
    int c = class_at(s, n, i, &len);
    if (is_contraction(s, n, i, &len2)) {
      count = emit(s, i, i + len2, 1, ends, cap, count);
      i += len2;
      continue;
    }
    /* A word, with one leading space or punctuation character. */
    int next = class_at(s, n, i + len, &len2);
    if (c == C_LETTER || ((c == C_SPACE || c == C_PUNCT) && next == C_LETTER)) {
      int prefix = 0;
      size_t a = i;
      if (c != C_LETTER) {
        prefix = s[i] == ' ' ? ' ' : '.';
        a = i + len;
      }
      for (j = a; j < n;) {
        if (class_at(s, n, j, &len2) != C_LETTER)
          break;
        j += len2;
      }
      size_t k = round_by_hash(letters_expected(s, a, j, prefix), s + i, j - i);
      count = emit(s, i, j, k, ends, cap, count);
      i = j;
      continue;
    }
    if (c == C_DIGIT) {
      for (j = i; j < n && j - i < 3 && s[j] >= '0' && s[j] <= '9'; j++)
        ;
      count = emit(s, i, j, 1, ends, cap, count);
      i = j;
      continue;
    }
    /* Punctuation, with one leading space and its trailing newlines. */
    if (c == C_PUNCT || (s[i] == ' ' && next == C_PUNCT)) {
      size_t a = c == C_PUNCT ? i : i + 1;
      size_t plen = 0;
      for (j = a; j < n; plen++) {
        if (class_at(s, n, j, &len2) != C_PUNCT)
          break;
        j += len2;
      }
      while (j < n && (s[j] == '\n' || s[j] == '\r'))
        j++;
      double e = plen <= 7 ? punct_tokens[plen - 1] : (double)plen / 2.3;
      count = emit(s, i, j, round_by_hash(e, s + a, j - a), ends, cap, count);
      i = j;
      continue;
    }
    /* Whitespace: up to the last newline of the run, else all of it but
     * the last space when a word follows (the word takes that space). */
    size_t last_nl = 0;
    int has_nl = 0;
    for (j = i; j < n;) {
      int cc = class_at(s, n, j, &len2);
      if (cc != C_SPACE && cc != C_NEWLINE)
        break;
      if (cc == C_NEWLINE) {
        has_nl = 1;
        last_nl = j + len2;
      }
      j += len2;
    }
    if (has_nl)
      j = last_nl;
    else if (j < n && j - i > 1 && s[j - 1] == ' ') {
      int after = class_at(s, n, j, &len2);
      if (after == C_LETTER || after == C_PUNCT)
        j--;
    }
    /* One token per run; very long runs take one per 64 characters. */
    count = emit(s, i, j, (j - i + 63) / 64, ends, cap, count);
    i = j;
  }
  return count;
}

/* A byte that continues a UTF-8 character (10xxxxxx). */
static int is_continuation(unsigned char c) { return (c & 0xc0) == 0x80; }

size_t sim_token_ends(const char *s, size_t n, size_t *ends, size_t cap)
{
  const llm_bpe *enc;
  llm_bpe_ids ids = {0};
  size_t count = 0, at = 0;
  if (!s || n == 0)
    return 0;
  enc = llm_bpe_get("o200k_base", NULL, 0);
  if (!enc || llm_bpe_encode(enc, s, n, 0, &ids) != 0) {
    llm_bpe_ids_free(&ids);
    return approx_token_ends(s, n, ends, cap);
  }
  /* Counting and cutting walk the same tokens, so the count without
   * `ends` always equals the number of pieces with it. */
  for (size_t i = 0; i < ids.n; i++) {
    const uint8_t *bytes;
    at += llm_bpe_token_bytes(enc, ids.ids[i], &bytes);
    /* a piece must be valid UTF-8 on its own: end it on a character */
    if (at < n && is_continuation((unsigned char)s[at]))
      continue;
    if (ends && count < cap)
      ends[count] = at;
    count++;
  }
  llm_bpe_ids_free(&ids);
  return count;
}

size_t sim_token_count(const char *s, size_t n)
{
  const llm_bpe *enc;
  size_t c;
  if (!s || n == 0)
    return 0;
  enc = llm_bpe_get("o200k_base", NULL, 0);
  c = enc ? llm_bpe_count(enc, s, n, 0) : (size_t)-1;
  return c == (size_t)-1 ? approx_token_ends(s, n, NULL, 0) : c;
}
