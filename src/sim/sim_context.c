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
  return ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || (c >= '0' && c <= '9') || c >= 0x80;
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
    for (size_t q = 0; len <= 5 && q < sizeof key_stopwords / sizeof *key_stopwords && !stop; q++)
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
    if (s[i - 1] != ' ' || (lower((unsigned char)s[i]) != 'i' && lower((unsigned char)s[i]) != 'w'))
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
    int c = lower((unsigned char)s[i]);
    if ((c != 'w' && c != 't' && c != 'g') || (i > 0 && is_word_char((unsigned char)s[i - 1])))
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

/* Distractor candidates kept while scanning: the best few by overlap, so
 * one whose value differs from the answer survives to the end. */
#define CANDIDATES 8

typedef struct {
  phrase_key qkey;
  const char *subject;     /* the question's subject as written */
  size_t subject_len;
  const fact *match;       /* last present-tense fact with the same subject */
  fact match_store;
  fact cand[CANDIDATES];   /* most similar other facts, best first */
  int cand_overlap[CANDIDATES];
  uint64_t cand_rank[CANDIDATES];
  int ncand;
  fact distractor;         /* the chosen one */
  int distractor_overlap;  /* 0: none */
} lookup;

static int same_value(const fact *a, const char *v, size_t n)
{
  return a->value_len == n && memcmp(a->value, v, n) == 0;
}

static int better(int overlap, uint64_t rank, int o2, uint64_t r2)
{
  return overlap > o2 || (overlap == o2 && rank < r2);
}

static void add_candidate(lookup *lk, const fact *f, int overlap, uint64_t rank)
{
  int pos = lk->ncand;
  while (pos > 0 && better(overlap, rank, lk->cand_overlap[pos - 1], lk->cand_rank[pos - 1]))
    pos--;
  if (pos >= CANDIDATES)
    return;
  int last = lk->ncand < CANDIDATES ? lk->ncand : CANDIDATES - 1;
  for (int i = last; i > pos; i--) {
    lk->cand[i] = lk->cand[i - 1];
    lk->cand_overlap[i] = lk->cand_overlap[i - 1];
    lk->cand_rank[i] = lk->cand_rank[i - 1];
  }
  lk->cand[pos] = *f;
  lk->cand_overlap[pos] = overlap;
  lk->cand_rank[pos] = rank;
  if (lk->ncand < CANDIDATES)
    lk->ncand++;
}

/* One pass over every sentence of every message: the matching fact, and
 * the candidates for the most similar distractor (at least one shared
 * subject word; ties broken by a hash of the value and the request key). */
static void scan(const sim_prompt *p, lookup *lk, uint64_t key)
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
      if (key_equal(&f.key, &lk->qkey) && !f.outdated) {
        lk->match_store = f;
        lk->match = &lk->match_store;
        continue;
      }
      int overlap = key_overlap(&f.key, &lk->qkey);
      if (overlap > 0)
        add_candidate(lk, &f, overlap, sim_mix64(sim_hash_bytes(key, f.value, f.value_len)));
    }
  }
  /* The best candidate whose value is not the answer itself. */
  for (int i = 0; i < lk->ncand; i++) {
    if (lk->match && same_value(lk->match, lk->cand[i].value, lk->cand[i].value_len))
      continue;
    lk->distractor = lk->cand[i];
    lk->distractor_overlap = lk->cand_overlap[i];
    break;
  }
}

static int run_lookup(const sim_prompt *p, lookup *lk, uint64_t key)
{
  size_t qa, qb;
  memset(lk, 0, sizeof *lk);
  if (!p->last_user || !question_subject(p->last_user, p->last_user_len, &qa, &qb))
    return -1;
  make_key(p->last_user + qa, qb - qa, &lk->qkey);
  lk->subject = p->last_user + qa;
  lk->subject_len = qb - qa;
  scan(p, lk, key);
  return lk->match != NULL;
}

int sim_context_lookup(const sim_prompt *p, const char **val, size_t *vlen)
{
  lookup lk;
  int r = run_lookup(p, &lk, 0);
  if (r == 1) {
    *val = lk.match->value;
    *vlen = lk.match->value_len;
  }
  return r;
}

static int has_digit(const char *v, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (v[i] >= '0' && v[i] <= '9')
      return 1;
  return 0;
}

enum { SAY_VALUE, SAY_DISTRACTOR, SAY_GARBLED, SAY_DONT_KNOW };

int sim_skill_context(const sim_prompt *p, const char *model, uint64_t key, double temperature,
                      sim_skill_out *out)
{
  lookup lk;
  int present = run_lookup(p, &lk, key);
  if (present < 0 || (!present && p->prompt_tokens < MIN_CONTEXT_TOKENS))
    return 0;
  const sim_tier *tier = sim_tier_of(model, NULL);
  /* the temperature and, for reasoning models, the effort */
  double tf = sim_temperature_factor(temperature) * (p->err_scale > 0 ? p->err_scale : 1.0);
  /* The luck of this question for this model and seed. */
  uint64_t qkey = sim_hash_str(key, "context");
  for (int i = 0; i < lk.qkey.n; i++)
    qkey = sim_hash_u64(qkey, lk.qkey.w[i]);
  double u = sim_unit_of(qkey);
  int have_distractor = lk.distractor_overlap > 0;

  int say;
  if (present) {
    double p_err = tier->ctx_err * (1.0 + p->prompt_tokens / 8000.0) * tf;
    say = u >= p_err ? SAY_VALUE
        : have_distractor ? SAY_DISTRACTOR
        : has_digit(lk.match->value, lk.match->value_len) ? SAY_GARBLED
        : SAY_DONT_KNOW;
  } else {
    say = u < tier->ctx_halluc * tf && have_distractor ? SAY_DISTRACTOR : SAY_DONT_KNOW;
  }

  memset(out, 0, sizeof *out);
  out->kind = SIM_SKILL_CONTEXT;
  out->difficulty = 0.75 + p->prompt_tokens / 16000.0; /* for reasoning models */
  llm_buf *t = &out->text;
  if (say == SAY_DONT_KNOW) {
    if (p->verbose)
      llm_buf_puts(t, "I could not find that in the context. ");
    out->answer_at = t->len;
    llm_buf_puts(t, dont_know);
  } else {
    if (p->verbose) {
      llm_buf_puts(t, "Based on the context, ");
      sim_put_utf8(t, lk.subject, lk.subject_len);
      llm_buf_puts(t, " is ");
    }
    out->answer_at = t->len;
    if (say == SAY_VALUE) {
      sim_put_utf8(t, lk.match->value, lk.match->value_len);
    } else if (say == SAY_DISTRACTOR) {
      sim_put_utf8(t, lk.distractor.value, lk.distractor.value_len);
    } else {
      sim_rng rng;
      sim_rng_init(&rng, sim_hash_str(qkey, "garble"));
      sim_perturb_digit(t, lk.match->value, lk.match->value_len, &rng);
    }
    if (p->verbose)
      llm_buf_putc(t, '.');
  }
  /* Right only with the value; "I don't know" is honest when the fact is
   * absent and carries that confidence either way. */
  out->outcome = say == SAY_VALUE ? SIM_RIGHT : SIM_WRONG;
  out->conf_z = sim_confidence_z(qkey, say == SAY_VALUE ? SIM_RIGHT
                                       : say == SAY_DONT_KNOW ? SIM_UNSURE : SIM_WRONG);
  return 1;
}
