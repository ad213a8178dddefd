#!/usr/bin/env bash
# Starts a private redis-server for a test: on a free loopback port, in
# DIR (its log and nothing else: no dump, no append-only file), stopped by
# `timeout` after SECONDS even if the test that started it dies first.
#   tests/tools/redis_server.sh DIR SECONDS [PORT [redis-server options...]]
# Prints "PORT PID" once the server answers PING; PID is the `timeout`
# process (kill it and the server goes with it). PORT 0 or "" picks one.
# Exit 77 when redis-server is not installed (scripts/setup installs it).
set -u
dir=$1
secs=${2:-60}
want=${3:-0}
shift 3 2>/dev/null || shift $#
if ! command -v redis-server >/dev/null 2>&1; then
  echo "redis-server is not installed (scripts/setup installs it)" >&2
  exit 77
fi
mkdir -p "$dir"
for _ in $(seq 1 20); do
  port=$want
  [[ $port == 0 || -z $port ]] && port=$((20000 + RANDOM % 40000))
  timeout --signal=TERM --kill-after=2 "$secs" redis-server --port "$port" --bind 127.0.0.1 -::1 \
    --save '' --appendonly no --dir "$dir" --logfile "$dir/redis-$port.log" \
    --daemonize no "$@" </dev/null >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do
    if ! kill -0 "$pid" 2>/dev/null; then break; fi  # the port was taken: next one
    if [[ $(redis-cli -p "$port" ${REDIS_TEST_PASSWORD:+-a "$REDIS_TEST_PASSWORD" --no-auth-warning} ping 2>/dev/null) == PONG ]]; then
      echo "$port $pid"
      exit 0
    fi
    sleep 0.05
  done
  kill "$pid" 2>/dev/null
  [[ $want != 0 && -n $want ]] && sleep 0.2  # a fixed port: wait for it to free up
done
echo "could not start redis-server (see $dir/redis-*.log)" >&2
exit 1
