/* The replayer: a loopback HTTP/1.1 server that answers from a cassette
 * (lualib/llm/cassette.lua documents the file), so a replayed call takes
 * the same path as a live one: curl, the SSE parser, retries, metrics.
 * llm.replay sends each attempt here instead of to the provider.
 *
 * It does not match requests: the client (llm.replay) already knows
 * which recorded exchange answers an attempt and says so in a header:
 *
 *   x-llmrun-replay: ID T0 SPEED
 *     ID     the exchange (exchanges.id in the cassette)
 *     T0     the client's CLOCK_MONOTONIC time, in seconds, that the
 *            recorded times count from: when the attempt started in the
 *            recording's terms (llm.replay: the call's start plus the
 *            attempt's recorded offset into the call; 0: when the
 *            request arrived here)
 *     SPEED  0: everything at once; else the recorded pace divided by
 *            SPEED (1: as recorded, 2: twice as fast)
 *
 * The answer is the recorded status and headers (plus x-llmrun-replayed:
 * ID), then the body in its recorded pieces, each sent at
 * T0 + (its arrival time in the recording) / SPEED. Scheduling against
 * the client's own start time (the clock is the machine's, shared by
 * both) takes the request's trip to the server out of the replayed
 * timings. The body goes out chunked, the terminating chunk together
 * with the last piece, so the client sees the end when the recording
 * did. An exchange whose transfer failed after its headers (a cut
 * stream) is replayed as a connection closed after its last piece.
 * No header: 400; an unknown ID: 404 (JSON bodies in OpenAI's error
 * shape, type "llmrun_replay").
 *
 * One thread of its own (epoll, a timerfd armed at the earliest due
 * piece with no timer slack, a min-heap of waiting connections; pieces
 * due are sent between the events of a batch, and after an instant
 * answer it polls for 200 us before it sleeps, so the client's next
 * request does not have to wake it) and its own read-only sqlite
 * connection; every function below may be called from any thread. No
 * lua.h here. */
#ifndef LLMRUN_REPLAY_SERVER_H
#define LLMRUN_REPLAY_SERVER_H

#include <stddef.h>
#include <stdint.h>

typedef struct replay_server replay_server;

typedef struct replay_stats {
  uint64_t requests;      /* request heads read */
  uint64_t served;        /* answered from the cassette */
  uint64_t errors;        /* 400, 404 or 500 from the replayer itself */
  uint64_t cut;           /* replayed as a cut connection */
  uint64_t connections;   /* accepted in all */
  uint64_t pieces;        /* timed writes made */
  uint64_t late_us_max;   /* how late a timed write was, at worst */
  uint64_t late_us_sum;   /* ... in all (divide by pieces for the mean) */
  uint64_t late_1ms;      /* timed writes more than 1 ms late */
} replay_stats;

/* Opens the cassette read-only and serves it on 127.0.0.1:port (0: any
 * free port). NULL with a message in err when it cannot. */
replay_server *replay_server_start(const char *cassette_path, int port, char *err, size_t errlen);
/* "http://127.0.0.1:PORT" */
const char *replay_server_url(const replay_server *s);
void replay_server_stats(replay_server *s, replay_stats *out);
/* Stops the thread, closes every connection and the cassette, frees s. */
void replay_server_stop(replay_server *s);

#endif
