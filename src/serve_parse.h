/* HTTP/1.1 request parsing for the server engine (serve.c): the request
 * head, parsed in place, and chunked bodies, decoded in place. Pure
 * functions over a buffer, so they are tested byte by byte without
 * sockets (tests/c/test_serve_parse.c).
 *
 * Strict where leniency lets two servers read one request two ways
 * (request smuggling): a line folded onto the previous one, a space
 * before a header's colon, Content-Length with anything but digits, two
 * different Content-Lengths, or both Content-Length and Transfer-Encoding
 * are refused. Lines may end in CRLF or a bare LF. */
#ifndef LLMRUN_SERVE_PARSE_H
#define LLMRUN_SERVE_PARSE_H

#include <stddef.h>
#include <stdint.h>

#define LLM_SERVE_MAX_HEADERS 100

/* Offsets into the buffer the head was parsed in (the buffer may move
 * later; strings are NUL-terminated in place; header names lower-cased). */
typedef struct llm_head {
  size_t method, target;
  size_t name[LLM_SERVE_MAX_HEADERS], value[LLM_SERVE_MAX_HEADERS];
  size_t nheaders;
  size_t head_len;         /* bytes of the head, its blank line included */
  int minor;               /* HTTP/1.minor */
  int chunked;             /* Transfer-Encoding: chunked */
  int64_t content_length;  /* -1: none */
  int keep_alive;
  int expect_continue;
} llm_head;

/* Where a blank line ends the head in buf[0..len), searching from *scan
 * (kept between calls, start at 0): the head's length, or 0 if it has not
 * ended yet. */
size_t llm_head_end(const char *buf, size_t len, size_t *scan);

/* Parses the head buf[0..head_len) in place. Returns 0, or the HTTP
 * status to refuse it with (400, 501 for a transfer coding other than
 * chunked, 505 for a version other than 1.0/1.1, 431 for too many
 * headers), with a reason in *why. */
int llm_head_parse(char *buf, size_t head_len, llm_head *h, const char **why);

/* Incremental, in-place chunked decoding of buf[start..len): decoded
 * bytes are moved down to buf[start..out). */
typedef struct llm_chunked {
  int state;
  uint64_t remaining;      /* bytes left in the current chunk */
  size_t in;               /* next byte to read (absolute offset) */
  size_t start;            /* where the body starts (absolute offset) */
  size_t out;              /* end of the decoded body (absolute offset) */
  size_t line;             /* bytes of the current size or trailer line */
} llm_chunked;

void llm_chunked_init(llm_chunked *c, size_t start);
/* 1: the body is complete (c->in is where the next request starts), 0:
 * more bytes needed, -1: malformed (400), -2: decoded body over max (413). */
int llm_chunked_step(llm_chunked *c, char *buf, size_t len, size_t max);

#endif
