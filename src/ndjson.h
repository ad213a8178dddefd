/* NDJSON: an incremental line splitter for newline-delimited JSON bodies
 * (Ollama's native streaming API sends one JSON object per line).
 *
 * It only cuts lines; the JSON is decoded by the caller (lua-cjson). Lines
 * end in LF; a CR before the LF is dropped (CRLF tolerated); lines of only
 * JSON whitespace are skipped. A line that lies within one chunk is handed
 * over without copying; one split across chunks is gathered in a buffer
 * that grows by doubling, up to max_line. Chunking never changes the
 * result and work is linear in the bytes fed.
 *
 * The back-pressure contract is the one of llm_sse_feed (sse.h). */
#ifndef LLMRUN_NDJSON_H
#define LLMRUN_NDJSON_H

#include <stddef.h>

#include "buf.h"

#define LLM_NDJSON_DEFAULT_MAX ((size_t)8 << 20)

/* Same values as the LLM_SSE_* codes. Errors are negative and sticky until
 * llm_ndjson_reset(). */
enum {
  LLM_NDJSON_OK = 0,
  LLM_NDJSON_PAUSED = 1,       /* feed: on_line asked to stop */
  LLM_NDJSON_UNTERMINATED = 2, /* finish: the last line had no LF */
  LLM_NDJSON_ETOOBIG = -1,     /* a line exceeded max_line */
  LLM_NDJSON_ENOMEM = -2
};

/* line is not NUL-terminated and is valid only during the call; it holds
 * no LF and no trailing CR. Return non-zero to stop (see llm_ndjson_feed).
 * The callback must not call llm_ndjson_feed/finish/reset/free itself. */
typedef int (*llm_ndjson_line_fn)(void *ud, const char *line, size_t len);

/* Embeddable; fields below ud are private. */
typedef struct llm_ndjson {
  llm_ndjson_line_fn on_line;
  void *ud;
  size_t max_line;
  /* private */
  llm_buf line; /* a line split across chunks */
  size_t work;
  int err;
} llm_ndjson;

/* max_line 0 means LLM_NDJSON_DEFAULT_MAX. */
void llm_ndjson_init(llm_ndjson *p, llm_ndjson_line_fn on_line, void *ud, size_t max_line);

/* Returns LLM_NDJSON_OK (all consumed), LLM_NDJSON_PAUSED (on_line
 * returned non-zero: *consumed bytes, ending with that line's LF, were
 * consumed; feed buf + *consumed later) or an error. consumed may be NULL.
 * A partial line kept inside counts as consumed. */
int llm_ndjson_feed(llm_ndjson *p, const char *buf, size_t len, size_t *consumed);

/* End of the body: hands over a last line that had no LF (JSON Lines allows
 * it; a cut-off object will fail to decode) and returns
 * LLM_NDJSON_UNTERMINATED, or LLM_NDJSON_OK when nothing was left, or the
 * sticky error. Afterwards the splitter is ready for a new body. */
int llm_ndjson_finish(llm_ndjson *p);

void llm_ndjson_reset(llm_ndjson *p);
/* Frees the buffer; p belongs to the caller. Safe twice. */
void llm_ndjson_free(llm_ndjson *p);
/* Bytes scanned and copied so far (for linear-time tests). */
size_t llm_ndjson_work(const llm_ndjson *p);
const char *llm_ndjson_strerror(int rc);

#endif
