#!/usr/bin/env bash
# C modules load with require from package.cpath, though llmrun links Lua
# statically: the executable exports the Lua API (CMakeLists.txt, -Wl,-E).
# The module (tests/tools/lua_cmodule.c) links no liblua, as Lua modules
# built for a system Lua do not.
. "$(dirname "$0")/lib.sh"
: "${LUA_CMODULE_DIR:?LUA_CMODULE_DIR must name the folder of llmrun_probe.so}"

run -e "package.cpath = os.getenv('LUA_CMODULE_DIR') .. '/?.so;' .. package.cpath
local m = require 'llmrun_probe'
print(m.add(2, 40), m.version)"
expect_status 0
expect_out "42	Lua 5.4"

# and a missing one fails the usual way, naming the paths it tried
run -e "package.cpath = os.getenv('LUA_CMODULE_DIR') .. '/?.so'; require 'llmrun_no_such_module'"
expect_status 1
expect_err_has "module 'llmrun_no_such_module' not found"

finish
