"""A Kaggle-style competition whose names are hostile: SQL in file and column names, reserved words,
quotes, semicolons, spaces and non-ASCII. Every engine must load it as data, never as SQL.

The keywords come from the engines themselves: DuckDB's ``duckdb_keywords()`` (every category but
``unreserved``), PostgreSQL's ``pg_get_keywords()`` (every ``catcode`` but ``U``) and Spark's
``sql_keywords()`` (the reserved ones).
"""

from __future__ import annotations

import os
from pathlib import Path

HOSTILE_COLUMNS = {
    "id": "id",
    "select": "select",
    "from": "from",
    "order": "order",
    "qualify": "qualify",
    '"quoted"': "quoted",
    "semi;colon": "semi_colon",
    "with space": "with_space",
    "Größe €": "grosse",
    "Robert'); DROP TABLE students;--": "robert_drop_table_students",
    "target": "target",
}
SQL_VALUE = "'); DROP TABLE raw.train; --"
HOSTILE_FILE = "x'; drop table raw.train; --.csv"


def csv_line(values) -> str:
    return ",".join('"' + str(v).replace('"', '""') + '"' for v in values) + "\n"


def duckdb_keywords() -> set[str]:
    import duckdb

    return {row[0] for row in duckdb.sql("select keyword_name from duckdb_keywords() where keyword_category <> 'unreserved'").fetchall()}


def postgres_keywords(server) -> set[str]:
    """``server``: the ``postgres`` fixture (:class:`scratch_postgres.Postgres`)."""
    return {row[0] for row in server.query("postgres", "select word from pg_get_keywords() where catcode <> 'U'")}


def spark_keywords(shared: Path) -> set[str]:
    """Spark's reserved keywords, from a local Spark in a child process (whatever session this process holds).

    A JVM's start costs seconds: the first test process to ask keeps the answer in the folder
    ``shared`` (one every pytest-xdist process of the run sees; later runs may find it there too),
    for the version of pyspark installed; the others wait for it there.
    """
    import fcntl
    import json
    from importlib.metadata import version

    kept = shared / f"spark-{version('pyspark')}-reserved-keywords.json"
    with (shared / f"{kept.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if kept.exists():
            return set(json.loads(kept.read_text(encoding="utf-8")))
        keywords = _ask_spark_for_keywords()
        kept.write_text(json.dumps(sorted(keywords)), encoding="utf-8")
        return keywords


def _ask_spark_for_keywords() -> set[str]:
    import json
    import subprocess
    import sys
    import tempfile

    code = (
        "import json; from pyspark.sql import SparkSession;"
        "s = SparkSession.builder.master('local[1]').config('spark.ui.enabled', 'false').config('spark.sql.ansi.enabled', 'true').config('spark.sql.ansi.enforceReservedKeywords', 'true').getOrCreate();"
        "print(json.dumps([r[0] for r in s.sql('select keyword from sql_keywords() where reserved').collect()])); s.stop()"
    )
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("SPARK_REMOTE", "SPARK_CONNECT"))}
    with tempfile.TemporaryDirectory() as scratch:  # Spark leaves derby.log and spark-warehouse/ where it runs
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=environment, cwd=scratch, check=True
        )
    return {word.lower() for word in json.loads(done.stdout.strip().splitlines()[-1])}


def write_hostile_competition(folder: Path, keywords: list[str] = (), *, keyword_table: bool = True) -> Path:
    """train.csv (6 rows), test.csv (3 rows, no target), a file named with SQL, a table named
    ``order``, and (``keyword_table``) keywords.csv, whose columns are the keywords alone; every name
    in ``keywords`` is also a feature column of train and test, between the hostile columns and the target."""
    folder.mkdir(parents=True, exist_ok=True)
    extra = [k for k in keywords if k not in HOSTILE_COLUMNS.values()]
    names = [*list(HOSTILE_COLUMNS)[:-1], *extra, "target"]
    train = [[i, i, SQL_VALUE, i, i, 'say "hi"', "a;b", "x y", "ä", i, *(i * n for n, _ in enumerate(extra)), i % 2] for i in range(6)]
    test = [[i, i, SQL_VALUE, i, i, "q", "c", "d", "é", i, *(i + n for n, _ in enumerate(extra))] for i in range(6, 9)]
    (folder / "train.csv").write_text(csv_line(names) + "".join(map(csv_line, train)), encoding="utf-8")
    (folder / "test.csv").write_text(csv_line(names[:-1]) + "".join(map(csv_line, test)), encoding="utf-8")
    if keywords:
        if keyword_table:
            (folder / "keywords.csv").write_text(",".join(keywords) + "\n" + ",".join("1" for _ in keywords) + "\n")
        (folder / "order.csv").write_text("select,from\n1,2\n")
    (folder / HOSTILE_FILE).write_text("a\n1\n")
    return folder
