/* The answer-from-context skill: a question about a fact is answered
 * right only when the fact is in the prompt, so prompt compression that
 * drops the fact measurably costs accuracy.
 *
 * Rules (README "The simulator's model"):
 * - Question: the last user message asks "What is the S?", "What's the
 *   S?", "Who/Which/Where/When is the S?", "... what the S is?",
 *   "Tell me the S." or "Give me the S." (any case). S runs to the next
 *   '?', '.', '!' or newline. The last question in the message counts.
 * - Fact: a sentence of any message, not ending in '?', of the form
 *   "... the S is V." The subject starts at the first "the" after the
 *   last ',', ';', ':', '(' or '"' before " is "; V runs to the end of the
 *   sentence or to ", ", "; ", " (" or " - ". V is at most 80 bytes and 10
 *   words. "... the S was V." is an outdated fact: never the answer, but
 *   a distractor.
 * - Subjects match when their content words are the same multiset:
 *   lower case, without a/an/the/of/for/in/at/on/to/by/from/with/'s and
 *   the possessives our/your/their/its/my, a plural 's' dropped. So
 *   "the access code for the Lisbon office", "the Lisbon office's access
 *   code" and "the access code of the lisbon office" are one subject;
 *   "the backup access code for the Lisbon office" is another. When
 *   several facts match, the last one counts (updates win).
 * - The skill engages when a question is found and either a matching
 *   fact is present or the prompt has at least 60 tokens (a context to
 *   answer from); otherwise the prompt gets free text.
 * - Fact present: the answer is V, wrong with probability
 *   ctx_err * (1 + prompt_tokens / 8000) * temperature factor; a wrong
 *   answer is the most similar distractor's value (most shared subject
 *   words), or V with one digit changed, or "I don't know.".
 * - Fact absent: "I don't know.", except with probability ctx_halluc *
 *   temperature factor the most similar distractor's value (if one shares
 *   a subject word).
 * - Answers are the bare value; when the prompt asks to explain or to go
 *   step by step, a sentence: "Based on the context, the S is V." */
#include "sim_internal.h"

#include <string.h>

#define MAX_WORDS 16
#define MAX_VALUE 80
#define MAX_SUBJECT 200
#define MIN_CONTEXT_TOKENS 60
static const char dont_know[] = "I don't know.";

typedef struct {
  uint64_t w[MAX_WORDS];   /* sorted hashes of the content words */
  int n;
} phrase_key;

static int lower(int c)
{
  return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static int is_word_char(unsigned char c)
{
  return (c | 0x20) >= 'a' && (c | 0x20) <= 'z' ? 1 : (c >= '0' && c <= '9') || c >= 0x80;
}

static int word_eq(const char *s, size_t n, const char *w)
{
  size_t k = strlen(w);
  if (n != k)
    return 0;
  for (size_t i = 0; i < k; i++)
    if (lower((unsigned char)s[i]) != w[i])
      return 0;
  return 1;
}

/* Case-insensitive match of w at s[i], n bytes in s. */
static int at(const char *s, size_t n, size_t i, const char *w)
{
  size_t k = strlen(w);
  return i + k <= n && word_eq(s + i, k, w);
}

static const char *const key_stopwords[] = {
  "a", "an", "the", "of", "for", "in", "at", "on", "to", "by", "from", "with",
  "s", "our", "your", "their", "its", "my",
};

/* Builds the key of phrase s[0..n). 0 if it has no content word or more
 * than MAX_WORDS. */
static int make_key(const char *s, size_t n, phrase_key *k)
{
  k->n = 0;
  size_t i = 0;
  while (i < n) {
    while (i < n && !is_word_char((unsigned char)s[i]))
      i++;
    size_t j = i;
    while (j < n && is_word_char((unsigned char)s[j]))
      j++;
    if (j == i)
      break;
    size_t len = j - i;
    int stop = 0;
    for (size_t q = 0; q < sizeof key_stopwords / sizeof *key_stopwords && !stop; q++)
      stop = word_eq(s + i, len, key_stopwords[q]);
    if (!stop) {
      /* A plural 's' goes ("offices" = "office"), but not in "access". */
      if (len > 3 && lower((unsigned char)s[j - 1]) == 's' && lower((unsigned char)s[j - 2]) != 's')
        len--;
      uint64_t h = SIM_HASH_INIT;
      for (size_t q = 0; q < len; q++) {
        unsigned char c = (unsigned char)lower((unsigned char)s[i + q]);
        h = sim_hash_bytes(h, &c, 1);
      }
      if (k->n == MAX_WORDS)
        return 0;
      int pos = k->n++;
      while (pos > 0 && k->w[pos - 1] > h) {
        k->w[pos] = k->w[pos - 1];
        pos--;
      }
      k->w[pos] = h;
    }
    i = j;
  }
  return k->n > 0;
}

static int key_equal(const phrase_key *a, const phrase_key *b)
{
  return a->n == b->n && memcmp(a->w, b->w, (size_t)a->n * sizeof a->w[0]) == 0;
}

static int key_overlap(const phrase_key *a, const phrase_key *b)
{
  int i = 0, j = 0, common = 0;
  while (i < a->n && j < b->n) {
    if (a->w[i] == b->w[j]) {
      common++;
      i++;
      j++;
    } else if (a->w[i] < b->w[j]) {
      i++;
    } else {
      j++;
    }
  }
  return common;
}

/* ---- sentences and facts ------------------------------------------------ */

/* Next sentence of s[0..n) from *pos: its span [*a, *b), terminator
 * included. A sentence ends at a newline, or at '.', '!' or '?' followed by
 * a space, a quote, a bracket or the end. */
static int next_sentence(const char *s, size_t n, size_t *pos, size_t *a, size_t *b)
{
  size_t i = *pos;
  while (i < n && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t'))
    i++;
  if (i >= n)
    return 0;
  *a = i;
  for (; i < n; i++) {
    char c = s[i];
    if (c == '\n' || c == '\r')
      break;
    if ((c == '.' || c == '!' || c == '?') &&
        (i + 1 == n || s[i + 1] == ' ' || s[i + 1] == '\n' || s[i + 1] == '\r' ||
         s[i + 1] == '\t' || s[i + 1] == '"' || s[i + 1] == ')')) {
      i++;
      break;
    }
  }
  *b = i;
  *pos = i;
  return 1;
}

typedef struct {
  phrase_key key;
  const char *value;
  size_t value_len;
  int outdated;            /* "was" rather than "is" */
} fact;

/* Position of the first word "the" in s[a..b), or a. */
static size_t first_the(const char *s, size_t a, size_t b)
{
  for (size_t i = a; i + 3 <= b; i++) {
    if ((i == a || !is_word_char((unsigned char)s[i - 1])) && at(s, b, i, "the") &&
        (i + 3 == b || !is_word_char((unsigned char)s[i + 3])))
      return i;
  }
  return a;
}

/* Parses the sentence s[a..b) as a fact. */
static int parse_fact(const char *s, size_t a, size_t b, fact *f)
{
  size_t end = b;
  while (end > a && (s[end - 1] == ' ' || s[end - 1] == '\t'))
    end--;
  if (end == a || s[end - 1] == '?')
    return 0;
  /* The first " is " or " was ". */
  size_t cop = 0, after = 0;
  for (size_t i = a + 1; i + 4 <= end; i++) {
    if (s[i - 1] != ' ')
      continue;
    if (at(s, end, i, "is ")) {
      cop = i;
      after = i + 3;
      f->outdated = 0;
      break;
    }
    if (at(s, end, i, "was ")) {
      cop = i;
      after = i + 4;
      f->outdated = 1;
      break;
    }
  }
  if (!cop)
    return 0;
  size_t clause = a;
  for (size_t i = a; i < cop; i++)
    if (strchr(",;:(\"", s[i]))
      clause = i + 1;
  size_t subj = first_the(s, clause, cop);
  if (!make_key(s + subj, cop - 1 - subj, &f->key))
    return 0;
  /* The value, up to the end of the sentence or of its clause. */
  size_t v = after, ve = end;
  for (size_t i = v; i + 1 < end; i++) {
    if ((s[i] == ',' || s[i] == ';') && s[i + 1] == ' ') { ve = i; break; }
    if (s[i] == ' ' && (s[i + 1] == '(' || (s[i + 1] == '-' && i + 2 < end && s[i + 2] == ' '))) { ve = i; break; }
  }
  while (ve > v && strchr(" \t.!\"", s[ve - 1]))
    ve--;
  while (v < ve && strchr(" \t\"", s[v]))
    v++;
  if (ve <= v || ve - v > MAX_VALUE)
    return 0;
  int words = 1;
  for (size_t i = v; i < ve; i++)
    words += s[i] == ' ';
  if (words > 10)
    return 0;
  f->value = s + v;
  f->value_len = ve - v;
  return 1;
}

/* ---- the question -------------------------------------------------------- */

static const char *const wh_words[] = {"what", "who", "which", "where", "when"};

/* Finds the last context question in s[0..n): its subject span [*a, *b)
 * (from "the", without the trailing " is"). */
static int question_subject(const char *s, size_t n, size_t *qa, size_t *qb)
{
  int found = 0;
  for (size_t i = 0; i < n; i++) {
    if (i > 0 && is_word_char((unsigned char)s[i - 1]))
      continue;
    size_t subj = 0;
    int need_is = 0;
    for (size_t w = 0; w < sizeof wh_words / sizeof *wh_words && !subj; w++) {
      size_t k = strlen(wh_words[w]);
      if (!at(s, n, i, wh_words[w]))
        continue;
      size_t j = i + k;
      if (at(s, n, j, " is the "))
        subj = j + 4;
      else if (at(s, n, j, "'s the "))
        subj = j + 3;
      else if (at(s, n, j, "\xe2\x80\x99s the "))
        subj = j + 5;
      else if (at(s, n, j, " the ")) {
        subj = j + 1;
        need_is = 1;
      }
    }
    if (!subj && (at(s, n, i, "tell me the ") || at(s, n, i, "give me the ")))
      subj = i + 8;
    if (!subj)
      continue;
    /* Subjects are short; bounding the scan keeps a pathological message
     * ("what the what the ...") linear. */
    size_t e = subj, lim = n - subj > MAX_SUBJECT ? subj + MAX_SUBJECT : n;
    while (e < lim && s[e] != '?' && s[e] != '.' && s[e] != '!' && s[e] != '\n' && s[e] != '\r')
      e++;
    if (e == lim && lim < n)
      continue;
    while (e > subj && (s[e - 1] == ' ' || s[e - 1] == '\t'))
      e--;
    if (need_is) {
      if (e < subj + 3 || !at(s, e, e - 3, " is"))
        continue;
      e -= 3;
    }
    phrase_key k;
    if (e > subj && make_key(s + subj, e - subj, &k)) {
      *qa = subj;
      *qb = e;
      found = 1;
    }
  }
  return found;
}

/* ---- lookup -------------------------------------------------------------- */

typedef struct {
  phrase_key qkey;
  const char *subject;     /* the question's subject as written */
  size_t subject_len;
  const fact *match;       /* last present-tense fact with the same subject */
  fact match_store;
  fact distractor;         /* most similar other fact */
  int distractor_overlap;
  uint64_t distractor_rank;
} lookup;

static int same_value(const fact *a, const char *v, size_t n)
{
  return a->value_len == n && memcmp(a->value, v, n) == 0;
}

/* Pass 1 finds the matching fact; pass 2 the most similar distractor whose
 * value differs from the answer. */
static void scan(const sim_prompt *p, lookup *lk, uint64_t key, int pass)
{
  for (size_t t = 0; t < p->ntexts; t++) {
    const char *s = p->texts[t];
    size_t n = p->lens[t], pos = 0, a, b;
    if (!s)
      continue;
    while (next_sentence(s, n, &pos, &a, &b)) {
      fact f;
      if (!parse_fact(s, a, b, &f))
        continue;
      int equal = key_equal(&f.key, &lk->qkey);
      if (pass == 1) {
        if (equal && !f.outdated) {
          lk->match_store = f;
          lk->match = &lk->match_store;
        }
        continue;
      }
      if (equal && !f.outdated)
        continue;
      if (lk->match && same_value(lk->match, f.value, f.value_len))
        continue;
      int overlap = key_overlap(&f.key, &lk->qkey);
      uint64_t rank = sim_mix64(sim_hash_bytes(key, f.value, f.value_len));
      if (overlap > lk->distractor_overlap ||
          (overlap == lk->distractor_overlap && overlap > 0 && rank < lk->distractor_rank)) {
        lk->distractor = f;
        lk->distractor_overlap = overlap;
        lk->distractor_rank = rank;
      }
    }
  }
}

static int run_lookup(const sim_prompt *p, lookup *lk, uint64_t key, int want_distractor)
{
  size_t qa, qb;
  memset(lk, 0, sizeof *lk);
  if (!p->last_user || !question_subject(p->last_user, p->last_user_len, &qa, &qb))
    return -1;
  make_key(p->last_user + qa, qb - qa, &lk->qkey);
  lk->subject = p->last_user + qa;
  lk->subject_len = qb - qa;
  scan(p, lk, key, 1);
  if (want_distractor)
    scan(p, lk, key, 2);
  return lk->match != NULL;
}

int sim_context_lookup(const sim_prompt *p, const char **val, size_t *vlen)
{
  lookup lk;
  int r = run_lookup(p, &lk, 0, 0);
  if (r == 1) {
    *val = lk.match->value;
    *vlen = lk.match->value_len;
  }
  return r;
}

/* Appends v with one digit changed, or returns 0 if v has no digit. */
static int perturb_digit(sim_buf *out, const char *v, size_t n, sim_rng *rng)
{
  size_t digits = 0;
  for (size_t i = 0; i < n; i++)
    digits += v[i] >= '0' && v[i] <= '9';
  if (!digits)
    return 0;
  size_t pick = sim_rng_below(rng, (uint32_t)digits), seen = 0;
  size_t start = out->len;
  sim_buf_put_utf8(out, v, n);
  for (size_t i = start; i < out->len; i++) {
    char c = out->p[i];
    if (c >= '0' && c <= '9' && seen++ == pick) {
      out->p[i] = (char)('0' + (c - '0' + 1 + (int)sim_rng_below(rng, 9)) % 10);
      break;
    }
  }
  return 1;
}

int sim_skill_context(const sim_prompt *p, const char *model, uint64_t key, double temperature,
                      sim_skill_out *out)
{
  lookup lk;
  int present = run_lookup(p, &lk, key, 1);
  if (present < 0 || (!present && p->prompt_tokens < MIN_CONTEXT_TOKENS))
    return 0;
  const sim_tier *tier = sim_tier_of(model, NULL);
  double tf = sim_temperature_factor(temperature);
  uint64_t qkey = sim_hash_str(key, "context");
  for (int i = 0; i < lk.qkey.n; i++)
    qkey = sim_hash_u64(qkey, lk.qkey.w[i]);
  double u = sim_unit_of(qkey);
  sim_rng rng;
  sim_rng_init(&rng, sim_hash_str(qkey, "choice"));

  /* Decide what to say: the value, a distractor, a changed value, or
   * "I don't know." */
  const char *say = NULL;
  size_t say_len = 0;
  int perturb = 0;
  if (present) {
    double p_err = tier->ctx_err * (1.0 + p->prompt_tokens / 8000.0) * tf;
    if (u >= p_err) {
      say = lk.match->value;
      say_len = lk.match->value_len;
      out->outcome = SIM_RIGHT;
    } else if (lk.distractor_overlap > 0) {
      say = lk.distractor.value;
      say_len = lk.distractor.value_len;
      out->outcome = SIM_WRONG;
    } else {
      perturb = 1;
      out->outcome = SIM_WRONG;
    }
  } else if (u < tier->ctx_halluc * tf && lk.distractor_overlap > 0) {
    say = lk.distractor.value;
    say_len = lk.distractor.value_len;
    out->outcome = SIM_WRONG;
  } else {
    out->outcome = SIM_UNSURE;
  }

  memset(&out->text, 0, sizeof out->text);
  out->kind = SIM_SKILL_CONTEXT;
  out->answer_at = 0;
  if (p->verbose) {
    sim_buf_puts(&out->text, "Based on the context, ");
    sim_buf_put_utf8(&out->text, lk.subject, lk.subject_len);
    sim_buf_puts(&out->text, " is ");
    out->answer_at = out->text.len;
  }
  size_t before = out->text.len;
  if (perturb && !perturb_digit(&out->text, lk.match->value, lk.match->value_len, &rng))
    out->outcome = SIM_UNSURE; /* nothing to garble: it misses the fact */
  if (say)
    sim_buf_put_utf8(&out->text, say, say_len);
  if (out->outcome == SIM_UNSURE) {
    out->text.len = 0;
    out->answer_at = 0;
    if (p->verbose)
      sim_buf_puts(&out->text, "I could not find that in the context. ");
    out->answer_at = out->text.len;
    sim_buf_puts(&out->text, dont_know);
  } else if (p->verbose && out->text.len > before) {
    sim_buf_putc(&out->text, '.');
  }
  if (out->outcome == SIM_UNSURE && present)
    out->outcome = SIM_WRONG; /* missing a present fact is an error... */
  /* ...but its confidence is that of an honest "I don't know". */
  int conf_kind = out->text.len >= sizeof dont_know - 1 &&
                  memcmp(out->text.p + out->text.len - (sizeof dont_know - 1), dont_know,
                         sizeof dont_know - 1) == 0 ? SIM_UNSURE : out->outcome;
  out->conf_z = sim_confidence_z(qkey, conf_kind);
  return 1;
}
