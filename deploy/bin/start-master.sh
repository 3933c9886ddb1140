#!/bin/sh
# The standalone Spark master, from the pyspark installation: $MASTER_URL, web UI on $MASTER_UI_PORT.
set -eu
. "$(dirname "$0")/env.sh"
start master "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.master.Master \
  --host "$MASTER_HOST" --port "$MASTER_PORT" --webui-port "$MASTER_UI_PORT"
