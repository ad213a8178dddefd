/* Hand-written scanners equal to tiktoken's split patterns (bpe_pretok.h).
 *
 * Each pattern is an alternation tried in order at the current position,
 * with backtracking (fancy-regex / regex crate semantics, like PCRE): the
 * first alternative that can match wins, and within it greedy quantifiers
 * give back characters only as far as needed. The comments on each branch
 * say which alternative it is and why the shortcut is the same match. */
#include "bpe_pretok.h"

#include "bpe_unicode.h"

/* Classes as the scanners see them: the Unicode classes plus NL for \r and
 * \n (which are also \s but are named apart in every pattern). */
enum { OTHER = LLM_UC_OTHER, LU = LLM_UC_LU, LL = LLM_UC_LL, LMO = LLM_UC_LMO,
       MARK = LLM_UC_M, NUM = LLM_UC_N, WS = LLM_UC_WS, NL = 7 };

#define BIT(c) (1u << (c))
#define SET_L (BIT(LU) | BIT(LL) | BIT(LMO))       /* \p{L} */
#define SET_N BIT(NUM)                             /* \p{N} */
#define SET_S (BIT(WS) | BIT(NL))                  /* \s */
#define SET_PUNCT (BIT(OTHER) | BIT(MARK))         /* [^\s\p{L}\p{N}] */
#define SET_PREFIX (BIT(OTHER) | BIT(MARK) | BIT(WS)) /* [^\r\n\p{L}\p{N}] */
#define SET_UPPER (BIT(LU) | BIT(LMO) | BIT(MARK)) /* [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}] */
#define SET_LOWER (BIT(LL) | BIT(LMO) | BIT(MARK)) /* [\p{Ll}\p{Lm}\p{Lo}\p{M}] */

static const uint8_t ascii_class[128] = {
  /* controls; \t \v \f are White_Space, \n \r are NL */
  OTHER, OTHER, OTHER, OTHER, OTHER, OTHER, OTHER, OTHER,
  OTHER, WS, NL, WS, WS, NL, OTHER, OTHER,
  OTHER, OTHER, OTHER, OTHER, OTHER, OTHER, OTHER, OTHER,
  OTHER, OTHER, OTHER, OTHER, OTHER, OTHER, OTHER, OTHER,
  /* space ! " # $ % & ' ( ) * + , - . / */
  WS, OTHER, OTHER, OTHER, OTHER, OTHER, OTHER, OTHER,
  OTHER, OTHER, OTHER, OTHER, OTHER, OTHER, OTHER, OTHER,
  /* 0-9 : ; < = > ? */
  NUM, NUM, NUM, NUM, NUM, NUM, NUM, NUM, NUM, NUM,
  OTHER, OTHER, OTHER, OTHER, OTHER, OTHER,
  /* @ A-Z [ \ ] ^ _ */
  OTHER, LU, LU, LU, LU, LU, LU, LU, LU, LU, LU, LU, LU, LU, LU, LU,
  LU, LU, LU, LU, LU, LU, LU, LU, LU, LU, LU, OTHER, OTHER, OTHER, OTHER, OTHER,
  /* ` a-z { | } ~ DEL */
  OTHER, LL, LL, LL, LL, LL, LL, LL, LL, LL, LL, LL, LL, LL, LL, LL,
  LL, LL, LL, LL, LL, LL, LL, LL, LL, LL, LL, OTHER, OTHER, OTHER, OTHER, OTHER,
};

static inline int is_cont(uint8_t b) { return (b & 0xC0) == 0x80; }

/* Decodes one strictly valid UTF-8 sequence at s[i] (i < n, s[i] >= 0x80);
 * an invalid one is a single byte of class OTHER. */
static unsigned class_of_multibyte(const uint8_t *s, size_t i, size_t n, unsigned *len)
{
  uint8_t b = s[i];
  size_t left = n - i;
  uint32_t cp;
  if (b >= 0xC2 && b <= 0xDF) {
    if (left < 2 || !is_cont(s[i + 1]))
      goto invalid;
    cp = ((uint32_t)(b & 0x1F) << 6) | (s[i + 1] & 0x3F);
    *len = 2;
  } else if (b >= 0xE0 && b <= 0xEF) {
    uint8_t lo = b == 0xE0 ? 0xA0 : 0x80, hi = b == 0xED ? 0x9F : 0xBF;
    if (left < 3 || s[i + 1] < lo || s[i + 1] > hi || !is_cont(s[i + 2]))
      goto invalid;
    cp = ((uint32_t)(b & 0x0F) << 12) | ((uint32_t)(s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F);
    *len = 3;
  } else if (b >= 0xF0 && b <= 0xF4) {
    uint8_t lo = b == 0xF0 ? 0x90 : 0x80, hi = b == 0xF4 ? 0x8F : 0xBF;
    if (left < 4 || s[i + 1] < lo || s[i + 1] > hi || !is_cont(s[i + 2]) || !is_cont(s[i + 3]))
      goto invalid;
    cp = ((uint32_t)(b & 0x07) << 18) | ((uint32_t)(s[i + 1] & 0x3F) << 12) |
         ((uint32_t)(s[i + 2] & 0x3F) << 6) | (s[i + 3] & 0x3F);
    *len = 4;
  } else {
    goto invalid;
  }
  return llm_uc_lookup(cp) & LLM_UC_CLASS_MASK;
invalid:
  *len = 1;
  return OTHER;
}

/* Class of the character at s[i] (i < n) and its length in bytes. */
static inline unsigned class_at(const uint8_t *s, size_t i, size_t n, unsigned *len)
{
  if (s[i] < 0x80) {
    *len = 1;
    return ascii_class[s[i]];
  }
  return class_of_multibyte(s, i, n, len);
}

/* Class of the character at s[i], or a class in no set past the end. */
#define END_CLASS 8u
static inline unsigned class_or_end(const uint8_t *s, size_t i, size_t n, unsigned *len)
{
  if (i >= n) {
    *len = 0;
    return END_CLASS;
  }
  return class_at(s, i, n, len);
}

/* End of the run of characters in `set` that starts at s[i]. */
static inline size_t scan_run(const uint8_t *s, size_t i, size_t n, unsigned set)
{
  unsigned len;
  while (i < n && (BIT(class_at(s, i, n, &len)) & set))
    i += len;
  return i;
}

/* Length of a contraction 's 't 're 've 'm 'll 'd at s[i] (s[i] is '\''),
 * or 0. With fold set, letters match case-insensitively by Unicode simple
 * case folding, under which U+017F LATIN SMALL LETTER LONG S is also an
 * 's' (CaseFolding.txt; no other non-ASCII letter folds to one of these). */
static size_t contraction(const uint8_t *s, size_t i, size_t n, int fold)
{
  uint8_t a, b;
  if (i + 1 >= n)
    return 0;
  a = s[i + 1];
  if (fold) {
    if (a == 0xC5 && i + 2 < n && s[i + 2] == 0xBF)
      return 3; /* 'ſ */
    a |= (uint8_t)((a >= 'A' && a <= 'Z') << 5);
  }
  if (a == 's' || a == 't' || a == 'm' || a == 'd')
    return 2;
  if (i + 2 >= n || (a != 'r' && a != 'v' && a != 'l'))
    return 0;
  b = s[i + 2];
  if (fold)
    b |= (uint8_t)((b >= 'A' && b <= 'Z') << 5);
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
    return 3;
  return 0;
}

/* The whitespace alternatives every pattern ends with, at a \s character:
 *   \s*[\r\n]+   (cl100k, o200k): up to the last \r or \n of the run;
 *   \s+(?!\S)    the run, less its last character when a non-space follows
 *                (that character then joins the next piece: " word");
 *   \s+          a single whitespace character before a non-space. */
static size_t whitespace_piece(const uint8_t *s, size_t i, size_t n, int newline_rule)
{
  size_t last_nl_end = 0, last_start = i, j = i;
  unsigned len, c;
  while (j < n) {
    c = class_at(s, j, n, &len);
    if (c != WS && c != NL)
      break;
    if (c == NL)
      last_nl_end = j + len;
    last_start = j;
    j += len;
  }
  if (newline_rule && last_nl_end)
    return last_nl_end;
  if (j == n || last_start == i)
    return j;
  return last_start;
}

/* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static size_t next_r50k(const uint8_t *s, size_t i, size_t n)
{
  unsigned len, len2, c = class_at(s, i, n, &len), c2;
  size_t k;
  if (s[i] == '\'' && (k = contraction(s, i, n, 0)) != 0)
    return i + k;
  if (BIT(c) & SET_L)
    return scan_run(s, i + len, n, SET_L);
  if (c == NUM)
    return scan_run(s, i + len, n, SET_N);
  if (BIT(c) & SET_PUNCT)
    return scan_run(s, i + len, n, SET_PUNCT);
  if (s[i] == ' ') {
    c2 = class_or_end(s, i + 1, n, &len2);
    if (BIT(c2) & SET_L)
      return scan_run(s, i + 1, n, SET_L);
    if (c2 == NUM)
      return scan_run(s, i + 1, n, SET_N);
    if (BIT(c2) & SET_PUNCT)
      return scan_run(s, i + 1, n, SET_PUNCT);
  }
  return whitespace_piece(s, i, n, 0);
}

/* Up to three \p{N} characters: \p{N}{1,3}. */
static size_t digits3(const uint8_t *s, size_t i, size_t n)
{
  unsigned len;
  for (int k = 0; k < 3 && i < n && class_at(s, i, n, &len) == NUM; k++)
    i += len;
  return i;
}

/* ` ?[^\s\p{L}\p{N}]+` then a run of the bytes in `tail` ("\r\n" for
 * cl100k, "\r\n/" for o200k); i is at the space or the first symbol. The
 * greedy run never needs to give back: the tail is optional. */
static size_t symbol_piece(const uint8_t *s, size_t i, size_t n, int slash)
{
  size_t j = s[i] == ' ' ? i + 1 : i;
  j = scan_run(s, j, n, SET_PUNCT);
  while (j < n && (s[j] == '\r' || s[j] == '\n' || (slash && s[j] == '/')))
    j++;
  return j;
}

/* Is there a symbol piece at s[i]: a symbol, or a space then a symbol? */
static int symbol_starts(const uint8_t *s, size_t i, size_t n, unsigned c)
{
  unsigned len;
  if (BIT(c) & SET_PUNCT)
    return 1;
  return s[i] == ' ' && (BIT(class_or_end(s, i + 1, n, &len)) & SET_PUNCT);
}

/* (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}
 * | ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
static size_t next_cl100k(const uint8_t *s, size_t i, size_t n)
{
  unsigned len, len2, c = class_at(s, i, n, &len);
  size_t k;
  if (s[i] == '\'' && (k = contraction(s, i, n, 1)) != 0)
    return i + k;
  if (BIT(c) & SET_L)
    return scan_run(s, i + len, n, SET_L);
  /* The optional prefix is possessive in effect: without it the letters
   * would have to start at a non-letter. */
  if ((BIT(c) & SET_PREFIX) && (BIT(class_or_end(s, i + len, n, &len2)) & SET_L))
    return scan_run(s, i + len, n, SET_L);
  if (c == NUM)
    return digits3(s, i, n);
  if (symbol_starts(s, i, n, c))
    return symbol_piece(s, i, n, 0);
  return whitespace_piece(s, i, n, 1);
}

/* The o200k word alternatives after the optional prefix, from s[i]:
 *   A: [upper]*[lower]+(?i:contraction)?
 *   B: [upper]+[lower]*(?i:contraction)?
 * where upper = [Lu Lt Lm Lo M] and lower = [Ll Lm Lo M] overlap. Returns
 * the end of A's match, or 0 when A cannot match here; *upper_end is then
 * the end of the upper run (B matches iff it is > i). */
static size_t word_a(const uint8_t *s, size_t i, size_t n, size_t *upper_end)
{
  size_t j = i, last_lower_end = 0, q;
  unsigned len, c;
  /* upper* is greedy: take the whole run, remembering the last character
   * that is also lower, for when lower+ finds nothing after the run. */
  for (;;) {
    c = class_or_end(s, j, n, &len);
    if (!(BIT(c) & SET_UPPER))
      break;
    j += len;
    if (BIT(c) & SET_LOWER)
      last_lower_end = j;
  }
  if (BIT(c) & SET_LOWER) {
    /* lower+ continues right after the full upper run */
    q = scan_run(s, j + len, n, SET_LOWER);
  } else if (last_lower_end) {
    /* backtrack: upper* gives back up to its last lower-class character,
     * which lower+ then matches alone (nothing lower follows it) */
    q = last_lower_end;
  } else {
    *upper_end = j;
    return 0;
  }
  if (q < n && s[q] == '\'')
    q += contraction(s, q, n, 1);
  return q;
}

static size_t next_o200k(const uint8_t *s, size_t i, size_t n)
{
  unsigned len, c = class_at(s, i, n, &len);
  size_t end, upper_end;
  if (BIT(c) & SET_L) {
    /* no prefix possible: A, else B (the upper run is not empty here) */
    if ((end = word_a(s, i, n, &upper_end)) != 0)
      return end;
    end = upper_end;
    if (end < n && s[end] == '\'')
      end += contraction(s, end, n, 1);
    return end;
  }
  if (BIT(c) & SET_PREFIX) {
    /* A with the prefix taken; then A without it (only a mark can start
     * it, and then it always matches); then B with the prefix. */
    if ((end = word_a(s, i + len, n, &upper_end)) != 0)
      return end;
    if (c == MARK)
      return word_a(s, i, n, &upper_end);
    if (upper_end > i + len) {
      end = upper_end;
      if (end < n && s[end] == '\'')
        end += contraction(s, end, n, 1);
      return end;
    }
  }
  if (c == NUM)
    return digits3(s, i, n);
  if (symbol_starts(s, i, n, c))
    return symbol_piece(s, i, n, 1);
  return whitespace_piece(s, i, n, 1);
}

size_t llm_pretok_next(llm_bpe_pattern pat, const uint8_t *s, size_t pos, size_t len)
{
  switch (pat) {
  case LLM_BPE_PAT_CL100K: return next_cl100k(s, pos, len);
  case LLM_BPE_PAT_O200K: return next_o200k(s, pos, len);
  default: return next_r50k(s, pos, len);
  }
}
