/* A small strict JSON reader (RFC 8259) and an escaping writer, for the
 * engines that speak JSON without Lua (the simulator parses requests on its
 * own thread, where lua-cjson cannot run).
 *
 * Reader: json_parse() builds a read-only tree in one arena that
 * json_free() releases at once; it keeps no pointer into the input text. Strict: no comments, no trailing commas,
 * no leading zeros, no NaN/Infinity, no control characters in strings,
 * raw bytes must be valid UTF-8, numbers must fit a double, nesting is
 * limited to JSON_MAX_DEPTH. Escaped lone surrogates (valid JSON grammar,
 * not valid Unicode) decode to U+FFFD. Duplicate keys are kept; lookups
 * return the last one, as Python's json and JavaScript's JSON.parse do.
 *
 * Writer: a growable byte buffer with helpers that always produce valid
 * JSON (invalid UTF-8 in a string becomes U+FFFD, NaN and infinities
 * become null).
 *
 * Numbers are read and written in the C locale's format: threads that
 * use these functions while another thread may call setlocale() should
 * call uselocale() with a "C" locale first (the simulator's thread does). */
#ifndef LLMRUN_JSON_H
#define LLMRUN_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define JSON_MAX_DEPTH 128

typedef enum json_type {
  JSON_NULL, JSON_FALSE, JSON_TRUE, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT
} json_type;

typedef struct json_value json_value;
typedef struct json_member json_member;

struct json_value {
  json_type type;
  union {
    struct { double value; const char *text; size_t len; } number; /* text: as written,
                                                                       in the doc */
    struct { const char *ptr; size_t len; } string; /* unescaped, NUL-terminated */
    struct { json_value *items; size_t n; } array;
    struct { json_member *members; size_t n; } object;
  } u;
};

struct json_member {
  const char *key; /* unescaped, NUL-terminated */
  size_t key_len;
  json_value value;
};

typedef struct json_doc json_doc;

typedef struct json_error {
  size_t offset;      /* byte offset of the problem */
  char message[96];
} json_error;

/* Parses text[0 .. len). Returns the root (owned by *doc; free with
 * json_free), or NULL with *err filled (and *doc NULL). */
const json_value *json_parse(const char *text, size_t len, json_doc **doc, json_error *err);
void json_free(json_doc *doc);

/* A browser decodes a body as UTF-8 before JSON.parse sees it: every
 * ill-formed sequence (its maximal subpart, per the WHATWG decoder)
 * becomes U+FFFD. Returns 0 when text[0 .. len) is valid UTF-8 (nothing
 * to do), 1 with a malloc'd, NUL-terminated copy in *out (*outlen bytes)
 * when something was replaced, or -1 when out of memory. */
int json_utf8_scrub(const char *text, size_t len, char **out, size_t *outlen);

/* Lookups; NULL when v is not an object/array or has no such member. */
const json_value *json_get(const json_value *obj, const char *key);
const json_value *json_at(const json_value *arr, size_t i);

/* An integral number that fits int64 exactly (no fraction, no exponent
 * beyond the digits): 1 and *out set, else 0. */
int json_int64(const json_value *v, int64_t *out);
int json_is_string(const json_value *v);
const char *json_type_name(json_type t);

/* ---- writer ---------------------------------------------------------- */

/* The writer appends to an llm_buf (buf.h): a failed allocation sets its
 * `failed` flag and later writes are dropped, so check once at the end.
 *
 * A JSON string literal (quotes included) for s[0 .. n). */
void json_put_string(llm_buf *b, const char *s, size_t n);
void json_put_cstring(llm_buf *b, const char *s); /* NULL writes null */
void json_put_double(llm_buf *b, double d);       /* shortest that round-trips */
void json_put_float(llm_buf *b, float f);         /* same for a float32 */
void json_put_int(llm_buf *b, int64_t i);
/* Re-serialises a parsed value compactly. */
void json_put_value(llm_buf *b, const json_value *v);

/* Standard base64 (RFC 4648, with padding) of n bytes. */
void json_put_base64(llm_buf *b, const void *p, size_t n);

#endif
