/* A scripted HTTP server on 127.0.0.1 for tests, in the spirit of curl's
 * test server: each incoming request gets the next block of a script, and
 * the block says exactly which bytes go out, when, and how the connection
 * ends. It is how tests produce faults a real server would rarely show
 * on cue: a reset before the headers, a body cut short, a stream that
 * stalls, a slow header.
 *
 * Script: blocks separated by a line "---"; the last block repeats.
 * Lines of a block (escapes \r \n \t \\ \xHH in TEXT):
 *   status CODE [REASON]     start a response
 *   header NAME: VALUE       add a response header
 *   body TEXT                send the response with this body (Content-Length)
 *   chunked                  send the headers now, body as chunks follows
 *   chunk TEXT               send one chunk
 *   drip SIZES PAUSE TEXT    send TEXT as chunks of SIZES bytes (a comma list,
 *                            cycled: "1" is byte by byte, "7,1,13" awkward
 *                            cuts), each in its own write, PAUSE seconds apart
 *   end                      send the last chunk
 *   raw TEXT                 send bytes as they are
 *   sleep SECONDS            wait
 *   close                    close the connection (FIN)
 *   reset                    abort the connection (RST)
 *   stall                    send nothing more; hold the connection open
 *   repeat COUNT SECONDS TEXT  send TEXT as a chunk COUNT times, SECONDS apart
 * In TEXT, {{Name}} is replaced by the value of the request's header Name
 * (a server that echoes what it was sent).
 * A block that neither closes, resets nor stalls keeps the connection
 * alive for the next request.
 *
 * Every request is recorded (method, path, headers, body) for checks. */
#ifndef LLMRUN_MOCK_HTTP_H
#define LLMRUN_MOCK_HTTP_H

#include <stddef.h>

typedef struct mock_http mock_http;

/* Starts serving script on an ephemeral port; NULL on failure. */
mock_http *mock_http_start(const char *script);
/* The same, also appending each request to log_path ("=== N\n" + text)
 * before it is answered, so a client that got its answer finds its
 * request in the log. */
mock_http *mock_http_start_logged(const char *script, const char *log_path);
int mock_http_port(const mock_http *m);
/* Number of connections accepted so far. */
int mock_http_connections(mock_http *m);
/* Number of requests received so far. */
int mock_http_requests(mock_http *m);
/* Copy of the raw text of request i (0-based; head and body), or NULL.
 * The caller frees it. */
char *mock_http_request_text(mock_http *m, int i);
/* Stops the server, closes held connections and frees everything. */
void mock_http_stop(mock_http *m);

#endif
