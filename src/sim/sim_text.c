/* Plausible English for the simulator's free-text answers: sentences from
 * a dozen templates filled with common words (all of them single tokens in
 * cl100k_base and o200k_base, so the token approximation is close), with
 * words from the prompt mixed in so different prompts read differently.
 * The text means nothing; it only has to look and count like prose. */
#include "sim_internal.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define COUNT(a) (sizeof(a) / sizeof *(a))

static const char *const nouns[] = {
  "system", "model", "team", "workflow", "result", "design", "request", "user",
  "answer", "budget", "plan", "report", "record", "change", "test", "cost",
  "value", "question", "method", "goal", "step", "project", "service", "client",
  "rule", "task", "tool", "source", "detail", "option", "problem", "feature",
  "update", "limit", "signal", "pattern", "technique", "estimate", "review", "choice",
  "message", "document", "response", "setting", "version", "number", "market", "product",
  "office", "schedule", "context", "outline", "decision", "factor", "outcome", "risk",
  "benefit", "example", "section", "standard", "network", "server", "account", "partner",
};

static const char *const adjectives[] = {
  "simple", "clear", "useful", "small", "large", "careful", "recent", "final",
  "main", "common", "specific", "general", "important", "different", "similar", "direct",
  "practical", "basic", "complete", "strong", "stable", "reliable", "better", "typical",
  "current", "local", "overall", "early", "short", "long", "quick", "real",
  "new", "key", "extra", "minor", "major", "open", "shared", "single",
};

/* Base forms; the third-person form adds "s" (all chosen so that works). */
static const char *const verbs[] = {
  "improve", "reduce", "support", "keep", "help", "build", "require", "provide",
  "include", "allow", "create", "handle", "change", "follow", "measure", "outline",
  "describe", "show", "make", "take", "give", "use", "need", "find",
  "check", "track", "cover", "shape", "guide", "limit", "protect", "balance",
  "combine", "compare", "connect", "deliver", "extend", "test", "review", "record",
  "report", "plan", "manage", "share", "store", "update", "prepare", "select",
};

static const char *const adverbs[] = {
  "quickly", "often", "usually", "carefully", "clearly", "rarely", "easily", "always",
  "simply", "mostly", "directly", "gradually", "generally", "really", "also", "still",
};

static const char *const preps[] = {
  "for", "with", "in", "on", "across", "through", "under", "within",
  "during", "after", "before", "around", "without", "about", "from", "into",
};

static const char *const modals[] = {
  "can", "should", "will", "may", "must", "might", "could", "would",
};

static const char *const openers[] = {
  "However,", "In practice,", "For example,", "As a result,", "In most cases,",
  "At the same time,", "Over time,", "In short,", "Meanwhile,", "First,",
  "Finally,", "On the other hand,", "In general,", "Even so,", "Here,",
};

static const char *const quantifiers[] = {
  "many", "most", "some", "several", "few", "all", "both", "other",
};

static const char *const determiners[] = {
  "the", "the", "the", "a", "this", "each", "every", "our", "your", "one",
};

/* Templates: D determiner, A adjective, N noun, P plural noun, V verb,
 * S verb+s, R adverb, X preposition, M modal, C sentence opener,
 * Q quantifier, K topic word from the prompt (or a noun). */
static const char *const templates[] = {
  "D A N S D N X D A N.",
  "C D N M V D A N.",
  "Q A P M R V D N X D N.",
  "It is A to V D N X D A N.",
  "D N S R, and D N S D N.",
  "When D N S D N, D N M V D A N.",
  "This is why D A N M R V D N.",
  "K is a A N that S D N X D N.",
  "D N of K M V D A N.",
  "C Q P V D K X D A N.",
  "D A K M V Q P, but D N S R.",
  "To V D N, V D A N first.",
};

static const char *const stopwords[] = {
  "about", "after", "again", "answer", "because", "before", "being", "below",
  "could", "does", "doing", "during", "every", "first", "from", "have", "having",
  "here", "into", "just", "more", "most", "other", "over", "please", "same",
  "should", "some", "such", "than", "that", "their", "them", "then", "there",
  "these", "they", "this", "those", "through", "under", "until", "very", "what",
  "when", "where", "which", "while", "with", "would", "your", "question",
  "context", "following", "given", "using", "based", "write", "tell", "explain",
};

/* Words from the prompt that free text mixes in: up to 16 distinct ASCII
 * words of 5..14 letters that are not stop words, from the first 64 KiB. */
typedef struct {
  char w[16][16];
  int n;
} topics;

static void find_topics(topics *tp, const char *t, size_t n)
{
  tp->n = 0;
  if (!t)
    return;
  if (n > 65536)
    n = 65536;
  size_t i = 0;
  while (i < n && tp->n < 16) {
    while (i < n && !((t[i] | 0x20) >= 'a' && (t[i] | 0x20) <= 'z'))
      i++;
    size_t j = i;
    while (j < n && (t[j] | 0x20) >= 'a' && (t[j] | 0x20) <= 'z')
      j++;
    size_t len = j - i;
    int bounded = (j >= n || (unsigned char)t[j] < 0x80) && (i == 0 || (unsigned char)t[i - 1] < 0x80);
    if (len >= 5 && len <= 14 && bounded) {
      char word[16];
      for (size_t k = 0; k < len; k++)
        word[k] = (char)(t[i + k] | 0x20);
      word[len] = '\0';
      int skip = 0;
      for (size_t k = 0; k < COUNT(stopwords) && !skip; k++)
        skip = strcmp(word, stopwords[k]) == 0;
      for (int k = 0; k < tp->n && !skip; k++)
        skip = strcasecmp(word, tp->w[k]) == 0;
      /* Kept as first written, so names stay capitalised. */
      if (!skip) {
        memcpy(tp->w[tp->n], t + i, len);
        tp->w[tp->n++][len] = '\0';
      }
    }
    i = j;
  }
}

static const char *pick(sim_rng *rng, const char *const *list, size_t n)
{
  return list[sim_rng_below(rng, (uint32_t)n)];
}

static int starts_with_vowel(const char *w)
{
  return w[0] == 'a' || w[0] == 'e' || w[0] == 'i' || w[0] == 'o' || w[0] == 'u';
}

/* The word for one template slot, into buf. */
static const char *slot(sim_rng *rng, char c, const topics *tp, char *buf, size_t cap)
{
  switch (c) {
  case 'D': return pick(rng, determiners, COUNT(determiners));
  case 'A': return pick(rng, adjectives, COUNT(adjectives));
  case 'N': return pick(rng, nouns, COUNT(nouns));
  case 'P': snprintf(buf, cap, "%ss", pick(rng, nouns, COUNT(nouns))); return buf;
  case 'V': return pick(rng, verbs, COUNT(verbs));
  case 'S': snprintf(buf, cap, "%ss", pick(rng, verbs, COUNT(verbs))); return buf;
  case 'R': return pick(rng, adverbs, COUNT(adverbs));
  case 'X': return pick(rng, preps, COUNT(preps));
  case 'M': return pick(rng, modals, COUNT(modals));
  case 'C': return pick(rng, openers, COUNT(openers));
  case 'Q': return pick(rng, quantifiers, COUNT(quantifiers));
  case 'K':
    if (tp->n > 0 && sim_rng_unit(rng) < 0.7) {
      snprintf(buf, cap, "%s", tp->w[sim_rng_below(rng, (uint32_t)tp->n)]);
      return buf;
    }
    return pick(rng, nouns, COUNT(nouns));
  default: return NULL;
  }
}

/* Appends one sentence, words separated by single spaces, no leading
 * space. Template words that are one capital letter are slots; others are
 * literal; a trailing '.' or ',' is kept. */
static void sentence(llm_buf *out, sim_rng *rng, const topics *tp)
{
  const char *p = pick(rng, templates, COUNT(templates));
  char prev[32] = "";
  int first = 1;
  while (*p) {
    while (*p == ' ')
      p++;
    size_t k = 0;
    while (p[k] && p[k] != ' ')
      k++;
    if (k == 0)
      break;
    size_t wlen = k;
    char punct = 0;
    if (p[wlen - 1] == '.' || p[wlen - 1] == ',')
      punct = p[--wlen];
    char buf[32], lit[32];
    const char *w = NULL;
    if (wlen == 1)
      w = slot(rng, p[0], tp, buf, sizeof buf);
    if (!w) {
      if (wlen >= sizeof lit)
        wlen = sizeof lit - 1;
      memcpy(lit, p, wlen);
      lit[wlen] = '\0';
      w = lit;
    }
    /* "a" before a vowel is "an" (close enough for this word list). */
    if (strcmp(prev, "a") == 0 && starts_with_vowel(w) && out->len >= 2) {
      out->len -= 1;                 /* drop the space; keep "a" or "A" */
      llm_buf_puts(out, "n ");
    }
    if (first && w[0] >= 'a' && w[0] <= 'z') {
      llm_buf_putc(out, (char)(w[0] - 'a' + 'A'));
      llm_buf_puts(out, w + 1);
    } else {
      llm_buf_puts(out, w);
    }
    if (punct)
      llm_buf_putc(out, punct);
    snprintf(prev, sizeof prev, "%s", punct ? "" : w);
    first = 0;
    p += k;
    if (*p)
      llm_buf_putc(out, ' ');
  }
}

void sim_text_generate(llm_buf *out, sim_rng *rng, int tokens, const char *topic,
                       size_t topic_len)
{
  topics tp;
  find_topics(&tp, topic, topic_len);
  int have = 0, in_paragraph = 0;
  int paragraph_len = 3 + (int)sim_rng_below(rng, 3);
  /* At least one sentence; paragraphs of 3-5 sentences. */
  do {
    if (in_paragraph == paragraph_len) {
      llm_buf_puts(out, "\n\n");
      have += 1;
      in_paragraph = 0;
      paragraph_len = 3 + (int)sim_rng_below(rng, 3);
    } else if (out->len > 0) {
      llm_buf_putc(out, ' ');
    }
    size_t before = out->len;
    sentence(out, rng, &tp);
    /* Counted with its leading space, as it will be in the text. */
    size_t from = before > 0 && out->data[before - 1] == ' ' ? before - 1 : before;
    if (!out->failed)
      have += (int)sim_token_ends(out->data + from, out->len - from, NULL, 0);
    in_paragraph++;
  } while (have < tokens && !out->failed);
}
