/* Turns the body bytes of a streaming response into a queue of events:
 * raw chunks, SSE events or NDJSON lines. The HTTP sink feeds it from
 * curl's write callback; the task that reads the stream pops from it.
 * Each event keeps the time its last byte arrived, so time-to-first-token
 * does not depend on when the reading task got to run. */
#ifndef LLMRUN_STREAM_FRAMING_H
#define LLMRUN_STREAM_FRAMING_H

#include <stddef.h>

typedef struct llm_event {
  struct llm_event *next;
  double t;          /* llm_now() when it was complete */
  char *type;        /* SSE event type, or NULL */
  char *id;          /* SSE id, or NULL */
  char *data;        /* NUL-terminated; len excludes the NUL */
  size_t len;
} llm_event;

enum llm_framing_mode { LLM_FRAMING_RAW, LLM_FRAMING_SSE, LLM_FRAMING_NDJSON };

typedef struct llm_framing {
  int mode;
  llm_event *head, *tail;
  size_t count, queued;   /* events and their data bytes waiting */
  const char *error;      /* a parse or memory failure, or NULL */
  int truncated;          /* the body ended inside an event */
  void *parser;           /* the SSE or NDJSON parser */
} llm_framing;

/* mode: "raw" | "sse" | "ndjson"; 0, or -1 for an unknown mode. */
int llm_framing_init(llm_framing *f, const char *mode);
void llm_framing_feed(llm_framing *f, const char *data, size_t len, double now);
/* At the end of the body: flags an event left incomplete. */
void llm_framing_finish(llm_framing *f);
/* Switch to raw chunks (to read an error body as it is). */
void llm_framing_set_raw(llm_framing *f);
void llm_framing_free(llm_framing *f);

int llm_framing_pending(const llm_framing *f);
size_t llm_framing_queued_bytes(const llm_framing *f);
const char *llm_framing_error(const llm_framing *f);
int llm_framing_truncated(const llm_framing *f);
/* The oldest event, now owned by the caller, or NULL. */
llm_event *llm_framing_pop(llm_framing *f);
void llm_event_free(llm_event *ev);

#endif
