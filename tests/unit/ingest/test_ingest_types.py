"""Type policy: inferred from the first block, widened when a later value does not fit, hints win."""

from __future__ import annotations

import pyarrow as pa
import pytest

from autoflux.exceptions import ConfigError, IngestError
from autoflux.ingest.readers.csv import CsvOptions, WidenColumns, read_csv
from autoflux.ingest.schema import hint_type, lake_type

ROWS = 20_000  # with 64 KiB blocks, the first block ends long before the last row


def write_rows(path, header, rows):
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_the_test_files_really_span_several_blocks(data_dir, small_blocks):
    path = write_rows(data_dir / "t.csv", "id,value", [f"{i},{i}" for i in range(ROWS)])
    assert path.stat().st_size > 3 * small_blocks


def test_integer_first_then_text_late_loads_every_row_as_string(data_dir, small_blocks, ingest, raw, one):
    rows = [f"{i},{i}" for i in range(ROWS)] + [f"{ROWS},n/a-ish"]
    write_rows(data_dir / "late.csv", "id,value", rows)
    result = one(ingest(data_dir))
    assert result.outcome == "loaded", result.message
    assert result.rows == ROWS + 1
    assert "column value read as string" in result.notes
    table = raw("late")
    assert table.num_rows == ROWS + 1
    assert table.schema.field("value").type == pa.string()
    assert table.schema.field("id").type == pa.int64()
    values = dict(zip(table["id"].to_pylist(), table["value"].to_pylist(), strict=True))
    assert values[0] == "0" and values[ROWS] == "n/a-ish"
    assert sorted(table["id"].to_pylist()) == list(range(ROWS + 1))


def test_integer_first_then_float_late_becomes_double(data_dir, small_blocks, ingest, raw, one):
    rows = [f"{i},{i}" for i in range(ROWS)] + [f"{ROWS},2.5"]
    write_rows(data_dir / "f.csv", "id,value", rows)
    result = one(ingest(data_dir))
    assert result.outcome == "loaded", result.message
    table = raw("f")
    assert table.schema.field("value").type == pa.float64()
    assert table.num_rows == ROWS + 1
    values = dict(zip(table["id"].to_pylist(), table["value"].to_pylist(), strict=True))
    assert values[ROWS] == 2.5
    assert sum(values[i] for i in range(ROWS)) == sum(range(ROWS))


def test_integer_then_float_then_text_widens_twice(data_dir, small_blocks, ingest, raw, one):
    rows = [f"{i},{i}" for i in range(ROWS)] + ["x,1.5"] + [f"{i},{i}" for i in range(ROWS)] + ["y,text"]
    write_rows(data_dir / "twice.csv", "id,value", rows)
    result = one(ingest(data_dir))
    assert result.outcome == "loaded", result.message
    table = raw("twice")
    assert table.num_rows == 2 * ROWS + 2
    assert table.schema.field("value").type == pa.string()
    assert table.schema.field("id").type == pa.string()
    values = dict(zip(table["id"].to_pylist(), table["value"].to_pylist(), strict=False))
    assert values["x"] == "1.5" and values["y"] == "text"


def test_column_empty_in_the_first_block_is_string(data_dir, small_blocks, ingest, raw, one):
    rows = [f"{i}," for i in range(ROWS)] + [f"{ROWS},42"]
    write_rows(data_dir / "sparse.csv", "id,rare", rows)
    result = one(ingest(data_dir))
    assert result.outcome == "loaded", result.message
    table = raw("sparse")
    assert table.schema.field("rare").type == pa.string()
    assert table.num_rows == ROWS + 1
    assert table["rare"].null_count == ROWS
    assert table["rare"].drop_null().to_pylist() == ["42"]


def test_a_column_with_no_values_at_all_is_string(data_dir, ingest, raw, one):
    write_rows(data_dir / "blank.csv", "id,nothing", ["1,", "2,"])
    assert one(ingest(data_dir)).outcome == "loaded"
    assert raw("blank").schema.field("nothing").type == pa.string()


def test_inferred_types_of_a_small_file(data_dir, ingest, raw):
    write_rows(
        data_dir / "kinds.csv",
        "i,f,s,b,d",
        ["1,1.5,x,true,2024-01-31", "2,,y,false,2024-02-29", "3,3.25,,true,"],
    )
    ingest(data_dir)
    schema = raw("kinds").schema
    assert [schema.field(c).type for c in "ifsbd"] == [pa.int64(), pa.float64(), pa.string(), pa.bool_(), pa.date32()]


def test_a_type_hint_wins_over_inference(workspace, configure, data_dir, ingest, raw, one):
    configure(workspace, {"ingest": {"types": {"zips": {"zip_code": "string", "amount": "decimal(10,2)"}}}})
    write_rows(data_dir / "zips.csv", "zip_code,amount", ["01234,10.50", "98765,3"])
    assert one(ingest(data_dir)).outcome == "loaded"
    table = raw("zips")
    assert table.schema.field("zip_code").type == pa.string()
    assert sorted(table["zip_code"].to_pylist()) == ["01234", "98765"]  # leading zero kept
    assert table.schema.field("amount").type == pa.decimal128(10, 2)


def test_a_hint_keyed_by_the_original_name_works(workspace, configure, data_dir, ingest, raw, one):
    configure(workspace, {"ingest": {"types": {"people": {"Postal Code": "string"}}}})
    write_rows(data_dir / "people.csv", "Name,Postal Code", ["a,00501", "b,02134"])
    assert one(ingest(data_dir)).outcome == "loaded"
    table = raw("people")
    assert table.schema.field("postal_code").type == pa.string()
    assert sorted(table["postal_code"].to_pylist()) == ["00501", "02134"]


def test_star_hints_apply_to_every_table_and_table_hints_win(workspace, configure, data_dir, ingest, raw):
    configure(workspace, {"ingest": {"types": {"*": {"id": "string"}, "b": {"id": "double"}}}})
    write_rows(data_dir / "a.csv", "id", ["1", "2"])
    write_rows(data_dir / "b.csv", "id", ["1", "2"])
    ingest(data_dir)
    assert raw("a").schema.field("id").type == pa.string()
    assert raw("b").schema.field("id").type == pa.float64()


def test_a_hint_that_does_not_fit_is_an_error_naming_the_column(workspace, configure, data_dir, ingest, one):
    configure(workspace, {"ingest": {"types": {"bad": {"n": "int"}}}})
    write_rows(data_dir / "bad.csv", "n", ["1", "two"])
    result = one(ingest(data_dir))
    assert result.outcome == "failed"
    assert "bad.csv" in result.message
    assert "column 'n'" in result.message
    assert "'two'" in result.message
    assert "ingest.types" in result.message


def test_a_hint_late_in_a_big_file_is_still_strict(workspace, configure, data_dir, small_blocks, ingest, one):
    configure(workspace, {"ingest": {"types": {"big": {"value": "bigint"}}}})
    write_rows(data_dir / "big.csv", "id,value", [f"{i},{i}" for i in range(ROWS)] + [f"{ROWS},oops"])
    result = one(ingest(data_dir))
    assert result.outcome == "failed"
    assert "column 'value'" in result.message and "'oops'" in result.message


def test_an_unknown_hint_type_is_a_config_error_listing_the_allowed_ones():
    with pytest.raises(ConfigError) as caught:
        hint_type("integr", where="ingest.types.train.age")
    message = str(caught.value)
    assert "ingest.types.train.age" in message and "'integr'" in message
    assert "bigint" in message and "decimal(p,s)" in message


@pytest.mark.parametrize(
    ("hint", "expected"),
    [
        ("STRING", pa.string()),
        ("bigint", pa.int64()),
        ("int32", pa.int32()),
        ("double", pa.float64()),
        ("boolean", pa.bool_()),
        ("date", pa.date32()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("decimal(18, 4)", pa.decimal128(18, 4)),
    ],
)
def test_hint_names(hint, expected):
    assert hint_type(hint, where="x") == expected


@pytest.mark.parametrize(
    ("arrow_type", "expected"),
    [
        (pa.uint8(), pa.int16()),
        (pa.uint32(), pa.int64()),
        (pa.uint64(), pa.decimal128(20, 0)),
        (pa.null(), pa.string()),
        (pa.large_string(), pa.string()),
        (pa.timestamp("ns"), pa.timestamp("us", tz="UTC")),
        (pa.dictionary(pa.int32(), pa.string()), pa.string()),
        (pa.time64("us"), pa.string()),
        (pa.float16(), pa.float32()),
        (pa.int32(), pa.int32()),
    ],
)
def test_lake_types(arrow_type, expected):
    assert lake_type(arrow_type) == expected


def test_read_csv_hints_from_an_earlier_read_are_not_strict(data_dir):
    """A type AutoFlux chose (not the user) widens again instead of failing the file."""
    path = write_rows(data_dir / "w.csv", "v", ["1.5", "abc"])
    with pytest.raises(WidenColumns) as caught:
        list(read_csv(path, CsvOptions(), {"v": pa.float64()}, strict=()).batches)
    assert caught.value.types == {"v": pa.string()}
    with pytest.raises(IngestError, match="as the type hint says"):
        list(read_csv(path, CsvOptions(), {"v": pa.float64()}).batches)
