/* The arithmetic skill: integer questions with +, - and * (and
 * parentheses) are answered with the number, right with a probability that
 * falls with the question's difficulty and rises with the model's tier.
 *
 * Rules (README "The simulator's model"):
 * - The question is in the last user message: after "what is", "what's",
 *   "compute", "calculate", "evaluate", "how much is" or "solve"
 *   (any case, optional ':'), or the whole message is an expression
 *   ("17 + 25 =", "(3+4)*5?"). The last such expression wins.
 * - Operators: + - * x × plus minus times "multiplied by"; integers up to
 *   12 digits; a leading '-' makes a number negative. No division. Values
 *   beyond 10^15 are not arithmetic questions.
 * - difficulty = number of operators + one per multiplication of two
 *   operands >= 10 in size + one if a number has 4+ digits + one if
 *   there are parentheses.
 * - P(right) = (1 - arith_err)^difficulty, arith_err from the tier table
 *   (sim_tiers.c), halved when the prompt asks to reason step by step,
 *   times the temperature factor.
 * - Wrong answers are plausible slips: off by a little, a carry error
 *   (off by 10 or 100), two swapped digits, or precedence ignored. */
#include "sim_internal.h"

#include <stdio.h>
#include <string.h>

#define MAX_TOKENS 64
#define LIMIT 1000000000000000LL /* 10^15 */

enum { T_NUM, T_ADD, T_SUB, T_MUL, T_LP, T_RP };

typedef struct {
  int type[MAX_TOKENS];
  int64_t num[MAX_TOKENS];
  int n;
} tokens;

static int lower(int c)
{
  return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static int word_at(const char *s, size_t n, size_t i, const char *w)
{
  size_t k = strlen(w);
  if (i + k > n)
    return 0;
  for (size_t j = 0; j < k; j++)
    if (lower((unsigned char)s[i + j]) != w[j])
      return 0;
  return 1;
}

static int is_alpha(int c)
{
  return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
}

/* Reads the tokens of an expression starting at s[i]; stops at the first
 * character that cannot continue one. */
static void lex(const char *s, size_t n, size_t i, tokens *t)
{
  t->n = 0;
  while (i < n && t->n < MAX_TOKENS) {
    unsigned char c = (unsigned char)s[i];
    int prev = t->n ? t->type[t->n - 1] : -1;
    int after_operand = prev == T_NUM || prev == T_RP;
    if (c == ' ' || c == '\t') {
      i++;
      continue;
    }
    if (c >= '0' && c <= '9') {
      if (after_operand)
        break;
      int64_t v = 0;
      size_t digits = 0;
      while (i < n && s[i] >= '0' && s[i] <= '9' && digits < 13) {
        v = v * 10 + (s[i] - '0');
        i++;
        digits++;
      }
      if (digits > 12 || (i < n && s[i] >= '0' && s[i] <= '9'))
        return; /* too long to be a question we answer */
      /* "3.5" or "1,000": not integer arithmetic we parse; stop here. */
      if (i + 1 < n && (s[i] == '.' || s[i] == ',') && s[i + 1] >= '0' && s[i + 1] <= '9') {
        t->n = 0;
        return;
      }
      t->type[t->n] = T_NUM;
      t->num[t->n++] = v;
      continue;
    }
    int op = -1;
    size_t len = 1;
    if (c == '+') op = T_ADD;
    else if (c == '-') op = T_SUB;
    else if (c == '*') op = T_MUL;
    else if (c == '(') op = T_LP;
    else if (c == ')') op = T_RP;
    else if (c == 0xc3 && i + 1 < n && (unsigned char)s[i + 1] == 0x97) { op = T_MUL; len = 2; }
    else if (c == 0xe2 && i + 2 < n && (unsigned char)s[i + 1] == 0x88 && (unsigned char)s[i + 2] == 0x92) { op = T_SUB; len = 3; }
    else if ((c == 'x' || c == 'X') && after_operand && !(i + 1 < n && is_alpha((unsigned char)s[i + 1]))) op = T_MUL;
    else if (after_operand && word_at(s, n, i, "plus") && !(i + 4 < n && is_alpha((unsigned char)s[i + 4]))) { op = T_ADD; len = 4; }
    else if (after_operand && word_at(s, n, i, "minus") && !(i + 5 < n && is_alpha((unsigned char)s[i + 5]))) { op = T_SUB; len = 5; }
    else if (after_operand && word_at(s, n, i, "times") && !(i + 5 < n && is_alpha((unsigned char)s[i + 5]))) { op = T_MUL; len = 5; }
    else if (after_operand && word_at(s, n, i, "multiplied by")) { op = T_MUL; len = 13; }
    if (op < 0)
      break;
    t->type[t->n++] = op;
    i += len;
  }
}

typedef struct {
  const tokens *t;
  int pos;
  int ops, hard, parens, big;
  int ok;
} parser;

static int parse_expr(parser *p, int64_t *v);

static int parse_factor(parser *p, int64_t *v)
{
  const tokens *t = p->t;
  int neg = 0;
  if (p->pos < t->n && t->type[p->pos] == T_SUB) {
    neg = 1;
    p->pos++;
  }
  if (p->pos >= t->n)
    return 0;
  if (t->type[p->pos] == T_NUM) {
    *v = t->num[p->pos++];
    if (*v >= 1000)
      p->big = 1;
  } else if (t->type[p->pos] == T_LP) {
    int save = p->pos++;
    if (!parse_expr(p, v) || p->pos >= t->n || t->type[p->pos] != T_RP) {
      p->pos = save;
      return 0;
    }
    p->pos++;
    p->parens = 1;
  } else {
    return 0;
  }
  if (neg)
    *v = -*v;
  return 1;
}

static int parse_term(parser *p, int64_t *v)
{
  if (!parse_factor(p, v))
    return 0;
  while (p->pos < p->t->n && p->t->type[p->pos] == T_MUL) {
    int save = p->pos++;
    int64_t r, out;
    if (!parse_factor(p, &r)) {
      p->pos = save; /* "3 * ?": the expression ends before the '*' */
      break;
    }
    if (__builtin_mul_overflow(*v, r, &out) || out > LIMIT || out < -LIMIT) {
      p->ok = 0;
      return 0;
    }
    p->ops++;
    if ((*v >= 10 || *v <= -10) && (r >= 10 || r <= -10))
      p->hard++;
    *v = out;
  }
  return 1;
}

static int parse_expr(parser *p, int64_t *v)
{
  if (!parse_term(p, v))
    return 0;
  while (p->pos < p->t->n && (p->t->type[p->pos] == T_ADD || p->t->type[p->pos] == T_SUB)) {
    int op = p->t->type[p->pos];
    int save = p->pos++;
    int64_t r, out;
    if (!parse_term(p, &r)) {
      if (!p->ok)
        return 0;
      p->pos = save;
      break;
    }
    int of = op == T_ADD ? __builtin_add_overflow(*v, r, &out)
                         : __builtin_sub_overflow(*v, r, &out);
    if (of || out > LIMIT || out < -LIMIT) {
      p->ok = 0;
      return 0;
    }
    p->ops++;
    *v = out;
  }
  return 1;
}

/* Left to right, ignoring precedence and parentheses: a classic slip. */
static int naive_value(const tokens *t, int end, int64_t *v)
{
  int64_t acc = 0;
  int op = T_ADD, have = 0, neg = 0;
  for (int i = 0; i < end; i++) {
    int ty = t->type[i];
    if (ty == T_LP || ty == T_RP)
      continue;
    if (ty == T_NUM) {
      int64_t x = neg ? -t->num[i] : t->num[i];
      neg = 0;
      int of = op == T_ADD ? __builtin_add_overflow(acc, x, &acc)
             : op == T_SUB ? __builtin_sub_overflow(acc, x, &acc)
                           : __builtin_mul_overflow(acc, x, &acc);
      if (of)
        return 0;
      have = 1;
      op = -1;
    } else if (op == -1) {
      op = ty;
    } else if (ty == T_SUB) {
      neg = !neg;
    }
  }
  *v = acc;
  return have;
}

/* Parses an expression at s[i]; 1 with value and difficulty when it has
 * at least one operator. */
typedef struct {
  int64_t value, naive;   /* right answer; left-to-right answer */
  int difficulty;
  uint64_t ident;         /* hash of the expression's tokens */
} question;

static int expression_at(const char *s, size_t n, size_t i, question *q)
{
  tokens t;
  lex(s, n, i, &t);
  if (t.n < 3)
    return 0;
  parser p = {&t, 0, 0, 0, 0, 0, 1};
  int64_t v;
  if (!parse_expr(&p, &v) || !p.ok || p.ops == 0)
    return 0;
  q->value = v;
  q->difficulty = p.ops + p.hard + p.big + p.parens;
  if (!naive_value(&t, p.pos, &q->naive))
    q->naive = v;
  q->ident = SIM_HASH_INIT;
  for (int k = 0; k < p.pos; k++)
    q->ident = sim_hash_u64(q->ident, t.type[k] == T_NUM ? (uint64_t)t.num[k] : 0xff00u + (unsigned)t.type[k]);
  return 1;
}

static const char *const triggers[] = {
  "what is", "what's", "whats", "compute", "calculate", "evaluate", "how much is", "solve",
};

static int find(const char *s, size_t n, question *q)
{
  int found = 0;
  for (size_t i = 0; i < n; i++) {
    /* Every trigger starts with one of these letters. */
    int c = lower((unsigned char)s[i]);
    if ((c != 'w' && c != 'c' && c != 'e' && c != 'h' && c != 's') ||
        (i > 0 && is_alpha((unsigned char)s[i - 1])))
      continue;
    for (size_t k = 0; k < sizeof triggers / sizeof *triggers; k++) {
      if (!word_at(s, n, i, triggers[k]))
        continue;
      size_t j = i + strlen(triggers[k]);
      if (j < n && is_alpha((unsigned char)s[j]))
        continue;
      while (j < n && (s[j] == ' ' || s[j] == ':' || s[j] == '\t'))
        j++;
      if (expression_at(s, n, j, q))
        found = 1; /* keep looking: the last question wins */
    }
  }
  if (found)
    return 1;
  /* A message that is only an expression ("17 + 25 =", "(3+4)*5?"): the
   * characters of a plain expression, then only '=', '?', '.', '!'. */
  size_t a = 0;
  while (a < n && (s[a] == ' ' || s[a] == '\n' || s[a] == '\t'))
    a++;
  size_t j = a;
  while (j < n && strchr("0123456789+-*()xX \t", s[j]) != NULL)
    j++;
  while (j < n && strchr("=?.! \t\r\n", s[j]) != NULL)
    j++;
  return j == n && a < n && expression_at(s, n, a, q);
}

int sim_arith_find(const char *s, size_t n, int64_t *value, int *difficulty)
{
  question q;
  if (!s || !find(s, n, &q))
    return 0;
  *value = q.value;
  *difficulty = q.difficulty;
  return 1;
}

/* A plausible wrong answer, different from v. */
static int64_t slip(int64_t v, int64_t naive, sim_rng *rng)
{
  char digits[32];
  int64_t w = v;
  switch (sim_rng_below(rng, 4)) {
  case 0: /* off by a little */
    w = v + (sim_rng_below(rng, 2) ? 1 : -1) * (int64_t)(1 + sim_rng_below(rng, 3));
    break;
  case 1: { /* a carry error */
    int64_t mag = (v >= 100 || v <= -100) && sim_rng_below(rng, 2) ? 100 : 10;
    w = v + (sim_rng_below(rng, 2) ? mag : -mag);
    break;
  }
  case 2: { /* two adjacent digits swapped */
    int len = snprintf(digits, sizeof digits, "%lld", (long long)(v < 0 ? -v : v));
    for (int tries = 0; tries < 4 && len >= 2; tries++) {
      int k = (int)sim_rng_below(rng, (uint32_t)(len - 1));
      if (digits[k] != digits[k + 1] && !(k == 0 && digits[1] == '0')) {
        char c = digits[k];
        digits[k] = digits[k + 1];
        digits[k + 1] = c;
        long long x = 0;
        for (int i = 0; i < len; i++)
          x = x * 10 + (digits[i] - '0');
        w = v < 0 ? -x : x;
        break;
      }
    }
    break;
  }
  default: /* precedence ignored */
    w = naive;
    break;
  }
  if (w == v)
    w = v + (sim_rng_below(rng, 2) ? 1 : -1);
  return w;
}

static int wants_reasoning(const sim_prompt *p)
{
  return p->verbose;
}

int sim_skill_arith(const sim_prompt *p, const char *model, uint64_t key, double temperature,
                    sim_skill_out *out)
{
  question q;
  if (!p->last_user || !find(p->last_user, p->last_user_len, &q))
    return 0;
  int difficulty = q.difficulty;
  const sim_tier *tier = sim_tier_of(model, NULL);
  double err = tier->arith_err * sim_temperature_factor(temperature) *
               (p->err_scale > 0 ? p->err_scale : 1.0);
  if (wants_reasoning(p))
    err *= 0.5;
  double p_right = 1.0;
  for (int i = 0; i < difficulty; i++)
    p_right *= 1.0 - err;
  /* The draw depends on the question, not on the rest of the prompt, so
   * rephrasing a prompt keeps the same luck. */
  uint64_t qkey = sim_hash_u64(sim_hash_str(key, "arith"), q.ident);
  int right = sim_unit_of(qkey) < p_right;
  int64_t answer = q.value;
  if (!right) {
    sim_rng rng;
    sim_rng_init(&rng, sim_hash_str(qkey, "slip"));
    answer = slip(q.value, q.naive, &rng);
  }
  memset(out, 0, sizeof *out);
  out->kind = SIM_SKILL_ARITH;
  out->difficulty = 0.5 + 0.25 * difficulty; /* for reasoning models */
  out->outcome = right ? SIM_RIGHT : SIM_WRONG;
  out->conf_z = sim_confidence_z(qkey, out->outcome);
  char num[32];
  snprintf(num, sizeof num, "%lld", (long long)answer);
  if (wants_reasoning(p)) {
    sim_rng rng;
    sim_rng_init(&rng, sim_hash_str(qkey, "reasoning"));
    sim_text_generate(&out->text, &rng, 30 + 15 * difficulty, NULL, 0);
    llm_buf_puts(&out->text, " The answer is ");
    out->answer_at = out->text.len;
    llm_buf_puts(&out->text, num);
    llm_buf_putc(&out->text, '.');
  } else {
    llm_buf_puts(&out->text, num);
  }
  return 1;
}
