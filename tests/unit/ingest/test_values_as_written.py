"""Values as written: a loader that changes a byte of a value (a leading zero, a line break) is wrong."""

from __future__ import annotations

import random
import re

import pyarrow as pa
import pytest

ROWS = 20_000  # with 64 KiB blocks, the first block ends long before the last row


def write(path, text: str, encoding: str = "utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


@pytest.mark.parametrize(
    ("values", "why"),
    [
        (["08123", "10115", "75001"], "a ZIP code with a leading zero"),
        (["007", "12", "3"], "an id with leading zeros"),
        (["+44", "+1", "33"], "a phone prefix with a sign"),
        (["-01", "2", "3"], "a negative number with a leading zero"),
        (["1.5", "007.5", "2"], "a fraction with a leading zero"),
        (["1.5", "12345678901234567890", "2"], "an integer a double cannot hold exactly"),
        (["1", "99999999999999999999999", "2"], "an integer past 64 bits"),
        (["1", "0x1F", "2"], "a hex number, which Arrow reads as 31"),
        (["5", "-0012", "6"], "a negative integer with leading zeros"),
        (["1.5", "1E400", "2"], "a number beyond a double's range, which Arrow reads as infinity"),
        (["1.5", "-1e999", "inf"], "a negative number beyond a double's range"),
    ],
)
def test_number_texts_a_number_would_not_give_back_stay_text(data_dir, ingest, raw, one, values, why):
    write(data_dir / "codes.csv", "id,code\n" + "".join(f"{i},{v}\n" for i, v in enumerate(values)))
    result = one(ingest(data_dir))
    assert result.outcome == "loaded", result.message
    table = raw("codes")
    assert table.schema.field("code").type == pa.string(), why
    assert table["code"].to_pylist() == values, why
    assert table.schema.field("id").type == pa.int64()


def test_plain_numbers_are_still_numbers(data_dir, ingest, raw, one):
    write(data_dir / "n.csv", "i,f,z\n1,0.5,0\n-2,-0.25,0\n30,1e3,0\n")
    assert one(ingest(data_dir)).outcome == "loaded"
    table = raw("n")
    assert [table.schema.field(c).type for c in "ifz"] == [pa.int64(), pa.float64(), pa.int64()]
    assert table["i"].to_pylist() == [1, -2, 30] and table["f"].to_pylist() == [0.5, -0.25, 1000.0]


def test_an_infinity_spelled_out_is_a_number(data_dir, ingest, raw, one):
    write(data_dir / "n.csv", "f\n1.5\ninf\n-Infinity\n1e308\n")
    assert one(ingest(data_dir)).outcome == "loaded"
    table = raw("n")
    assert table.schema.field("f").type == pa.float64()
    assert table["f"].to_pylist() == [1.5, float("inf"), float("-inf"), 1e308]


def test_spaces_around_a_number_are_not_part_of_it(data_dir, ingest, raw, one):
    write(data_dir / "n.csv", "i,f,z\n 1,0.5 ,x\n-2 , -0.25,y\n30,\t1e3,z\n")
    assert one(ingest(data_dir)).outcome == "loaded"
    table = raw("n")
    assert [table.schema.field(c).type for c in "if"] == [pa.int64(), pa.float64()]
    assert table["i"].to_pylist() == [1, -2, 30] and table["f"].to_pylist() == [0.5, -0.25, 1000.0]


def test_a_leading_zero_after_the_first_block_makes_the_column_text(data_dir, small_blocks, ingest, raw, one):
    rows = [f"{i},{10_000 + i}" for i in range(ROWS)] + [f"{ROWS},00042"]
    write(data_dir / "late.csv", "id,zip\n" + "\n".join(rows) + "\n")
    result = one(ingest(data_dir))
    assert result.outcome == "loaded", result.message
    assert "column zip read as string" in result.notes
    table = raw("late").sort_by("id")
    assert table.schema.field("zip").type == pa.string()
    assert table["zip"].to_pylist()[-1] == "00042" and table["zip"].to_pylist()[0] == "10000"
    assert table.schema.field("id").type == pa.int64()


def test_a_type_hint_wins_over_the_text_rule(data_dir, workspace, configure, ingest, raw, one):
    configure(workspace, {"ingest": {"types": {"codes": {"zip": "bigint"}}}})
    write(data_dir / "codes.csv", "zip\n08123\n")
    assert one(ingest(data_dir)).outcome == "loaded"
    assert raw("codes")["zip"].to_pylist() == [8123]


@pytest.mark.parametrize("line_end", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_every_byte_of_a_text_value_is_kept(data_dir, ingest, raw, one, line_end):
    values = ["two\r\nlines", "unix\nbreak", "tab\there", "trailing  ", "  leading", "ünï €ode 😀", 'a "quote"']
    body = "".join(f'{i},"{v.replace(chr(34), chr(34) * 2)}"{line_end}' for i, v in enumerate(values))
    write(data_dir / "text.csv", f"id,text{line_end}{body}")
    assert one(ingest(data_dir)).outcome == "loaded"
    assert raw("text").sort_by("id")["text"].to_pylist() == values


def test_default_null_spellings_are_null_in_every_column(data_dir, ingest, raw, one):
    write(data_dir / "nulls.csv", "id,text,number\n1,NA,NA\n2,,N/A\n3,null,NULL\n4,None,nan\n5,kept,5\n")
    assert one(ingest(data_dir)).outcome == "loaded"
    table = raw("nulls").sort_by("id")
    assert table["text"].to_pylist() == [None, None, None, None, "kept"]
    assert table["number"].to_pylist() == [None, None, None, None, 5]


def test_null_values_are_settable(data_dir, workspace, configure, ingest, raw, one):
    configure(workspace, {"ingest": {"csv": {"null_values": ["-"]}}})
    write(data_dir / "nulls.csv", "id,text\n1,NA\n2,-\n3,\n")
    assert one(ingest(data_dir)).outcome == "loaded"
    assert raw("nulls").sort_by("id")["text"].to_pylist() == ["NA", None, ""]


def test_a_header_with_no_rows_is_an_empty_table(data_dir, ingest, raw, one):
    write(data_dir / "empty.csv", "Id,Full Name,Q1,Q1\n")
    result = one(ingest(data_dir))
    assert result.outcome == "loaded", result.message
    table = raw("empty")
    assert table.num_rows == 0
    assert table.column_names[:4] == ["id", "full_name", "q1", "q1_2"]


def _changed_by_reading(value: bytes, integer: bool) -> bool:
    """The rule of ``_not_as_written``, one value at a time: what it computes over Arrow's buffers."""
    digit = b"0123456789"
    if value[:1] == b"+":
        return True
    if value[:1] == b"0" and len(value) > 1 and (integer or value[1] in digit):
        return True
    if value[:2] == b"-0" and len(value) > 2 and (integer or value[2] in digit):
        return True
    return not integer and re.fullmatch(rb"-?[0-9]{16,}", value) is not None


def test_the_vectorised_check_agrees_with_the_rule_value_by_value():
    from autoflux.ingest.readers.csv import _not_as_written

    pieces = ["0", "1", "9", "-", "+", ".", "e", "x", "é", "00", "-0", " ", "\t"]
    rng = random.Random(15)
    for _ in range(2_000):
        values = [
            None if rng.random() < 0.1 else rng.choice(["", "1" * rng.randint(14, 18), "".join(rng.choices(pieces, k=rng.randint(1, 4)))])
            for _ in range(rng.randint(0, 10))
        ]
        array = pa.array(values, rng.choice([pa.string(), pa.large_string()]))
        if len(array) > 2 and rng.random() < 0.5:  # a slice: offsets into the parent's buffers
            start = rng.randrange(len(array))
            array, values = array.slice(start, 3), values[start : start + 3]
        texts = [v.encode() for v in values if v]
        for integer in (True, False):
            found = _not_as_written(array, integer)
            if any(t[:1].isspace() or t[-1:].isspace() for t in texts):
                assert found is None, values
                continue
            assert found is not None, values
            assert found.tolist() == [bool(v) and _changed_by_reading(v.encode(), integer) for v in values], (values, integer)


def test_the_reader_tells_which_number_columns_are_written_plainly_in_every_value(tmp_path):
    """Spark's own CSV parser may type those (it knows an empty field as null, but no other null spelling, no white
    space around a number and no infinity words): a late NA, padded number, infinity or NaN takes a column out."""
    from autoflux.ingest.readers.csv import CsvOptions, first_block_types, read_csv

    late = {"e": "", "n": "NA", "s": " 7", "f": "-inf", "q": "NaN", "t": "x"}
    rows = "".join(f"{i},{i / 4},{i},{i},{i},{i / 2},{i / 8},t{i}\n" for i in range(ROWS))
    path = write(tmp_path / "late.csv", "id,x,e,n,s,f,q,t\n" + rows + f"{ROWS},0.5,{','.join(late.values())}\n")
    options = CsvOptions(block_size=1 << 16, null_values=("", "NA"))  # NaN is a number here, not a null spelling

    whole = first_block_types(path, options, every_block=True)
    assert [str(t) for t in whole.types] == ["int64", "double", "int64", "int64", "int64", "double", "double", "string"]
    assert whole.plain_numbers == {0, 1, 2}
    assert first_block_types(path, options).plain_numbers == frozenset()  # a first block tells nothing of the rest
    columns = read_csv(path, options, {}, find_plain_numbers=True)
    batch = list(columns.batches)[-1]
    last = batch.slice(batch.num_rows - 1).to_pylist()[0]  # the null spellings made null, as Arrow's reader does
    assert [last[c] for c in ("e", "n", "s", "t")] == [None, None, 7, "x"] and columns.plain_numbers == {0, 1, 2}
