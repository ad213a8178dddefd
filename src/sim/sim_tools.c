/* The simulator's tool rule, shared by both wire formats, so a two-turn
 * tool loop (the model calls a tool, the caller runs it and sends the
 * result, the model answers) works offline and deterministically.
 *
 * WHICH TOOL. Words of the last user message (letters and digits, 3 or
 * more, lower-cased, minus common words) are matched against each tool:
 * a word of its name (split at '_', '-', '.' and camelCase) scores 3; a
 * word of its description, of a parameter name or of an enum value
 * scores 1. Words match when equal, or when the shorter (4 letters or
 * more) begins the longer ("temp" ~ "temperature"). The highest score
 * wins, ties to the earlier tool. tool_choice none calls nothing; a named
 * tool is called whatever the score; required (Anthropic "any") calls the
 * best tool even at score 0; auto calls it only when the score is above 0
 * and the last message is the user's (after a tool result the model
 * answers instead).
 *
 * ITS ARGUMENTS. A compact JSON object in the schema's property order.
 * For each property, in order of preference:
 *   - an explicit value in the text: "<name>: v", "<name> = v" or
 *     "<name> is v" (name with '_' read as a space, any case), v running
 *     to the next , ; ? ! newline or sentence-ending period;
 *   - enum: the first enum value that appears in the text as a word;
 *   - string: the next quoted string ("..." or '...') not yet used, else
 *     the next capitalised phrase not at the start of a sentence ("Paris",
 *     "San Francisco");
 *   - number / integer: the next number in the text not yet used;
 *   - boolean: true when every word of its name is in the text;
 *   - array: one element built from `items` by the same rules;
 *   - object: its own properties, recursively.
 * A required property with nothing found gets its schema default, else:
 * enum's first value, for a string the whole message (at most 200
 * bytes), for a number its minimum or 0, false, [], or {}. An optional
 * property with nothing found is left out.
 *
 * AFTER A RESULT. When the request ends with tool results the answer
 * reports each: "According to NAME, k1 is v1, k2 is v2." for a JSON
 * object (its first 8 members), else "According to NAME, TEXT." with the
 * text's white space collapsed and at most 400 bytes. */
#include "sim_internal.h"

#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WORDS 256
#define MAX_CANDIDATES 32
#define MAX_DEPTH 8
#define WHOLE_TEXT_MAX 200
#define RESULT_TEXT_MAX 400

/* ---- words ------------------------------------------------------------------- */

typedef struct words {
  char w[MAX_WORDS][24];
  int n;
} words;

static const char *const common[] = {
  "the", "and", "for", "with", "what", "whats", "which", "who", "how", "are", "was", "were",
  "you", "your", "can", "could", "would", "please", "tell", "give", "show", "get", "set",
  "use", "using", "tool", "call", "function", "this", "that", "these", "those", "from",
  "about", "into", "out", "is", "its", "it's", "let", "know", "want", "need", "there", "here",
  "some", "any", "all", "now", "me", "my", "our", "of", "to", "in", "on", "at", "by", "an",
  "do", "does", "did", "has", "have", "had", "be", "will", "shall", "should", "may", "might",
  "value", "name", "type", "string", "number", "integer", "object", "array", "boolean",
};

static int is_common(const char *w)
{
  for (size_t i = 0; i < sizeof common / sizeof *common; i++)
    if (strcmp(common[i], w) == 0)
      return 1;
  return 0;
}

static int alnum(char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static char lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c; }

static void add_word(words *ws, const char *s, size_t n)
{
  char w[24];
  if (n < 3 || n >= sizeof w || ws->n == MAX_WORDS)
    return;
  for (size_t i = 0; i < n; i++)
    w[i] = lower(s[i]);
  w[n] = '\0';
  if (is_common(w))
    return;
  for (int i = 0; i < ws->n; i++)
    if (strcmp(ws->w[i], w) == 0)
      return;
  memcpy(ws->w[ws->n++], w, n + 1);
}

/* Splits at every non-alphanumeric byte and, when camel is set, before an
 * upper-case letter that follows a lower-case one ("getWeather"). */
static void split_words(words *ws, const char *s, size_t n, int camel)
{
  size_t start = 0;
  for (size_t i = 0; i <= n; i++) {
    int end = i == n || !alnum(s[i]);
    int hump = camel && i > start && i < n && s[i] >= 'A' && s[i] <= 'Z' && s[i - 1] >= 'a' &&
               s[i - 1] <= 'z';
    if (end || hump) {
      add_word(ws, s + start, i - start);
      start = end ? i + 1 : i;
    }
  }
}

static int word_match(const char *a, const char *b)
{
  size_t la = strlen(a), lb = strlen(b);
  if (la > lb) {
    const char *t = a;
    a = b;
    b = t;
    la = lb;
  }
  return strcmp(a, b) == 0 || (la >= 4 && strncmp(a, b, la) == 0);
}

static int any_match(const words *ws, const char *w)
{
  for (int i = 0; i < ws->n; i++)
    if (word_match(ws->w[i], w))
      return 1;
  return 0;
}

/* Words of a schema's parameter names and enum values, recursively. */
static void schema_words(words *ws, const json_value *schema, int depth)
{
  const json_value *props = json_get(schema, "properties"), *en = json_get(schema, "enum");
  if (!schema || depth > MAX_DEPTH)
    return;
  for (size_t i = 0; props && props->type == JSON_OBJECT && i < props->u.object.n; i++) {
    const json_member *m = &props->u.object.members[i];
    split_words(ws, m->key, m->key_len, 1);
    schema_words(ws, &m->value, depth + 1);
  }
  for (size_t i = 0; en && en->type == JSON_ARRAY && i < en->u.array.n; i++)
    if (json_is_string(&en->u.array.items[i]))
      split_words(ws, en->u.array.items[i].u.string.ptr, en->u.array.items[i].u.string.len, 1);
  schema_words(ws, json_get(schema, "items"), depth + 1);
}

static int score(const sim_tool *t, const words *prompt)
{
  words name, rest;
  int s = 0;
  name.n = rest.n = 0;
  if (t->name)
    split_words(&name, t->name, strlen(t->name), 1);
  if (t->description)
    split_words(&rest, t->description, strlen(t->description), 0);
  schema_words(&rest, t->schema, 0);
  for (int i = 0; i < prompt->n; i++) {
    if (any_match(&name, prompt->w[i]))
      s += 3;
    else if (any_match(&rest, prompt->w[i]))
      s += 1;
  }
  return s;
}

int sim_tools_choose(const sim_request *req, const sim_prompt *p)
{
  words prompt;
  int best = -1, best_score = -1;
  int last_is_user;
  if (!req->tools || req->ntools == 0 || req->tool_choice == SIM_TOOLS_NONE)
    return -1;
  if (req->tool_choice == SIM_TOOLS_NAMED) {
    for (size_t i = 0; i < req->ntools; i++)
      if (req->tool_choice_name && req->tools[i].name &&
          strcmp(req->tools[i].name, req->tool_choice_name) == 0)
        return (int)i;
    return -1;
  }
  prompt.n = 0;
  if (p->last_user)
    split_words(&prompt, p->last_user, p->last_user_len, 0);
  for (size_t i = 0; i < req->ntools; i++) {
    int s = score(&req->tools[i], &prompt);
    if (s > best_score) {
      best = (int)i;
      best_score = s;
    }
  }
  if (req->tool_choice == SIM_TOOLS_REQUIRED)
    return best;
  last_is_user = req->nmessages > 0 && req->messages[req->nmessages - 1].role &&
                 strcmp(req->messages[req->nmessages - 1].role, "user") == 0;
  return last_is_user && best_score > 0 ? best : -1;
}

/* ---- candidate values in the text --------------------------------------------------- */

typedef struct span {
  const char *p;
  size_t n;
} span;

typedef struct list {
  span s[MAX_CANDIDATES];
  int n, next;
} list;

typedef struct facts {
  const char *text;
  size_t n;
  list quoted, numbers, caps;
} facts;

static void push(list *l, const char *p, size_t n)
{
  if (l->n < MAX_CANDIDATES && n > 0)
    l->s[l->n++] = (span){p, n};
}

static int sentence_start(const char *t, size_t i)
{
  size_t j = i;
  while (j > 0 && (t[j - 1] == ' ' || t[j - 1] == '\t' || t[j - 1] == '"' || t[j - 1] == '('))
    j--;
  return j == 0 || t[j - 1] == '.' || t[j - 1] == '?' || t[j - 1] == '!' || t[j - 1] == '\n' ||
         t[j - 1] == ':';
}

static void find_facts(facts *f, const char *t, size_t n)
{
  memset(f, 0, sizeof *f);
  f->text = t;
  f->n = n;
  for (size_t i = 0; i < n; i++) {
    char c = t[i];
    if ((c == '"' || c == '\'') && (i == 0 || !alnum(t[i - 1]))) {
      const char *close = memchr(t + i + 1, c, n - i - 1);
      /* an apostrophe inside a word ("it's") is not a quote */
      if (close && (size_t)(close - t) + 1 <= n &&
          ((size_t)(close - t) + 1 == n || !alnum(close[1]))) {
        push(&f->quoted, t + i + 1, (size_t)(close - (t + i + 1)));
        i = (size_t)(close - t);
        continue;
      }
    }
    if ((c >= '0' && c <= '9') || (c == '-' && i + 1 < n && t[i + 1] >= '0' && t[i + 1] <= '9')) {
      size_t j = i + 1;
      if (i > 0 && alnum(t[i - 1]))
        continue;
      while (j < n && ((t[j] >= '0' && t[j] <= '9') ||
                       (t[j] == '.' && j + 1 < n && t[j + 1] >= '0' && t[j + 1] <= '9')))
        j++;
      if (j < n && (t[j] >= 'a' && t[j] <= 'z'))
        continue; /* "3rd", "5th": not a number */
      push(&f->numbers, t + i, j - i);
      i = j - 1;
      continue;
    }
    if (c >= 'A' && c <= 'Z' && (i == 0 || !alnum(t[i - 1])) && !sentence_start(t, i)) {
      size_t j = i, end = i;
      /* Capitalised words joined by single spaces */
      while (j < n && t[j] >= 'A' && t[j] <= 'Z') {
        size_t k = j + 1;
        while (k < n && (alnum(t[k]) || t[k] == '-'))
          k++;
        end = k;
        if (k + 1 < n && t[k] == ' ' && t[k + 1] >= 'A' && t[k + 1] <= 'Z')
          j = k + 1;
        else
          break;
      }
      if (end - i > 1) /* "I", "A" */
        push(&f->caps, t + i, end - i);
      i = end;
    }
  }
}

static int ci_equal(const char *a, size_t n, const char *b, size_t m)
{
  if (n != m)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (lower(a[i]) != lower(b[i]))
      return 0;
  return 1;
}

/* Is w (n bytes) a whole word of the text, in any case? */
static int has_word(const facts *f, const char *w, size_t n)
{
  for (size_t i = 0; n && i + n <= f->n; i++)
    if ((i == 0 || !alnum(f->text[i - 1])) && (i + n == f->n || !alnum(f->text[i + n])) &&
        ci_equal(f->text + i, n, w, n))
      return 1;
  return 0;
}

/* "<name>: v", "<name> = v" or "<name> is v", the name's '_' as spaces. */
static int explicit_value(const facts *f, const char *name, span *out)
{
  char key[64];
  size_t k = strlen(name);
  if (k == 0 || k >= sizeof key)
    return 0;
  for (size_t i = 0; i < k; i++)
    key[i] = name[i] == '_' || name[i] == '-' ? ' ' : name[i];
  for (size_t i = 0; i + k <= f->n; i++) {
    const char *t = f->text;
    size_t j = i + k, start, end;
    if ((i > 0 && alnum(t[i - 1])) || !ci_equal(t + i, k, key, k) || (j < f->n && alnum(t[j])))
      continue;
    while (j < f->n && t[j] == ' ')
      j++;
    if (j < f->n && (t[j] == ':' || t[j] == '='))
      j++;
    else if (j + 3 <= f->n && strncmp(t + j, "is ", 3) == 0)
      j += 2;
    else
      continue;
    while (j < f->n && (t[j] == ' ' || t[j] == '"' || t[j] == '\''))
      j++;
    start = end = j;
    while (end < f->n && !strchr(",;?!\n\"'", t[end]) &&
           !(t[end] == '.' && (end + 1 == f->n || t[end + 1] == ' ' || t[end + 1] == '\n')))
      end++;
    while (end > start && t[end - 1] == ' ')
      end--;
    if (end > start) {
      out->p = t + start;
      out->n = end - start;
      return 1;
    }
  }
  return 0;
}

static int take(list *l, span *out)
{
  if (l->next >= l->n)
    return 0;
  *out = l->s[l->next++];
  return 1;
}

/* ---- arguments ------------------------------------------------------------------------- */

static const char *type_of(const json_value *schema)
{
  const json_value *t = json_get(schema, "type");
  if (json_is_string(t))
    return t->u.string.ptr;
  if (t && t->type == JSON_ARRAY) /* ["string", "null"] */
    for (size_t i = 0; i < t->u.array.n; i++)
      if (json_is_string(&t->u.array.items[i]) &&
          strcmp(t->u.array.items[i].u.string.ptr, "null") != 0)
        return t->u.array.items[i].u.string.ptr;
  if (json_get(schema, "properties"))
    return "object";
  if (json_get(schema, "items"))
    return "array";
  return "string";
}

/* The first alternative of anyOf / oneOf / allOf, as the schema to use. */
static const json_value *resolve(const json_value *schema)
{
  static const char *const alts[] = {"anyOf", "oneOf", "allOf"};
  for (int k = 0; k < 3; k++) {
    const json_value *a = json_get(schema, alts[k]);
    if (a && a->type == JSON_ARRAY && a->u.array.n > 0)
      return &a->u.array.items[0];
  }
  return schema;
}

static void put_number_text(llm_buf *b, const char *p, size_t n, int integer)
{
  char buf[48];
  double d;
  snprintf(buf, sizeof buf, "%.*s", (int)(n < 47 ? n : 47), p);
  d = strtod(buf, NULL);
  if (integer)
    json_put_int(b, (int64_t)d);
  else
    json_put_double(b, d);
}

static int is_number_text(const char *p, size_t n)
{
  char buf[48], *end;
  if (n == 0 || n > 47)
    return 0;
  memcpy(buf, p, n);
  buf[n] = '\0';
  strtod(buf, &end);
  return *end == '\0';
}

static int put_value(facts *f, const char *name, const json_value *schema, int required,
                     llm_buf *b, int depth);

static int put_object(facts *f, const json_value *schema, int required, llm_buf *b, int depth)
{
  const json_value *props = json_get(schema, "properties"), *req = json_get(schema, "required");
  size_t members = 0, mark = b->len;
  llm_buf_putc(b, '{');
  for (size_t i = 0; props && props->type == JSON_OBJECT && i < props->u.object.n; i++) {
    const json_member *m = &props->u.object.members[i];
    int is_req = 0;
    llm_buf v;
    for (size_t k = 0; req && req->type == JSON_ARRAY && k < req->u.array.n; k++)
      if (json_is_string(&req->u.array.items[k]) &&
          strcmp(req->u.array.items[k].u.string.ptr, m->key) == 0)
        is_req = 1;
    llm_buf_init(&v);
    if (put_value(f, m->key, &m->value, is_req, &v, depth + 1)) {
      if (members++)
        llm_buf_putc(b, ',');
      json_put_string(b, m->key, m->key_len);
      llm_buf_putc(b, ':');
      llm_buf_put(b, v.data, v.len);
    }
    llm_buf_free(&v);
  }
  llm_buf_putc(b, '}');
  if (!members && !required) {
    b->len = mark; /* nothing to say: leave it out */
    if (b->data)
      b->data[mark] = '\0';
    return 0;
  }
  return 1;
}

static int put_value(facts *f, const char *name, const json_value *schema, int required,
                     llm_buf *b, int depth)
{
  const json_value *en, *def;
  const char *type;
  span s = {NULL, 0};
  int found;
  schema = resolve(schema);
  if (!schema || schema->type != JSON_OBJECT || depth > MAX_DEPTH)
    return 0;
  type = type_of(schema);
  en = json_get(schema, "enum");
  def = json_get(schema, "default");
  found = explicit_value(f, name, &s);
  if (en && en->type == JSON_ARRAY && en->u.array.n > 0) {
    for (size_t i = 0; i < en->u.array.n; i++) {
      const json_value *e = &en->u.array.items[i];
      if (json_is_string(e) && ((found && ci_equal(s.p, s.n, e->u.string.ptr, e->u.string.len)) ||
                                (!found && has_word(f, e->u.string.ptr, e->u.string.len)))) {
        json_put_value(b, e);
        return 1;
      }
    }
    if (!required)
      return 0;
    json_put_value(b, def ? def : &en->u.array.items[0]);
    return 1;
  }
  if (strcmp(type, "object") == 0)
    return put_object(f, schema, required, b, depth);
  if (strcmp(type, "array") == 0) {
    llm_buf v;
    int got;
    llm_buf_init(&v);
    got = put_value(f, name, json_get(schema, "items"), 0, &v, depth + 1);
    if (got || required) {
      llm_buf_putc(b, '[');
      llm_buf_put(b, v.data, v.len);
      llm_buf_putc(b, ']');
    }
    llm_buf_free(&v);
    return got || required;
  }
  if (strcmp(type, "number") == 0 || strcmp(type, "integer") == 0) {
    int integer = strcmp(type, "integer") == 0;
    if ((found && is_number_text(s.p, s.n)) || take(&f->numbers, &s)) {
      put_number_text(b, s.p, s.n, integer);
      return 1;
    }
    if (!required)
      return 0;
    if (def && def->type == JSON_NUMBER)
      json_put_value(b, def);
    else if (json_get(schema, "minimum") && json_get(schema, "minimum")->type == JSON_NUMBER)
      json_put_value(b, json_get(schema, "minimum"));
    else
      json_put_int(b, 0);
    return 1;
  }
  if (strcmp(type, "boolean") == 0) {
    words w;
    int all = 1;
    if (found && (ci_equal(s.p, s.n, "true", 4) || ci_equal(s.p, s.n, "yes", 3))) {
      llm_buf_puts(b, "true");
      return 1;
    }
    if (found && (ci_equal(s.p, s.n, "false", 5) || ci_equal(s.p, s.n, "no", 2))) {
      llm_buf_puts(b, "false");
      return 1;
    }
    w.n = 0;
    split_words(&w, name, strlen(name), 1);
    for (int i = 0; i < w.n; i++)
      all &= has_word(f, w.w[i], strlen(w.w[i]));
    if (w.n > 0 && all) {
      llm_buf_puts(b, "true");
      return 1;
    }
    if (!required)
      return 0;
    llm_buf_puts(b, def && def->type == JSON_TRUE ? "true" : "false");
    return 1;
  }
  if (strcmp(type, "null") == 0) {
    if (required)
      llm_buf_puts(b, "null");
    return required;
  }
  /* a string, or a type we do not know: written as a string */
  if (found || take(&f->quoted, &s) || take(&f->caps, &s)) {
    json_put_string(b, s.p, s.n);
    return 1;
  }
  if (!required)
    return 0;
  if (def && json_is_string(def)) {
    json_put_value(b, def);
  } else {
    size_t n = f->n;
    while (n > 0 && (f->text[n - 1] == ' ' || f->text[n - 1] == '\n'))
      n--;
    if (n > WHOLE_TEXT_MAX) {
      n = WHOLE_TEXT_MAX;
      while (n > 0 && (f->text[n] & 0xc0) == 0x80)
        n--; /* not inside a UTF-8 character */
    }
    json_put_string(b, f->text, n);
  }
  return 1;
}

void sim_tools_arguments(const sim_tool *t, const char *text, size_t n, llm_buf *out)
{
  facts f;
  llm_buf b;
  find_facts(&f, text ? text : "", text ? n : 0);
  llm_buf_init(&b);
  if (!t->schema || !put_object(&f, resolve(t->schema), 1, &b, 0)) {
    llm_buf_reset(&b);
    llm_buf_puts(&b, "{}");
  }
  if (b.failed)
    out->failed = 1;
  else
    llm_buf_put(out, b.data, b.len);
  llm_buf_free(&b);
}

/* ---- answering from results ----------------------------------------------------------------- */

/* Appends s with white space runs collapsed, at most max bytes. */
static void put_collapsed(llm_buf *out, const char *s, size_t n, size_t max)
{
  size_t start = out->len, i = 0;
  int space = 0;
  while (i < n && (s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r'))
    i++;
  for (; i < n && out->len - start < max; i++) {
    char c = s[i];
    if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
      space = 1;
      continue;
    }
    if (space)
      llm_buf_putc(out, ' ');
    space = 0;
    llm_buf_putc(out, c);
  }
  if (i < n) {
    while (out->len > start && (out->data[out->len - 1] & 0xc0) == 0x80)
      out->len--; /* drop a cut UTF-8 character */
    if (out->len > start && (unsigned char)out->data[out->len - 1] >= 0xc0)
      out->len--;
    if (!out->failed && out->data)
      out->data[out->len] = '\0';
    llm_buf_puts(out, "...");
  }
}

static void put_scalar(llm_buf *out, const json_value *v)
{
  llm_buf b;
  if (json_is_string(v)) {
    put_collapsed(out, v->u.string.ptr, v->u.string.len, RESULT_TEXT_MAX);
    return;
  }
  if (v->type == JSON_NULL) {
    llm_buf_puts(out, "none");
    return;
  }
  llm_buf_init(&b);
  json_put_value(&b, v);
  if (!b.failed)
    put_collapsed(out, b.data, b.len, RESULT_TEXT_MAX);
  llm_buf_free(&b);
}

static void put_result(llm_buf *out, const sim_message *m)
{
  json_doc *doc = NULL;
  json_error err;
  const json_value *v = m->content_len ? json_parse(m->content, m->content_len, &doc, &err) : NULL;
  llm_buf_puts(out, "According to ");
  llm_buf_puts(out, m->tool_name && m->tool_name[0] ? m->tool_name : "the tool");
  llm_buf_puts(out, ", ");
  if (v && v->type == JSON_OBJECT && v->u.object.n > 0) {
    for (size_t i = 0; i < v->u.object.n && i < 8; i++) {
      if (i)
        llm_buf_puts(out, ", ");
      sim_put_utf8(out, v->u.object.members[i].key, v->u.object.members[i].key_len);
      llm_buf_puts(out, " is ");
      put_scalar(out, &v->u.object.members[i].value);
    }
  } else if (v) {
    put_scalar(out, v);
  } else if (m->content_len) {
    size_t start = out->len;
    put_collapsed(out, m->content, m->content_len, RESULT_TEXT_MAX);
    /* copied from a prompt: keep it valid UTF-8 */
    if (!out->failed && out->data) {
      llm_buf tmp = {0};
      sim_put_utf8(&tmp, out->data + start, out->len - start);
      out->len = start;
      llm_buf_put(out, tmp.data ? tmp.data : "", tmp.len);
      llm_buf_free(&tmp);
    }
  } else {
    llm_buf_puts(out, "nothing came back");
  }
  json_free(doc);
  if (out->len && out->data[out->len - 1] != '.')
    llm_buf_putc(out, '.');
}

int sim_tools_answer(const sim_request *req, llm_buf *out)
{
  size_t first = req->nmessages;
  while (first > 0 && req->messages[first - 1].role &&
         strcmp(req->messages[first - 1].role, "tool") == 0)
    first--;
  if (first == req->nmessages)
    return 0;
  for (size_t i = first; i < req->nmessages; i++) {
    if (i > first)
      llm_buf_putc(out, ' ');
    put_result(out, &req->messages[i]);
  }
  return 1;
}
