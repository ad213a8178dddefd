/* Labelled tasks registered with the simulator (llm.sim.task, `llmrun
 * serve --sim --task FILE`): cases with their right answers, so that a
 * prompt containing a registered case is answered by the task skill
 * (sim_task_skill.c) and graded by the judge skill (sim_judge.c) instead
 * of getting filler text.
 *
 * The registry is shared by the server thread (which reads it for every
 * chat request) and the thread that registers tasks (the Lua thread), so
 * it has its own read-write lock: sim_tasks_add/clear take it for
 * writing, and a skill holds it for reading (sim_tasks_rdlock) while it
 * looks a prompt up and builds its answer from the registered strings.
 *
 * Matching is on normalised text (ASCII lower case, every run of white
 * space one space, trimmed: sim_tasks_normalize), so a prompt that
 * re-spaces or re-cases a case still contains it. Every case is indexed
 * by anchors: its first ANCHOR bytes and its last ANCHOR bytes (a case
 * shorter than that: the whole text). A scan of a prompt hashes every
 * window of an anchor's length (a polynomial rolling hash) and looks the
 * windows up, then extends each hit: forward from a first anchor, backward
 * from a last one. So a case cut at its end (truncated tail) or at its
 * start (truncated head) is found with the share of its text present.
 * No lua.h here. */
#ifndef LLMRUN_SIM_TASKS_H
#define LLMRUN_SIM_TASKS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "sim_internal.h"

#define SIM_TASK_ANCHOR 32

/* ---- registering ------------------------------------------------------------------ */

typedef struct sim_task_spec {
  const char *name;                   /* a task of the same name is replaced */
  double difficulty;                  /* <= 0: 1 */
  const char *const *options;         /* classification labels; NULL/0: none */
  size_t noptions;
  const char *const *instructions;    /* keywords the prompt's instructions hold */
  size_t ninstructions;
} sim_task_spec;

typedef struct sim_task_case {
  const char *input;                  /* the case's text as it appears in a prompt */
  size_t input_len;
  const char *answer;                 /* its right answer */
  size_t answer_len;
  double difficulty;                  /* <= 0: the task's */
  const char *group;                  /* cases of one group (paraphrases of one
                                         question) share their luck; NULL: its own */
  size_t group_len;
} sim_task_case;

typedef struct sim_tasks sim_tasks;

sim_tasks *sim_tasks_new(void);
void sim_tasks_free(sim_tasks *t);
/* Adds (or replaces, by name) a task; copies everything. 0, or -1 with a
 * message: an empty input or answer, an answer that is not one of the
 * options, out of memory. */
int sim_tasks_add(sim_tasks *t, const sim_task_spec *spec, const sim_task_case *cases,
                  size_t ncases, char *err, size_t errlen);
/* Removes the task of that name (NULL: every task). How many were removed. */
size_t sim_tasks_remove(sim_tasks *t, const char *name);
/* Cases registered, over all tasks. */
size_t sim_tasks_cases(sim_tasks *t);

/* ---- reading (under sim_tasks_rdlock) ----------------------------------------------- */

typedef struct sim_task_item {
  char *text;                /* the input, normalised */
  size_t len;
  char *input;               /* the input as registered */
  size_t input_len;
  char *answer;              /* the right answer as registered */
  size_t answer_len;
  char *answer_norm;
  size_t answer_norm_len;
  double difficulty;
  uint64_t ident;            /* hash of its group, else of text: the case's luck, which does
                                not depend on the rest of the prompt */
  int option;                /* index of the answer among the options, or -1 */
} sim_task_item;

typedef struct sim_task {
  char *name;
  double difficulty;
  char **options, **options_norm;
  size_t noptions;
  char **instructions;       /* normalised */
  size_t ninstructions;
  sim_task_item *items;
  size_t nitems;
} sim_task;

void sim_tasks_rdlock(sim_tasks *t);
void sim_tasks_unlock(sim_tasks *t);

/* Where a case was seen in a normalised prompt: bytes [at, at + covered)
 * of the prompt equal the case's text from `from` on (from is 0 for a
 * first-anchor hit, len - covered for a last-anchor hit). */
typedef struct sim_task_seen {
  const sim_task *task;
  const sim_task_item *item;
  size_t at, covered, from;
} sim_task_seen;

/* Every sighting of a registered case in s[0..n) (normalised), in order
 * of position. *out is malloc'd (free it); a whole case appears once. 0,
 * or -1 when out of memory. Call under the read lock. */
int sim_tasks_scan(sim_tasks *t, const char *s, size_t n, sim_task_seen **out, size_t *nout);

/* ---- text helpers ------------------------------------------------------------------- */

/* Appends s[0..n) normalised: ASCII letters lower case, every run of
 * white space one space, none at the start (when b is empty or ends in a
 * space or '\x01') or carried past the end (trim the last with
 * sim_tasks_trim). */
void sim_tasks_normalize(llm_buf *b, const char *s, size_t n);
void sim_tasks_trim(llm_buf *b);
/* Whether w[0..wn) occurs in s[from..to) as whole words (no letter or digit
 * on either side); the offset of the first such place, or (size_t)-1. */
size_t sim_tasks_find_words(const char *s, size_t from, size_t to, const char *w, size_t wn);

#endif
