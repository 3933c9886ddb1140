"""Spark reads every CSV file the embedded engine reads into the same raw table: names, types, values.

One test per file, parametrised over classic local Spark (``format: parquet``) and Spark Connect
on Sail (``format: delta``); each compares Spark's raw table with the embedded engine's for the
same file, typed by AutoFlux's reader (a file smaller than a block) or by Spark's own checks (as a
bigger file is). The files are the ones Spark used to refuse or change: quoted values over several lines
(``\\r\\n`` inside quotes kept), blank and repeated header names, leading zeros, a number beyond
a double, infinities, null spellings, white space around numbers, a header without rows, and a value after the first
block that widens its column.
"""

from __future__ import annotations

import math
from pathlib import Path

import pyarrow as pa
import pytest
from spark_helpers import local_or_sail_engine, make_workspace

from autoflux.engines import create_engine
from autoflux.engines.spark import ingest as spark_ingest
from autoflux.ingest.schema import LINEAGE_COLUMNS, lake_type
from autoflux.pipeline import Pipeline
from autoflux.workspace import Workspace

BLOCK_SIZE = 1 << 16
LATE = 20_000  # rows: with 64 KiB blocks the first block ends long before the last row

FILES = {
    "crlf_in_quotes": 'id,text,n\r\n1,"two\r\nlines",1\r\n2,"unix\nbreak",2\r\n3,plain,\r\n4,"a ""q""",4\r\n',
    "lf_with_crlf_inside": 'id,text\n1,"two\r\nlines"\n2,"tab\there"\n3,"  padded  "\n',
    "crlf_last_number": 'id,text,n\r\n1,"two\r\nlines",10\r\n2,plain,20\r\n3,"x",-30\r\n',
    "padded_numbers": "id,n,x\n1, 5,1.5 \n2,6 ,\t2.5\n3,7,3.5\n",
    "blank_and_repeated_names": "Q1,Q1,,Name\n1,2,x,Ann\n3,4,y,Bob\n",
    "leading_zeros": (
        "id,zip,phone,code,amount,big,huge\n1,08123,+44,007,1.5,1.5,1.5\n2,10115,33,12,2,12345678901234567890,1E400\n3,75001,1,3,-0.25,2,2\n"
    ),
    "infinities": "id,x,y\n1,1.5,inf\n2,-inf,Infinity\n3,2.5,-INFINITY\n4,INF,1\n",
    "null_spellings": "id,text,number,flag\n1,NA,NA,true\n2,,N/A,false\n3,null,NULL,\n4,None,nan,TRUE\n5,kept,5,False\n",
    "header_only": "Id,Full Name,Q1,Q1\n",
    "types": (
        "id,i,f,d,ts,b,s\n1,-3,0.5,2024-01-31,2024-01-31 10:00:00,true,x\n2,40,1e3,2023-12-01,2024-02-01T11:30:00,false,y\n3,,,,,,\n"
    ),
    "late_values": "id,zip,n,d,far\n"
    + "".join(f"{i},{10_000 + i},{i},2024-01-01,{i / 4}\n" for i in range(LATE))
    + f"{LATE},00042,1.5,2024-01-01 10:00:00,1E400\n",
}


def ingest(root: Path, path: Path):
    report = Pipeline(Workspace.open(root)).ingest([str(path)], force=True)  # again: once typed here, once by Spark
    [result] = report.files
    assert result.outcome == "loaded", result.message
    return result


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("parity")
    for name, text in FILES.items():
        (folder / name).mkdir()
        (folder / name / f"{name}.csv").write_bytes(text.encode())
    return folder


@pytest.fixture(scope="module")
def embedded(data, tmp_path_factory) -> dict[str, pa.Table]:
    root = make_workspace(tmp_path_factory.mktemp("duck") / "ws", {"type": "duckdb"}, ingest={"csv": {"block_size": BLOCK_SIZE}})
    for name in FILES:
        ingest(root, data / name / f"{name}.csv")
    lake = Workspace.open(root).lake
    return {name: lake.open("raw", name).to_pyarrow_table() for name in FILES}


@pytest.fixture(scope="module", params=["local", "sail"])
def spark_root(request, tmp_path_factory, java) -> Path:
    engine = local_or_sail_engine(request.param, request)
    return make_workspace(tmp_path_factory.mktemp(request.param) / "ws", engine, ingest={"csv": {"block_size": BLOCK_SIZE}})


@pytest.fixture(params=["typed_here", "typed_by_spark"])
def typed_by(request, monkeypatch) -> str:
    """Who types a file: AutoFlux's reader on the driver (a small file, or any with a local master), or Spark's checks
    (a big file on a cluster)."""
    if request.param == "typed_by_spark":
        monkeypatch.setattr(spark_ingest, "TYPED_HERE_BYTES", 0)
        monkeypatch.setattr(spark_ingest, "LOCAL_TYPED_HERE_BYTES", 0)
    return request.param


def data_columns(table: pa.Table) -> pa.Table:
    table = table.select([n for n in table.column_names if n not in LINEAGE_COLUMNS])
    schema = pa.schema([pa.field(f.name, lake_type(f.type)) for f in table.schema])
    table = table.cast(schema)
    return table.sort_by(table.column_names[0]) if table.num_rows else table


@pytest.mark.parametrize("name", list(FILES))
def test_spark_loads_the_same_raw_table_as_the_embedded_engine(spark_root, typed_by, data, embedded, name):
    ingest(spark_root, data / name / f"{name}.csv")
    spark = create_engine(Workspace.open(spark_root))
    got = data_columns(spark.frame("raw", name).toArrow())
    expected = data_columns(embedded[name])
    assert [(f.name, f.type) for f in got.schema] == [(f.name, f.type) for f in expected.schema]
    assert got.num_rows == expected.num_rows
    for column in expected.column_names:
        assert got[column].to_pylist() == expected[column].to_pylist(), column


@pytest.mark.parametrize(
    ("name", "native"),
    [
        ("leading_zeros", {0, 4}),
        ("padded_numbers", {0}),
        ("late_values", {0, 2}),
        ("types", {0, 1, 2}),
        ("null_spellings", {0}),
        ("crlf_last_number", None),
    ],
)
def test_numbers_written_plainly_in_every_value_are_typed_by_spark_s_own_parser(spark_root, data, monkeypatch, name, native):
    """A file typed here: its number columns with no null but empty fields, no white space around a value and no
    infinity go to Spark's parser as numbers; the others as text, which AutoFlux reads (the test above: the same values
    either way).
    The last column of a file whose ``\\r`` Spark leaves on each row (classic Spark, quoted line breaks) stays text."""
    seen = []
    texts = spark_ingest._texts

    def spy(positional, dialect, options, null_values, native=()):
        seen.append(set(native))
        return texts(positional, dialect, options, null_values, native)

    monkeypatch.setattr(spark_ingest, "_texts", spy)
    ingest(spark_root, data / name / f"{name}.csv")
    remote = "sail" in spark_root.parent.name
    assert seen == [native if native is not None else ({0, 2} if remote else {0})]


def test_the_expected_tables(embedded):
    """What the embedded engine makes of the files (so the comparison above compares what matters)."""
    assert embedded["crlf_in_quotes"].sort_by("id")["text"].to_pylist() == ["two\r\nlines", "unix\nbreak", "plain", 'a "q"']
    assert embedded["blank_and_repeated_names"].column_names[:4] == ["q1", "q1_2", "column_3", "name"]
    zeros = embedded["leading_zeros"].schema
    assert [str(zeros.field(c).type) for c in ("zip", "phone", "code", "amount", "big", "huge")] == ["string"] * 3 + ["double"] + [
        "string"
    ] * 2
    infinities = embedded["infinities"].sort_by("id")
    assert infinities["x"].to_pylist() == [1.5, -math.inf, 2.5, math.inf]
    assert infinities["y"].to_pylist() == [math.inf, math.inf, -math.inf, 1.0]
    assert embedded["null_spellings"].sort_by("id")["text"].to_pylist() == [None, None, None, None, "kept"]
    assert embedded["header_only"].num_rows == 0
    late = embedded["late_values"].schema
    assert [str(late.field(c).type) for c in ("zip", "n", "d", "far")] == ["string", "double", "timestamp[us, tz=UTC]", "string"]


def test_a_ragged_row_beside_a_quoted_line_break_is_quarantined_with_its_line(spark_root, tmp_path, embedded, request):
    """On classic Spark as on the embedded engine; Sail has no PERMISSIVE mode, so there the ragged row
    fails the file, whatever ingest.bad_rows allows (the README's documented difference)."""
    sail = "sail" in request.node.callspec.id
    text = 'id,text\r\n1,"two\r\nlines"\r\n2,one,too many\r\n3,"x"\r\n'
    path = tmp_path / "ragged" / "ragged.csv"
    path.parent.mkdir()
    path.write_bytes(text.encode())
    config = Workspace.open(spark_root).config_path
    import yaml

    settings = yaml.safe_load(config.read_text())
    settings["ingest"]["bad_rows"] = {"max_count": 1}
    config.write_text(yaml.safe_dump(settings, sort_keys=False))
    try:
        if sail:
            [result] = Pipeline(Workspace.open(spark_root)).ingest([str(path)]).files
        else:
            result = ingest(spark_root, path)
    finally:
        settings["ingest"].pop("bad_rows")
        config.write_text(yaml.safe_dump(settings, sort_keys=False))
    if sail:
        assert result.outcome == "failed" and result.message, result
        return
    assert result.rows == 2 and result.quarantined == 1
    table = create_engine(Workspace.open(spark_root)).frame("raw", "ragged").toArrow().sort_by("id")
    assert table["text"].to_pylist() == ["two\r\nlines", "x"]
