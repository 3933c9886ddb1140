#!/bin/sh
# The Spark Thrift Server on $THRIFT_PORT, running on the cluster, its catalog the PostgreSQL
# metastore. dbt reaches it with `method: thrift` (engine.thrift_host / engine.thrift_port).
set -eu
. "$(dirname "$0")/env.sh"
"$(dirname "$0")/init-metastore.sh"
start thrift "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.SparkSubmit \
  --class org.apache.spark.sql.hive.thriftserver.HiveThriftServer2 --name autoflux-thrift \
  --master "$MASTER_URL" \
  --conf spark.driver.extraClassPath="$JDBC_JAR" \
  --conf spark.sql.catalogImplementation=hive \
  --conf spark.sql.warehouse.dir="$WAREHOUSE" \
  --conf spark.sql.session.timeZone=UTC \
  --conf spark.sql.sources.default="${TABLE_FORMAT:-parquet}" \
  --conf spark.hadoop.javax.jdo.option.ConnectionURL="$METASTORE_URL" \
  --conf spark.hadoop.javax.jdo.option.ConnectionDriverName=org.postgresql.Driver \
  --conf spark.hadoop.javax.jdo.option.ConnectionUserName="$METASTORE_USER" \
  --conf spark.hadoop.javax.jdo.option.ConnectionPassword="$METASTORE_PASSWORD" \
  --conf spark.hadoop.datanucleus.schema.autoCreateAll=false \
  --conf spark.hadoop.hive.metastore.schema.verification=false \
  ${SPARK_SUBMIT_EXTRA:-} \
  spark-internal --hiveconf hive.server2.thrift.port="$THRIFT_PORT" --hiveconf hive.server2.thrift.bind.host="${THRIFT_BIND:-$SPARK_LOCAL_IP}"
