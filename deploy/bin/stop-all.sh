#!/bin/sh
# Stop what the start-*.sh scripts started (by their pid files in $RUN_DIR).
set -u
. "$(dirname "$0")/env.sh"
for pidfile in "$RUN_DIR"/*.pid; do
  [ -f "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  kill "$pid" 2>/dev/null && echo "stopped $(basename "$pidfile" .pid) (pid $pid)"
  rm -f "$pidfile"
done
