/* Server-Sent Events: an incremental parser for text/event-stream bodies.
 *
 * Feed it the bytes of a response body in whatever pieces curl delivers;
 * it calls on_event() once per dispatched event. It follows the WHATWG HTML
 * "parsing an event stream" and "interpreting an event stream" rules
 * (https://html.spec.whatwg.org/multipage/server-sent-events.html):
 *   - the body is UTF-8 decoded as the Encoding Standard does: one leading
 *     BOM is dropped, each invalid or truncated sequence becomes U+FFFD
 *     (one per "maximal subpart", as browsers do);
 *   - lines end in CRLF, LF or CR (a CRLF split across two feeds is one
 *     line break);
 *   - a blank line dispatches; ':' starts a comment; a field's value loses
 *     one leading space; `data` appends value + LF; `event` sets the type;
 *     `id` sets the last event ID unless the value holds a NUL; `retry`
 *     applies only when it is all ASCII digits; other fields are ignored;
 *   - an empty data buffer dispatches nothing; the final LF is stripped;
 *     the type defaults to "message";
 *   - at end of stream a partial event is discarded (llm_sse_finish says so).
 * Chunking never changes the result. Work is linear in the bytes fed; no
 * allocation happens per byte (buffers grow by doubling).
 *
 * Mechanism only: `data: [DONE]`, provider event types and JSON are the
 * caller's business (llm_sse_event_is_done() makes the first cheap).
 * No lua.h here; the Lua side reaches this through the HTTP layer. */
#ifndef LLMRUN_SSE_H
#define LLMRUN_SSE_H

#include <stddef.h>
#include <string.h>

#include "buf.h"

/* Default cap on one line and on one event's buffered fields. */
#define LLM_SSE_DEFAULT_MAX ((size_t)8 << 20)

/* Result codes of llm_sse_feed / llm_sse_finish. Errors are negative and
 * sticky: once returned, every later feed/finish returns the same code
 * until llm_sse_reset(). */
enum {
  LLM_SSE_OK = 0,
  LLM_SSE_PAUSED = 1,    /* feed: on_event asked to stop; see *consumed */
  LLM_SSE_TRUNCATED = 2, /* finish: the stream ended inside an event */
  LLM_SSE_ETOOBIG = -1,  /* a line or an event exceeded max_size */
  LLM_SSE_ENOMEM = -2
};

/* One dispatched event. Every pointer is NUL-terminated and valid only
 * during the callback; data may itself contain NUL bytes (use data_len). */
typedef struct llm_sse_event {
  const char *type; size_t type_len; /* "message" unless `event:` set one */
  const char *data; size_t data_len; /* data lines joined by LF */
  const char *id;   size_t id_len;   /* the last event ID ("" if none) */
  long long retry_ms;                /* last valid `retry:`, -1 if none */
} llm_sse_event;

/* Return 0 to go on, non-zero to stop: llm_sse_feed() then returns
 * LLM_SSE_PAUSED right after the line break that dispatched this event.
 * The callback must not call llm_sse_feed/finish/reset/free itself. */
typedef int (*llm_sse_event_fn)(void *ud, const llm_sse_event *ev);

/* Embeddable (no allocation until bytes arrive). Fields below the
 * callback are private. */
typedef struct llm_sse {
  llm_sse_event_fn on_event;
  void *ud;
  size_t max_size;
  /* private */
  llm_buf data, type, id, id_pending, id_next;
  long long retry, retry_acc;
  size_t line_len, work;
  int err;
  unsigned char bom, skip_lf, line_state, field, name_len, in_event;
  unsigned char id_nul, id_pending_set, retry_ok, retry_digits;
  unsigned char u8_need, u8_npend, u8_lo, u8_hi;
  unsigned char u8_pend[4];
  char name[6];
} llm_sse;

/* max_size 0 means LLM_SSE_DEFAULT_MAX. */
void llm_sse_init(llm_sse *p, llm_sse_event_fn on_event, void *ud, size_t max_size);

/* Parses len bytes. Returns
 *   LLM_SSE_OK      all len bytes consumed;
 *   LLM_SSE_PAUSED  on_event returned non-zero: the first *consumed bytes
 *                   were consumed (they end with the line break that
 *                   dispatched that event); feed the rest, buf + *consumed,
 *                   later, and only the rest: nothing is lost or repeated;
 *   < 0             an error (sticky); *consumed says where it stopped.
 * consumed may be NULL. Bytes the parser holds back internally (half a
 * UTF-8 sequence, a CR waiting for its LF, a partial line) count as
 * consumed: never feed them again.
 *
 * With curl: a write callback that returns CURL_WRITEFUNC_PAUSE gets the
 * same bytes again, from the start of that piece, once unpaused (libcurl,
 * curl_easy_pause(3)); so remember how many of them were parsed and skip
 * them then. The skip count may span several redelivered pieces:
 *
 *   size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
 *   {
 *     xfer *x = ud;
 *     size_t len = size * nmemb, skip = x->skip < len ? x->skip : len, used;
 *     int rc;
 *     x->skip -= skip;
 *     rc = llm_sse_feed(&x->sse, ptr + skip, len - skip, &used);
 *     if (rc == LLM_SSE_PAUSED) {
 *       x->skip = skip + used;
 *       return CURL_WRITEFUNC_PAUSE;
 *     }
 *     return rc < 0 ? 0 : len;  // 0 makes curl fail with CURLE_WRITE_ERROR
 *   }
 *
 * (Or copy ptr + skip + used .. len aside, return len, and feed the copy
 * before unpausing.) on_event runs inside that callback: queue the event
 * for the task rather than calling Lua there. */
int llm_sse_feed(llm_sse *p, const char *buf, size_t len, size_t *consumed);

/* End of the body. Discards a partial event and returns LLM_SSE_TRUNCATED
 * when the stream stopped after a field line with no blank line yet, or in
 * the middle of a line that was not a comment; else LLM_SSE_OK (or the
 * sticky error). Afterwards the parser is ready for a new body (as after a
 * reconnect: BOM stripping re-armed; last event ID and retry kept). */
int llm_sse_finish(llm_sse *p);

/* Back to the state after init (keeps callback, max_size and buffer space). */
void llm_sse_reset(llm_sse *p);
/* Frees the buffers; p itself belongs to the caller. Safe twice. */
void llm_sse_free(llm_sse *p);

/* The last event ID string as of the last blank line ("" if none). */
const char *llm_sse_last_event_id(const llm_sse *p, size_t *len);
/* The reconnection time the stream asked for, -1 if none. */
long long llm_sse_retry(const llm_sse *p);
/* Bytes scanned, validated and copied so far, reallocs included: a cost
 * counter for linear-time tests. */
size_t llm_sse_work(const llm_sse *p);
const char *llm_sse_strerror(int rc);

/* 1 when a Content-Type value has the essence text/event-stream (any case,
 * parameters ignored: the body is UTF-8 whatever charset says), else 0.
 * Follows the WHATWG MIME type parser closely enough for header values. */
int llm_sse_content_type_ok(const char *value);

/* OpenAI ends its streams with `data: [DONE]`; the SDK checks the prefix
 * (openai-python _streaming.py: data.startswith("[DONE]")). */
static inline int llm_sse_event_is_done(const llm_sse_event *ev)
{
  return ev->data_len >= 6 && memcmp(ev->data, "[DONE]", 6) == 0;
}

#endif
