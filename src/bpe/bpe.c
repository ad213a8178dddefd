/* Encoding, counting, decoding and truncating with a loaded encoding.
 *
 * The text is split into pieces by the encoding's pattern (bpe_pretok.c);
 * a piece that is itself a token (most words) costs one hash lookup, and
 * the others are merged by bpe_merge.c. With LLM_BPE_SPECIAL, special-token
 * text is cut out first and the ordinary text between is encoded on its
 * own, as tiktoken's encode(allowed_special="all") does. Nothing here
 * writes shared state, so every function is reentrant. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "bpe_merge.h"
#include "buf.h"

const char *llm_bpe_name(const llm_bpe *e) { return e->name; }

uint32_t llm_bpe_n_vocab(const llm_bpe *e) { return e->n_vocab; }

size_t llm_bpe_token_bytes(const llm_bpe *e, uint32_t id, const uint8_t **bytes)
{
  if (id < e->n_ranks && e->tok_off[id]) {
    *bytes = e->bytes + e->tok_off[id];
    return llm_bpe_tok_len(e, id);
  }
  for (size_t i = 0; i < e->n_special; i++)
    if (e->special[i].id == id) {
      *bytes = e->special[i].text;
      return e->special[i].len;
    }
  return 0;
}

void llm_bpe_ids_free(llm_bpe_ids *ids)
{
  free(ids->ids);
  ids->ids = NULL;
  ids->n = ids->cap = 0;
}

static int ids_reserve(llm_bpe_ids *ids, size_t more)
{
  return ids->cap - ids->n >= more ? 0 : llm_grow(&ids->ids, &ids->cap, ids->n + more, sizeof *ids->ids);
}

/* Where the special token at or after s[from] begins (or len), and which. */
static size_t find_special(const llm_bpe *e, const uint8_t *s, size_t from, size_t len,
                           const llm_bpe_special **which)
{
  for (size_t i = from; i < len; i++) {
    if (!e->special_first[s[i]])
      continue;
    for (size_t k = 0; k < e->n_special; k++) {
      const llm_bpe_special *sp = &e->special[k];
      if (sp->len <= len - i && memcmp(s + i, sp->text, sp->len) == 0) {
        *which = sp;
        return i;
      }
    }
  }
  *which = NULL;
  return len;
}

/* ---- the piece cache ------------------------------------------------------------ */

/* A long text repeats its words, and a piece that is not itself a token
 * costs a merge (several hash lookups per byte) each time it appears. So
 * an encode call that merges many pieces remembers them in a small
 * direct-mapped table: where the piece first appeared in the text, its
 * token count and where its ids start in the output. A hit compares the
 * bytes, so it is exact (the merge of a piece depends on its bytes alone).
 * The table is made only after CACHE_AFTER merges, sized by the text, so
 * short texts pay nothing; it belongs to one call, so threads share
 * nothing. */
#define CACHE_AFTER 16
#define CACHE_MAX_PIECE 256 /* longer pieces are rare and seldom repeat */
#define CACHE_MIN_SLOTS 256
#define CACHE_MAX_SLOTS 16384

typedef struct {
  const uint8_t *p; /* the piece's first occurrence in the text */
  size_t ids;       /* where its ids start in the output (when encoding) */
  uint32_t n;       /* its length; 0 for an empty slot */
  uint32_t count;   /* its number of tokens */
} cache_entry;

typedef struct {
  cache_entry *slot;
  size_t mask;
  size_t text_len; /* sizes the table */
  unsigned merges; /* until the table is made; then UINT_MAX if that failed */
} piece_cache;

/* The slot for a piece with hash h, or NULL while there is no table. */
static cache_entry *cache_slot(piece_cache *c, uint64_t h)
{
  if (!c->slot) {
    size_t n = CACHE_MIN_SLOTS;
    if (c->merges == UINT_MAX || ++c->merges < CACHE_AFTER)
      return NULL;
    while (n < CACHE_MAX_SLOTS && n < c->text_len / 64)
      n *= 2;
    if (!(c->slot = calloc(n, sizeof *c->slot))) {
      c->merges = UINT_MAX; /* no memory: go on without */
      return NULL;
    }
    c->mask = n - 1;
  }
  /* the rank table indexes by the low bits: use the high ones here */
  return &c->slot[(size_t)(h >> 40) & c->mask];
}

/* Encodes one piece: appends its ids to out (room reserved by the
 * caller), or only counts when out is NULL; c (may be NULL) is the call's
 * piece cache; p[0..avail) may be read (avail >= n). Returns the number of tokens, or (size_t)-1 when out of
 * memory. */
static size_t encode_piece(const llm_bpe *e, const uint8_t *p, size_t n, size_t avail,
                           llm_bpe_ids *out, piece_cache *c)
{
  uint64_t h = 0, a = 0, b = 0;
  uint32_t r = LLM_BPE_NO_RANK;
  cache_entry *ce = NULL;
  size_t k;
  /* fast paths: one byte, or a piece that is a whole token (most words) */
  if (n == 1) {
    r = e->byte_rank[p[0]];
  } else if (n <= 16) {
    if (avail >= 8)
      llm_bpe_padded_key(p, n, &a, &b);
    else
      llm_bpe_short_key(p, n, &a, &b);
    h = llm_bpe_hash_key(a, b, n);
    if (n <= e->max_len)
      r = llm_bpe_rank_key(e, p, n, a, b, h);
  } else if (n <= e->max_len || (c && n <= CACHE_MAX_PIECE)) {
    h = llm_bpe_hash(p, n);
    if (n <= e->max_len)
      r = llm_bpe_rank_key(e, p, n, 0, 0, h);
  }
  if (r != LLM_BPE_NO_RANK) {
    if (out)
      out->ids[out->n++] = r;
    return 1;
  }
  if (c && n <= CACHE_MAX_PIECE && (ce = cache_slot(c, h)) != NULL && ce->n == n &&
      memcmp(ce->p, p, n) == 0) {
    if (out) {
      memcpy(out->ids + out->n, out->ids + ce->ids, ce->count * sizeof *out->ids);
      out->n += ce->count;
    }
    return ce->count;
  }
  k = llm_bpe_merge(e, p, n, avail, out ? out->ids + out->n : NULL);
  if (k == (size_t)-1)
    return k;
  if (ce)
    *ce = (cache_entry){ p, out ? out->n : 0, (uint32_t)n, (uint32_t)k };
  if (out)
    out->n += k;
  return k;
}

/* Encodes ordinary text s[0..len) (no special-token handling); see
 * encode_piece for out, c and the result. */
static size_t encode_ordinary(const llm_bpe *e, const uint8_t *s, size_t len, llm_bpe_ids *out,
                              piece_cache *c)
{
  size_t count = 0, pos = 0;
  while (pos < len) {
    size_t end = llm_pretok_next(e->pattern, s, pos, len), k;
    if (out && out->cap - out->n < end - pos && ids_reserve(out, end - pos) != 0)
      return (size_t)-1;
    if ((k = encode_piece(e, s + pos, end - pos, len - pos, out, c)) == (size_t)-1)
      return k;
    count += k;
    pos = end;
  }
  return count;
}

/* Encodes with or without special tokens; see encode_ordinary. */
static size_t encode_text(const llm_bpe *e, const uint8_t *s, size_t len, unsigned flags,
                          llm_bpe_ids *out)
{
  piece_cache cache = { NULL, 0, len, 0 };
  size_t count = 0, pos = 0, k;
  if (!(flags & LLM_BPE_SPECIAL) || e->n_special == 0) {
    count = encode_ordinary(e, s, len, out, &cache);
    goto done;
  }
  while (pos <= len) {
    const llm_bpe_special *sp;
    size_t at = find_special(e, s, pos, len, &sp);
    if ((k = encode_ordinary(e, s + pos, at - pos, out, &cache)) == (size_t)-1) {
      count = k;
      goto done;
    }
    count += k;
    if (!sp)
      break;
    if (out) {
      if (ids_reserve(out, 1) != 0) {
        count = (size_t)-1;
        goto done;
      }
      out->ids[out->n++] = sp->id;
    }
    count++;
    pos = at + sp->len;
  }
done:
  free(cache.slot);
  return count;
}

int llm_bpe_encode(const llm_bpe *e, const void *text, size_t len, unsigned flags,
                   llm_bpe_ids *out)
{
  return encode_text(e, text, len, flags, out) == (size_t)-1 ? -1 : 0;
}

size_t llm_bpe_count(const llm_bpe *e, const void *text, size_t len, unsigned flags)
{
  return encode_text(e, text, len, flags, NULL);
}

char *llm_bpe_decode(const llm_bpe *e, const uint32_t *ids, size_t n, size_t *len,
                     char *err, size_t errlen)
{
  size_t total = 0, o = 0;
  const uint8_t *b;
  char *buf;
  for (size_t i = 0; i < n; i++) {
    size_t k = llm_bpe_token_bytes(e, ids[i], &b);
    if (k == 0) {
      snprintf(err, errlen, "invalid token id %lu for %s (at position %zu)",
               (unsigned long)ids[i], e->name, i + 1);
      return NULL;
    }
    total += k;
  }
  buf = malloc(total + 1);
  if (!buf) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  for (size_t i = 0; i < n; i++) {
    size_t k = llm_bpe_token_bytes(e, ids[i], &b);
    memcpy(buf + o, b, k);
    o += k;
  }
  buf[o] = '\0';
  *len = o;
  return buf;
}

/* ---- truncation ---------------------------------------------------------------- */

static size_t token_len(const llm_bpe *e, uint32_t id)
{
  const uint8_t *b;
  return llm_bpe_token_bytes(e, id, &b);
}

/* Byte offset where the first max_tokens tokens of the whole text end.
 * Encodes piece by piece and stops early, so a short head of a long text
 * is cheap. */
static size_t head_cut(const llm_bpe *e, const uint8_t *s, size_t len, size_t max_tokens,
                       unsigned flags)
{
  llm_bpe_ids ids = {0};
  size_t pos = 0, done = 0, cut = (size_t)-1;
  /* Pieces never span a special token, so encoding the text up to each
   * next special (or in slices of whole pieces) gives the same ids. */
  while (pos < len && done < max_tokens) {
    const llm_bpe_special *sp = NULL;
    size_t at = (flags & LLM_BPE_SPECIAL) && e->n_special ? find_special(e, s, pos, len, &sp) : len;
    size_t piece_end = pos;
    while (piece_end < at && done < max_tokens) {
      size_t end = llm_pretok_next(e->pattern, s, piece_end, at);
      ids.n = 0;
      if (ids_reserve(&ids, end - piece_end) != 0 ||
          encode_piece(e, s + piece_end, end - piece_end, at - piece_end, &ids, NULL) == (size_t)-1)
        goto done;
      for (size_t i = 0; i < ids.n && done < max_tokens; i++, done++)
        piece_end += token_len(e, ids.ids[i]);
    }
    pos = piece_end;
    if (sp && pos == at && done < max_tokens) {
      pos += sp->len;
      done++;
    }
  }
  cut = pos;
done:
  llm_bpe_ids_free(&ids);
  return cut;
}

/* Byte offset where the last max_tokens tokens of the whole text begin. */
static size_t tail_cut(const llm_bpe *e, const uint8_t *s, size_t len, size_t max_tokens,
                       unsigned flags)
{
  llm_bpe_ids ids = {0};
  size_t start = len;
  if (encode_text(e, s, len, flags, &ids) == (size_t)-1) {
    llm_bpe_ids_free(&ids);
    return (size_t)-1;
  }
  for (size_t i = ids.n; i > 0 && ids.n - i < max_tokens; i--)
    start -= token_len(e, ids.ids[i - 1]);
  llm_bpe_ids_free(&ids);
  return start;
}

/* If s[at] continues a valid UTF-8 sequence that starts before it, the
 * start of that sequence; else at. Tokens may split a character, a cut
 * for people should not. */
static size_t char_start(const uint8_t *s, size_t len, size_t at)
{
  for (size_t back = 1; back <= 3 && back <= at; back++) {
    uint8_t b = s[at - back];
    size_t need;
    if ((b & 0xC0) == 0x80)
      continue;
    need = b >= 0xF0 && b <= 0xF4 ? 4 : b >= 0xE0 ? 3 : b >= 0xC2 && b <= 0xDF ? 2 : 1;
    if (need > back && at - back + need <= len) {
      for (size_t i = 1; i < need; i++)
        if ((s[at - back + i] & 0xC0) != 0x80)
          return at;
      return at - back;
    }
    return at;
  }
  return at;
}

size_t llm_bpe_head_bytes(const llm_bpe *e, const void *text, size_t len, size_t max_tokens,
                          unsigned flags)
{
  const uint8_t *s = text;
  size_t budget = max_tokens, step = 1;
  /* A head re-encoded alone can, rarely, take more tokens than it did
   * inside the whole text; shrink until it fits (0 tokens always does). */
  for (;;) {
    size_t cut = head_cut(e, s, len, budget, flags), n;
    if (cut == (size_t)-1)
      return cut;
    if (cut < len)
      cut = char_start(s, len, cut);
    n = encode_text(e, s, cut, flags, NULL);
    if (n == (size_t)-1)
      return n;
    if (n <= max_tokens || budget == 0)
      return n <= max_tokens ? cut : 0;
    budget = budget > step ? budget - step : 0;
    step *= 2;
  }
}

size_t llm_bpe_tail_bytes(const llm_bpe *e, const void *text, size_t len, size_t max_tokens,
                          unsigned flags)
{
  const uint8_t *s = text;
  size_t budget = max_tokens, step = 1;
  for (;;) {
    size_t start = tail_cut(e, s, len, budget, flags), n;
    if (start == (size_t)-1)
      return start;
    /* inside a character: drop its first bytes rather than take more */
    if (start > 0 && start < len && char_start(s, len, start) != start)
      while (start < len && (s[start] & 0xC0) == 0x80)
        start++;
    n = encode_text(e, s + start, len - start, flags, NULL);
    if (n == (size_t)-1)
      return n;
    if (n <= max_tokens || budget == 0)
      return n <= max_tokens ? len - start : 0;
    budget = budget > step ? budget - step : 0;
    step *= 2;
  }
}
