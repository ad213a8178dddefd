/* Not built by default: tests/CMakeLists.txt compiles it with the engines'
 * flags (llmrun_engine's include path, as any file in src/ gets) and expects
 * the compiler to say lua.h cannot be found. It proves the layering of
 * src/CMakeLists.txt holds: only the Lua side (llmrun_lua) can use Lua, so
 * an engine that starts to include lua.h fails to build. */
#include <lua.h>

int llmrun_layer_probe(void) { return LUA_OK; }
