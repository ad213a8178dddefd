/* Shared by the bindings that hand out collectors (_llm.metrics and
 * _llm.calllog): a collector userdata owns its llm_callstats. */
#ifndef LLMRUN_LMOD_METRICS_H
#define LLMRUN_LMOD_METRICS_H

#include <lua.h>

#include "metrics.h"

#define LLM_COLLECTOR_MT "llm.collector"

/* Pushes a collector userdata that takes ownership of cs. */
void llm_push_collector(lua_State *L, llm_callstats *cs);

#endif
