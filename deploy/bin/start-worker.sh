#!/bin/sh
# One Spark worker joining $MASTER_URL with $WORKER_CORES cores and $WORKER_MEMORY memory.
# Workers read and write the lake and the warehouse: give them the same paths (or an object store).
set -eu
. "$(dirname "$0")/env.sh"
start "worker${WORKER_ID:-}" "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.worker.Worker \
  --cores "$WORKER_CORES" --memory "$WORKER_MEMORY" --webui-port "${WORKER_UI_PORT:-8081}" "$MASTER_URL"
