"""CSV edge cases of RFC 4180 and common practice: small files written here byte for byte, each raw
table asserted value by value against values written out by hand.

Each case is also read by the corpus's independent reader (:mod:`reference`), which must agree with
the hand-written values: that is what makes its verdict on the real files worth trusting.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from reference import arrow_kind, expected_csv, same_value

from autoflux.ingest.schema import LINEAGE_COLUMNS

UTC = dt.UTC
I64_MAX = 2**63 - 1

# name → (file bytes, {column: (kind, values)}) ; column names are the clean ones, in order.
CASES: dict[str, tuple[bytes, dict[str, tuple[str, list]]]] = {
    "delimiter_semicolon.csv": (b"a;b\n1;x,y\n2;z\n", {"a": ("int", [1, 2]), "b": ("string", ["x,y", "z"])}),
    "delimiter_pipe.csv": (b"a|b\n1|x;y\n2|z\n", {"a": ("int", [1, 2]), "b": ("string", ["x;y", "z"])}),
    "delimiter_tab.tsv": (b"a\tb\n1\tx, y\n2\tz\n", {"a": ("int", [1, 2]), "b": ("string", ["x, y", "z"])}),
    "delimiter_tab_in.csv": (b"a\tb\tc\n1\tx\t3\n2\ty\t4\n", {"a": ("int", [1, 2]), "b": ("string", ["x", "y"]), "c": ("int", [3, 4])}),
    "quoted_delimiter_and_line_breaks.csv": (
        b'id,text\n1,"a, b"\n2,"line1\nline2"\n3,"crlf\r\ninside"\n4,"cr\rinside"\n',
        {"id": ("int", [1, 2, 3, 4]), "text": ("string", ["a, b", "line1\nline2", "crlf\r\ninside", "cr\rinside"])},
    ),
    "escaped_quotes.csv": (
        b'id,text\n1,"say ""hi"""\n2,""""\n3,"a""b,c"\n',
        {"id": ("int", [1, 2, 3]), "text": ("string", ['say "hi"', '"', 'a"b,c'])},
    ),
    "empty_fields.csv": (
        b'a,b,c,d\n1,,x,\n,2,,\n3,4,"",\n',
        {"a": ("int", [1, None, 3]), "b": ("int", [None, 2, 4]), "c": ("string", ["x", None, None]), "d": ("string", [None, None, None])},
    ),
    "crlf.csv": (b"a,b\r\n1,x\r\n2,y\r\n", {"a": ("int", [1, 2]), "b": ("string", ["x", "y"])}),
    "lf_no_final_newline.csv": (b"a,b\n1,x\n2,y", {"a": ("int", [1, 2]), "b": ("string", ["x", "y"])}),
    "json_in_a_field.csv": (
        b'id,payload\n1,"{""k"": [1, 2], ""s"": ""a,b""}"\n2,"[{""x"": null}]"\n',
        {"id": ("int", [1, 2]), "payload": ("string", ['{"k": [1, 2], "s": "a,b"}', '[{"x": null}]'])},
    ),
    "bom.csv": (b"\xef\xbb\xbfid,name\n1,x\n", {"id": ("int", [1]), "name": ("string", ["x"])}),
    "cp1252.csv": (
        "name,city\nJosé,Zürich\n€uro,Málaga\n".encode("cp1252"),
        {"name": ("string", ["José", "€uro"]), "city": ("string", ["Zürich", "Málaga"])},
    ),
    "utf8_multibyte_and_spaces.csv": (
        b'id,text\n1,"  padded  "\n2,caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\n3,"a\tb"\n4, lead\n',
        {"id": ("int", [1, 2, 3, 4]), "text": ("string", ["  padded  ", "café € 😀", "a\tb", " lead"])},
    ),
    "leading_zeros.csv": (
        b"zip,code,phone,n,z\n08123,007,+44123,1,0\n10001,012,+1555,2,0.5\n",
        {
            "zip": ("string", ["08123", "10001"]),
            "code": ("string", ["007", "012"]),
            "phone": ("string", ["+44123", "+1555"]),
            "n": ("int", [1, 2]),
            "z": ("float", [0.0, 0.5]),
        },
    ),
    "huge_integers.csv": (
        b"big,neg,edge\n18446744073709551616,-9223372036854775809,9223372036854775807\n1,2,-9223372036854775808\n",
        {
            "big": ("string", ["18446744073709551616", "1"]),
            "neg": ("string", ["-9223372036854775809", "2"]),
            "edge": ("int", [I64_MAX, -(2**63)]),
        },
    ),
    "null_spellings.csv": (
        b"a,b,c\n1,NA,x\n2,null,N/A\nNaN,y,None\n",
        {"a": ("int", [1, 2, None]), "b": ("string", [None, None, "y"]), "c": ("string", ["x", None, None])},
    ),
    "header_only.csv": (b"a,b,c\n", {"a": ("string", []), "b": ("string", []), "c": ("string", [])}),
    "types.csv": (
        b"flag,day,ts,tsz,num,word\n"
        b"true,2024-01-31,2024-01-31 10:00:00,2024-01-31T10:00:00+02:00,1,x\n"
        b"False,2024-02-29,2024-02-29T23:59:59.123456,2024-02-29T23:59:59.5Z,2.5,true\n",
        {
            "flag": ("bool", [True, False]),
            "day": ("date", [dt.date(2024, 1, 31), dt.date(2024, 2, 29)]),
            "ts": ("timestamp", [dt.datetime(2024, 1, 31, 10, tzinfo=UTC), dt.datetime(2024, 2, 29, 23, 59, 59, 123456, tzinfo=UTC)]),
            "tsz": ("timestamp", [dt.datetime(2024, 1, 31, 8, tzinfo=UTC), dt.datetime(2024, 2, 29, 23, 59, 59, 500000, tzinfo=UTC)]),
            "num": ("float", [1.0, 2.5]),
            "word": ("string", ["x", "true"]),
        },
    ),
    "quoted_numbers.csv": (b'a,b\n"1","x"\n"2","y"\n', {"a": ("int", [1, 2]), "b": ("string", ["x", "y"])}),
}

LATE_ROWS = 30_000  # more than one 64 KiB block (ingest.csv.block_size is set to 65536 below)
CASES["late_text.csv"] = (
    b"n,m\n" + b"".join(b"%d,%d\n" % (i, i) for i in range(LATE_ROWS)) + b"x,2.5\n",
    {"n": ("string", [str(i) for i in range(LATE_ROWS)] + ["x"]), "m": ("float", [float(i) for i in range(LATE_ROWS)] + [2.5])},
)


@pytest.fixture(scope="module")
def ingested(tmp_path_factory) -> dict[str, object]:
    """Every case written to one folder and ingested in one run; table name → (outcome, message, table)."""
    import deltalake
    import yaml

    import autoflux

    folder = tmp_path_factory.mktemp("edge") / "data"
    folder.mkdir()
    for name, (data, _) in CASES.items():
        (folder / name).write_bytes(data)
    workspace = autoflux.init(tmp_path_factory.mktemp("edge_ws") / "ws")
    config_path = workspace / "autoflux.yml"
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    config.setdefault("ingest", {}).setdefault("csv", {})["block_size"] = 65536
    config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    pipeline = autoflux.Pipeline.open(workspace)
    try:
        report = pipeline.ingest([str(folder)])
    finally:
        pipeline.close()
    result = {}
    for file_result in report.files:
        table = None
        if file_result.outcome == "loaded":
            table = deltalake.DeltaTable(str(workspace / "lake" / "raw" / file_result.table)).to_pyarrow_table()
        result[Path(file_result.source_file).name] = (file_result.outcome, file_result.message, table)
    return {"folder": folder, "tables": result}


@pytest.mark.parametrize("name", list(CASES))
def test_the_raw_table_holds_the_values_as_written(ingested, name):
    _, columns = CASES[name]
    outcome, message, table = ingested["tables"].get(name, ("not ingested", None, None))
    assert outcome == "loaded", f"{name}: {outcome}: {message}"
    table = table.drop_columns(list(LINEAGE_COLUMNS))
    assert table.column_names == list(columns), name
    for column, (kind, values) in columns.items():
        field = table.schema.field(column)
        got = table.column(column).to_pylist()
        assert arrow_kind(field.type) == kind, f"{name}: column {column!r} is {field.type}, expected {kind} ({got[:3]})"
        differing = [(row + 1, want, have) for row, (want, have) in enumerate(zip(values, got, strict=False)) if not same_value(want, have)]
        if differing and sorted(map(repr, values)) == sorted(map(repr, got)):
            pytest.fail(f"{name}: column {column!r} holds the file's values in another row order (row, expected, got): {differing[:3]}")
        assert len(got) == len(values) and not differing, f"{name}: column {column!r} (row, expected, got): {differing[:3]}"


@pytest.mark.parametrize("name", list(CASES))
def test_the_independent_reader_agrees_with_the_hand_written_values(ingested, name):
    """The corpus's reference reader gives the same columns, kinds and values as written out above."""
    _, columns = CASES[name]
    expected = expected_csv(ingested["folder"] / name)
    assert expected.fails is None, expected.fails
    from autoflux.ingest.schema import unique_column_names

    assert unique_column_names(expected.names) == list(columns)
    for i, (kind, values) in enumerate(columns.values()):
        assert expected.kinds[i] == kind, (name, i)
        assert all(same_value(want, row[i]) for want, row in zip(values, expected.rows, strict=True)), (name, i)
    assert len(expected.rows) == len(next(iter(columns.values()))[1])


def test_the_bom_is_not_part_of_the_first_name(ingested):
    outcome, _, table = ingested["tables"]["bom.csv"]
    assert outcome == "loaded"
    assert table.schema.field("id").metadata[b"autoflux.source_name"] == b"id"
