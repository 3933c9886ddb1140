"""Formats: CSV dialects and encodings, gzip, Parquet, JSON, Excel, and custom readers from config."""

from __future__ import annotations

import codecs
import datetime as dt
import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from autoflux.ingest.readers.csv import detect_delimiter
from autoflux.ingest.readers.encoding import detect_encoding

# ------------------------------------------------------------------------------- delimiters


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("comma.csv", "id,name,score\n1,ann,2.5\n2,bob,3.5\n"),
        ("semicolon.csv", "id;name;score\n1;ann;2,5\n2;bob;3,5\n"),
        ("tab.csv", "id\tname\tscore\n1\tann\t2.5\n2\tbob\t3.5\n"),
        ("pipe.csv", "id|name|score\n1|ann|2.5\n2|bob|3.5\n"),
        ("dotted.tsv", "id\tname\tscore\n1\tann, jr\t2.5\n2\tbob\t3.5\n"),
    ],
)
def test_delimiter_is_detected(data_dir, ingest, raw, one, name, text):
    (data_dir / name).write_text(text)
    result = one(ingest(data_dir))
    assert result.outcome == "loaded", result.message
    table = raw(Path(name).stem)
    assert table.column_names[:3] == ["id", "name", "score"]
    assert table.num_rows == 2
    assert sorted(table["id"].to_pylist()) == [1, 2]


def test_tsv_is_tab_separated_even_when_commas_split_more(data_dir):
    path = data_dir / "x.tsv"
    assert detect_delimiter(path, "a,b,c\td\n1,2,3\t4\n5,6,7\t8\n") == "\t"


def test_quoted_delimiters_do_not_confuse_detection(data_dir):
    text = 'name;note\n"Smith, J";"a, b, c"\n"Doe, A";"x"\n'
    assert detect_delimiter(data_dir / "x.csv", text) == ";"


def test_a_single_column_file_loads(data_dir, ingest, raw):
    (data_dir / "one.csv").write_text("value\n1\n2\n3\n")
    ingest(data_dir)
    assert raw("one")["value"].to_pylist() == [1, 2, 3]


def test_configured_delimiter_wins(workspace, configure, data_dir, ingest, raw):
    configure(workspace, {"ingest": {"csv": {"delimiter": ";"}}})
    (data_dir / "x.csv").write_text("a,b;c\n1,2;3\n")
    ingest(data_dir)
    assert raw("x").column_names[:2] == ["a_b", "c"]


def test_quoted_values_with_newlines_and_escaped_quotes(data_dir, ingest, raw, one):
    (data_dir / "q.csv").write_text('id,text\n1,"line one\nline two"\n2,"say ""hi"""\n')
    assert one(ingest(data_dir)).outcome == "loaded"
    values = dict(zip(*(raw("q")[c].to_pylist() for c in ("id", "text")), strict=True))
    assert values == {1: "line one\nline two", 2: 'say "hi"'}


def test_crlf_line_endings(data_dir, ingest, raw):
    (data_dir / "win.csv").write_bytes(b"a,b\r\n1,x\r\n2,y\r\n")
    ingest(data_dir)
    table = raw("win")
    assert table.column_names[:2] == ["a", "b"]
    assert sorted(table["b"].to_pylist()) == ["x", "y"]


# -------------------------------------------------------------------------------- encodings


def test_utf8_bom_is_not_part_of_the_first_column_name(data_dir, ingest, raw, one):
    (data_dir / "bom.csv").write_bytes(b"\xef\xbb\xbfId,Name\n1,Zo\xc3\xab\n")
    assert one(ingest(data_dir)).outcome == "loaded"
    table = raw("bom")
    assert table.column_names[:2] == ["id", "name"]
    assert table["name"].to_pylist() == ["Zoë"]
    assert table.schema.field("id").metadata[b"autoflux.source_name"] == b"Id"


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252"])
def test_legacy_encodings_are_detected(data_dir, ingest, raw, one, encoding):
    text = "Nom,Ville,Note\nRené,Besançon,très bien\nJosé,Orléans,déjà vu\nFrançois,Créteil,à côté\nÉlodie,Nîmes,Noël\n"
    (data_dir / "fr.csv").write_bytes(text.encode(encoding))
    result = one(ingest(data_dir))
    assert result.outcome == "loaded", result.message
    table = raw("fr")
    assert sorted(table["nom"].to_pylist()) == ["François", "José", "René", "Élodie"]
    assert "Besançon" in table["ville"].to_pylist()


def test_cp1252_only_characters_survive(data_dir, ingest, raw, one):
    text = "name,quote\nA,\u201chello\u201d caf\u00e9\nB,\u2013 costs 5\u20ac\n"
    (data_dir / "w.csv").write_bytes(text.encode("cp1252"))
    assert one(ingest(data_dir)).outcome == "loaded"
    assert set(raw("w")["quote"].to_pylist()) == {"\u201chello\u201d caf\u00e9", "\u2013 costs 5\u20ac"}


def test_detect_encoding_prefers_utf8(data_dir):
    assert detect_encoding(data_dir / "x.csv", "a,b\n1,Zoë\n".encode()) == "utf-8"
    assert detect_encoding(data_dir / "x.csv", b"\xef\xbb\xbfa\n1\n") == "utf-8"


def test_configured_encoding_is_used(workspace, configure, data_dir, ingest, raw):
    configure(workspace, {"ingest": {"csv": {"encoding": "cp1251"}}})
    (data_dir / "x.csv").write_bytes("a\nйод\n".encode("cp1251"))  # detection alone would read Latin letters
    ingest(data_dir)
    assert raw("x")["a"].to_pylist() == ["йод"]


def test_utf16_with_bom(data_dir, ingest, raw, one):
    (data_dir / "u16.csv").write_bytes("a,b\n1,ü\n".encode("utf-16"))
    result = one(ingest(data_dir))
    assert result.outcome == "loaded", result.message
    assert raw("u16")["b"].to_pylist() == ["ü"]


@pytest.mark.parametrize("rows", [2, 20_000], ids=["first-block", "later-block"])
def test_utf16_cut_short_fails_naming_the_file_and_its_last_line(data_dir, ingest, raw, one, small_blocks, rows):
    """A UTF-16 file with an odd number of bytes (a truncated download): Arrow's transcoder raises
    the codec's UnicodeDecodeError, at open or while streaming; it is a one-line error, not a traceback."""
    path = data_dir / "u16.csv"
    path.write_bytes(("a,b\n" + "".join(f"{i},ü\n" for i in range(rows))).encode("utf-16")[:-1])
    result = one(ingest(data_dir))
    assert result.outcome == "failed"
    assert f"{path}, line {rows + 1}: bytes that are not valid utf-16: the file ends in the middle of a character" in result.message
    assert "cut short" in result.message and "get it again" in result.message and "\n" not in result.message
    with pytest.raises(Exception, match="no table raw.u16"):
        raw("u16")


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
def test_utf8_cut_short_in_a_ragged_last_row_fails_without_a_traceback(data_dir, ingest, one):
    """Arrow decodes a ragged row's text for the row handler: bytes cut mid-character raise there,
    where Python would print a traceback; the file's error names them instead."""
    (data_dir / "cut.csv").write_bytes("a,b,c\n1,x,1\n2,y,2\n27,Zoë".encode()[:-1])
    result = one(ingest(data_dir))
    assert result.outcome == "failed"
    assert "cut.csv, line 4: bytes that are not valid utf-8: the file ends in the middle of a character" in result.message


def test_utf16_lone_surrogate_fails_naming_its_line(data_dir, ingest, one):
    data = "a,b\n1,x\n2,y\n".encode("utf-16-le")
    cut = data.index("2,y".encode("utf-16-le"))
    (data_dir / "u16.csv").write_bytes(codecs.BOM_UTF16_LE + data[:cut] + b"\x00\xdc" + data[cut:])
    result = one(ingest(data_dir))
    assert result.outcome == "failed"
    assert "u16.csv, line 3: bytes that are not valid utf-16 — " in result.message
    assert "ingest.csv.encoding" in result.message


# ----------------------------------------------------------------------------- compression


def test_gzip_csv(data_dir, ingest, raw, one):
    with gzip.open(data_dir / "train.csv.gz", "wt", encoding="utf-8") as handle:
        handle.write("id,x\n" + "".join(f"{i},{i * 2}\n" for i in range(1000)))
    result = one(ingest(data_dir))
    assert (result.table, result.outcome, result.rows) == ("train", "loaded", 1000)
    assert sum(raw("train")["x"].to_pylist()) == sum(2 * i for i in range(1000))


def test_gzip_ndjson(data_dir, ingest, raw):
    with gzip.open(data_dir / "events.jsonl.gz", "wt") as handle:
        handle.write('{"a": 1}\n{"a": 2}\n')
    ingest(data_dir)
    assert sorted(raw("events")["a"].to_pylist()) == [1, 2]


# ---------------------------------------------------------------------------- parquet, json


def test_parquet_is_streamed_with_lake_types(data_dir, ingest, raw, one):
    table = pa.table(
        {
            "Id": pa.array(range(200_000), pa.uint32()),
            "Label": pa.array(["a", "b"] * 100_000).dictionary_encode(),
            "When": pa.array([dt.datetime(2024, 1, 1)] * 200_000, pa.timestamp("ns")),
        }
    )
    pq.write_table(table, data_dir / "events.parquet", row_group_size=50_000)
    result = one(ingest(data_dir))
    assert (result.outcome, result.rows) == ("loaded", 200_000)
    stored = raw("events")
    assert stored.schema.field("id").type == pa.int64()
    assert stored.schema.field("label").type == pa.string()
    assert stored.schema.field("when").type == pa.timestamp("us", tz="UTC")
    assert stored.num_rows == 200_000


def test_ndjson(data_dir, ingest, raw, one):
    (data_dir / "rows.ndjson").write_text('{"Id": 1, "tags": ["a"], "info": {"x": 1}}\n{"Id": 2, "tags": [], "info": {"x": 2}}\n')
    assert one(ingest(data_dir)).outcome == "loaded"
    table = raw("rows")
    assert sorted(table["id"].to_pylist()) == [1, 2]
    assert pa.types.is_list(table.schema.field("tags").type)
    assert pa.types.is_struct(table.schema.field("info").type)


def test_json_array(data_dir, ingest, raw, one):
    (data_dir / "items.json").write_text(json.dumps([{"Item Id": 1, "price": 2.5}, {"Item Id": 2, "price": None}]))
    result = one(ingest(data_dir))
    assert (result.outcome, result.rows) == ("loaded", 2), result.message
    table = raw("items")
    assert table.column_names[:2] == ["item_id", "price"]
    assert table.schema.field("price").type == pa.float64()


def test_json_array_with_mixed_types_keeps_every_row_as_string(data_dir, ingest, raw, one):
    (data_dir / "mixed.json").write_text(json.dumps([{"v": 1, "k": "a"}, {"v": "two", "k": "b"}, {"v": {"x": 3}, "k": "c"}]))
    result = one(ingest(data_dir))
    assert result.outcome == "loaded", result.message
    table = raw("mixed")
    assert table.schema.field("v").type == pa.string()
    assert table.schema.field("k").type == pa.string()
    assert set(table["v"].to_pylist()) == {"1", '{"x": 3}', "two"}


def test_json_array_of_scalars(data_dir, ingest, raw):
    (data_dir / "numbers.json").write_text("[1, 2, 3]")
    ingest(data_dir)
    assert sorted(raw("numbers")["value"].to_pylist()) == [1, 2, 3]


# ------------------------------------------------------------------------------------ excel


def _workbook(path: Path, sheets: dict[str, list[list]]) -> Path:
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    book.save(path)
    return path


def test_excel_one_sheet(data_dir, ingest, raw, one):
    _workbook(
        data_dir / "Loans.xlsx",
        {
            "Sheet1": [
                ["Loan Id", "Amount", "Opened", None],
                [1, 1000.5, dt.date(2024, 1, 2), "x"],
                [2, 250, dt.date(2024, 3, 4), None],
            ]
        },
    )
    result = one(ingest(data_dir))
    assert (result.table, result.outcome, result.rows) == ("loans", "loaded", 2), result.message
    table = raw("loans")
    assert table.column_names[:4] == ["loan_id", "amount", "opened", "column_4"]
    assert sorted(table["amount"].to_pylist()) == [250, 1000.5]
    assert table.schema.field("amount").type == pa.float64()
    assert table.schema.field("loan_id").type == pa.int64()
    assert table.schema.field("opened").type == pa.date32()


def test_excel_multi_sheet_gives_one_table_per_sheet(data_dir, ingest, raw):
    _workbook(
        data_dir / "book.xlsx",
        {"Train Data": [["id", "y"], [1, 0], [2, 1]], "Test": [["id"], [3], [4], [5]], "Notes": [["text"], ["mixed"], [7]]},
    )
    report = ingest(data_dir)
    assert {(f.table, f.outcome, f.rows) for f in report.files} == {
        ("book_train_data", "loaded", 2),
        ("book_test", "loaded", 3),
        ("book_notes", "loaded", 2),
    }
    assert raw("book_test").schema.field("id").type == pa.int64()  # whole numbers, though Excel stores doubles
    assert sorted(raw("book_test")["id"].to_pylist()) == [3, 4, 5]
    assert sorted(raw("book_notes")["text"].to_pylist()) == ["7", "mixed"]


# ----------------------------------------------------------------------------- custom readers


READERS = """
import pandas as pd
import pyarrow as pa


def fixed_width(path, widths=(3, 5)):
    rows = []
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\\n")
        rows.append([line[: widths[0]].strip(), line[widths[0]: widths[0] + widths[1]].strip()])
    return pd.DataFrame(rows, columns=["Code", "Label Text"])


def batches(path, size=2):
    values = [int(v) for v in open(path).read().split()]
    for start in range(0, len(values), size):
        chunk = values[start: start + size]
        yield pa.record_batch({"Value": chunk, "Squared": [v * v for v in chunk]})
"""


def test_custom_reader_returning_a_dataframe(workspace, configure, data_dir, ingest, raw, one):
    (workspace / "my_readers.py").write_text(READERS)
    reader = {"pattern": "*.fw", "reader": "my_readers.py:fixed_width", "options": {"widths": [2, 6]}}
    configure(workspace, {"ingest": {"readers": [reader]}})
    (data_dir / "codes.fw").write_text("AAfirst\nBBsecond\n")
    result = one(ingest(data_dir))
    assert (result.table, result.outcome, result.rows) == ("codes", "loaded", 2), result.message
    table = raw("codes")
    assert table.column_names == ["code", "label_text", "_load_id", "_source_file", "_ingested_at"]
    assert sorted(table["label_text"].to_pylist()) == ["first", "second"]
    assert set(table["_source_file"].to_pylist()) == {"codes.fw"}
    assert table.schema.field("label_text").metadata[b"autoflux.source_name"] == b"Label Text"


def test_custom_reader_yielding_arrow_batches(workspace, configure, data_dir, ingest, raw, one):
    (workspace / "my_readers.py").write_text(READERS)
    configure(workspace, {"ingest": {"readers": [{"pattern": "*.nums", "reader": "my_readers.py:batches"}]}})
    (data_dir / "numbers.nums").write_text("1 2 3 4 5")
    result = one(ingest(data_dir))
    assert (result.outcome, result.rows) == ("loaded", 5), result.message
    table = raw("numbers")
    pairs = zip(table["value"].to_pylist(), table["squared"].to_pylist(), strict=True)
    assert sorted(pairs) == [(v, v * v) for v in range(1, 6)]


def test_custom_reader_claims_files_before_builtin_formats(workspace, configure, data_dir, ingest, raw):
    (workspace / "my_readers.py").write_text(READERS)
    configure(workspace, {"ingest": {"readers": [{"pattern": "special/*.csv", "reader": "my_readers.py:batches"}]}})
    (data_dir / "special").mkdir()
    (data_dir / "special" / "n.csv").write_text("7 8")
    (data_dir / "plain.csv").write_text("a\n1\n")
    report = ingest(data_dir)
    assert {f.table: f.outcome for f in report.files} == {"special_n": "loaded", "plain": "loaded"}
    assert sorted(raw("special_n")["value"].to_pylist()) == [7, 8]


def test_custom_reader_failure_is_a_file_error(workspace, configure, data_dir, ingest, one):
    (workspace / "broken.py").write_text("def read(path):\n    raise ValueError('no idea how to read this')\n")
    configure(workspace, {"ingest": {"readers": [{"pattern": "*.weird", "reader": "broken.py:read"}]}})
    (data_dir / "x.weird").write_text("?")
    result = one(ingest(data_dir))
    assert result.outcome == "failed"
    assert "x.weird" in result.message and "no idea how to read this" in result.message


def test_custom_reader_failing_halfway_is_a_file_error(workspace, configure, data_dir, ingest, one):
    code = "import pyarrow as pa\ndef read(path):\n    yield pa.record_batch({'a': [1]})\n    raise OSError('disk gone')\n"
    (workspace / "halfway.py").write_text(code)
    configure(workspace, {"ingest": {"readers": [{"pattern": "*.weird", "reader": "halfway.py:read"}]}})
    (data_dir / "x.weird").write_text("?")
    result = one(ingest(data_dir))
    assert result.outcome == "failed"
    assert "x.weird" in result.message and "disk gone" in result.message
    assert "\n" not in result.message


def test_a_missing_custom_reader_is_a_config_error(workspace, configure, data_dir, ingest, one):
    configure(workspace, {"ingest": {"readers": [{"pattern": "*.weird", "reader": "nowhere.py:read"}]}})
    (data_dir / "x.weird").write_text("?")
    result = one(ingest(data_dir))
    assert result.outcome == "failed"
    assert "nowhere.py:read" in result.message and "ingest.readers" in result.message


def test_ndjson_number_that_turns_to_text_after_the_first_block_makes_the_column_text(data_dir, ingest, raw, one):
    lines = [json.dumps({"a": i, "b": i / 2}) for i in range(100_000)] + [json.dumps({"a": "text", "b": 1})]
    (data_dir / "late.ndjson").write_text("\n".join(lines) + "\n")
    result = one(ingest(data_dir))
    assert result.outcome == "loaded", result.message
    table = raw("late")
    assert table.num_rows == 100_001
    assert table.schema.field("a").type == pa.string() and table.schema.field("b").type == pa.float64()
    assert table.column("a").to_pylist()[-2:] == ["99999", "text"]
    assert table.column("b").to_pylist()[-1] == 1.0


def test_ndjson_late_floats_widen_integers_and_late_fields_are_kept(data_dir, ingest, raw, one):
    lines = [json.dumps({"a": i}) for i in range(60_000)] + [json.dumps({"a": 0.5, "extra": {"k": [1, 2]}})]
    lines += [json.dumps({"a": 7, "extra": True})]
    (data_dir / "late.ndjson").write_text("\n".join(lines) + "\n")
    result = one(ingest(data_dir))
    assert result.outcome == "loaded", result.message
    table = raw("late")
    assert table.schema.field("a").type == pa.float64()
    assert table.column("a").to_pylist()[-3:] == [59_999.0, 0.5, 7.0]
    assert table.column("extra").to_pylist()[-3:] == [None, '{"k": [1, 2]}', "true"]


def test_ndjson_read_by_value_names_the_line_of_bad_json(data_dir, ingest, lake_snapshot, workspace, one):
    lines = [json.dumps({"a": i}) for i in range(100_000)] + [json.dumps({"a": "text"}), "{broken"]
    (data_dir / "late.ndjson").write_text("\n".join(lines) + "\n")
    before = lake_snapshot(workspace)
    result = one(ingest(data_dir))
    assert result.outcome == "failed"
    assert "late.ndjson" in result.message and "line 100002" in result.message
    assert lake_snapshot(workspace) == before


def test_ndjson_bad_json_in_the_first_block_names_its_line(data_dir, ingest, lake_snapshot, workspace, one):
    (data_dir / "bad.ndjson").write_text('{"a": 1}\n\n{"a": 2,}\n')  # Arrow's reader would say "row 1"
    before = lake_snapshot(workspace)
    result = one(ingest(data_dir))
    assert result.outcome == "failed"
    assert "bad.ndjson, line 3: invalid JSON" in result.message, result.message
    assert lake_snapshot(workspace) == before


def test_pretty_printed_json_objects_are_read_by_value_as_arrow_reads_them(data_dir, ingest, raw, one):
    """Objects spread over lines, one after the other, load through Arrow's reader; a later field of another type
    sends them to the by-value read, which must read them whole too (it read line by line: "invalid JSON, line 1")."""
    records = [{"id": i, "code": i, "tags": {"k": [i, i + 1]}} for i in range(3)] + [{"id": 3, "code": "A-7", "tags": {"k": []}}]
    (data_dir / "pretty.json").write_text("".join(json.dumps(r, indent=2) + "\n" for r in records))
    result = one(ingest(data_dir))
    assert result.outcome == "loaded", result.message
    table = raw("pretty")
    assert table.column("id").to_pylist() == [0, 1, 2, 3]
    assert table.column("code").to_pylist() == ["0", "1", "2", "A-7"]


@pytest.mark.parametrize(
    ("text", "line", "says"),
    [
        ('{"a": 1}\n{\n  "a": "x",\n  "b": 2,\n}\n', 5, "invalid JSON"),  # a trailing comma: the line of the }
        ('{"a": 1}\n{"a": "x"}\n{\n  "a": 2,\n  "b": {\n    "c": 3\n  }\n', 3, "never closed"),
    ],
)
def test_a_pretty_printed_json_error_names_its_line(data_dir, ingest, lake_snapshot, workspace, one, text, line, says):
    (data_dir / "bad.ndjson").write_text(text)
    before = lake_snapshot(workspace)
    result = one(ingest(data_dir))
    assert result.outcome == "failed"
    assert f"bad.ndjson, line {line}: " in result.message and says in result.message, result.message
    assert lake_snapshot(workspace) == before


def test_ndjson_number_beyond_a_double_keeps_its_field_text_as_written(data_dir, ingest, raw, one):
    (data_dir / "big.ndjson").write_text('{"id": 1, "x": 1.5}\n{"id": 2, "x": 1e400}\n{"id": 3, "x": -2.5E+999}\n')
    result = one(ingest(data_dir))
    assert result.outcome == "loaded", result.message
    table = raw("big")
    assert table.schema.field("id").type == pa.int64() and table.schema.field("x").type == pa.string()
    assert table.column("x").to_pylist() == ["1.5", "1e400", "-2.5E+999"]


def test_ndjson_read_by_value_does_not_invent_the_columns_of_the_table(workspace, configure, data_dir, ingest, raw, one):
    """A frozen table's column the file lacks is a difference, also when the file is read value by value."""
    configure(workspace, {"ingest": {"tables": {"late": {"mode": "append", "schema": "freeze"}}}})
    (data_dir / "late.ndjson").write_text('{"a": "x", "b": 1}\n')
    assert one(ingest(data_dir)).outcome == "loaded"
    (data_dir / "late.ndjson").write_text('{"a": 1}\n{"a": "text"}\n')  # a type change Arrow meets in its first block
    result = one(ingest(data_dir))
    assert result.outcome == "failed" and "- b (missing" in result.message, result.message
    assert raw("late").num_rows == 1


def test_ndjson_read_by_value_names_the_line_of_bytes_that_are_not_utf8(data_dir, ingest, lake_snapshot, workspace, one):
    (data_dir / "late.ndjson").write_bytes(b'{"a": 1}\n{"a": "x"}\n{"a": "\xff"}\n')
    before = lake_snapshot(workspace)
    result = one(ingest(data_dir))
    assert result.outcome == "failed"
    assert "late.ndjson, line 3: bytes that are not valid UTF-8" in result.message and "\n" not in result.message
    assert lake_snapshot(workspace) == before
