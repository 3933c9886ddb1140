# Settings shared by the deploy scripts; override any of them in the environment.
# Sourced, not run: `. deploy/bin/env.sh`.
PYTHON=${PYTHON:-python3}
SPARK_HOME=${SPARK_HOME:-$("$PYTHON" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')}
export SPARK_HOME SPARK_NO_DAEMONIZE=1
export SPARK_LOCAL_IP=${SPARK_LOCAL_IP:-127.0.0.1}
MASTER_HOST=${MASTER_HOST:-$SPARK_LOCAL_IP}
MASTER_PORT=${MASTER_PORT:-7077}
MASTER_UI_PORT=${MASTER_UI_PORT:-8080}
MASTER_URL=${MASTER_URL:-spark://$MASTER_HOST:$MASTER_PORT}
WORKER_CORES=${WORKER_CORES:-2}
WORKER_MEMORY=${WORKER_MEMORY:-2g}
THRIFT_PORT=${THRIFT_PORT:-10000}
METASTORE_URL=${METASTORE_URL:-jdbc:postgresql://127.0.0.1:5432/metastore}
METASTORE_USER=${METASTORE_USER:-postgres}
METASTORE_PASSWORD=${METASTORE_PASSWORD:-}
export METASTORE_PASSWORD
JDBC_JAR=${JDBC_JAR:-/usr/share/java/postgresql.jar}
WAREHOUSE=${WAREHOUSE:-$PWD/warehouse}
RUN_DIR=${RUN_DIR:-$PWD/.deploy-run}
mkdir -p "$RUN_DIR"

# Start "$@" in the background, its output in $RUN_DIR/NAME.log and its pid in $RUN_DIR/NAME.pid.
start() {
  name=$1; shift
  if [ -f "$RUN_DIR/$name.pid" ] && kill -0 "$(cat "$RUN_DIR/$name.pid")" 2>/dev/null; then
    echo "$name is already running (pid $(cat "$RUN_DIR/$name.pid"))"; return 0
  fi
  if [ -n "${FOREGROUND:-}" ]; then exec "$@"; fi
  nohup "$@" >"$RUN_DIR/$name.log" 2>&1 &
  echo $! >"$RUN_DIR/$name.pid"
  echo "$name started (pid $!, log $RUN_DIR/$name.log)"
}
