#!/bin/sh
# Create the whole Hive metastore schema in PostgreSQL before anything uses it (lazy creation by
# DataNucleus deadlocks on the first saveAsTable). Idempotent: does nothing when it exists.
set -eu
. "$(dirname "$0")/env.sh"
exec "$PYTHON" -m autoflux.engines.spark.init_metastore --url "$METASTORE_URL" --user "$METASTORE_USER" \
  --password-env METASTORE_PASSWORD --driver-jar "$JDBC_JAR"
