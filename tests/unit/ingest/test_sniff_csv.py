"""One decision for every engine: the CSV sniffer's encoding, delimiter, header and quoted line breaks."""

from __future__ import annotations

import pytest

from autoflux.ingest.readers.csv import CsvOptions, sniff_csv


@pytest.mark.parametrize(
    ("text", "spans"),
    [
        ('a,b\n1,"x\ny"\n', True),
        ('a,b\r\n1,"x\r\ny"\r\n', True),
        ('a,b\n1,"x y"\n2,"z"\n', False),
        ('a,b\n1,"x ""q"""\n2,""\n', False),
        ('a,b\n1,"x ""q"" \nstill quoted"\n', True),
        ("a,b\n1,2\n", False),
    ],
)
def test_quoted_line_breaks_are_found(tmp_path, text, spans):
    path = tmp_path / "f.csv"
    path.write_bytes(text.encode())
    assert sniff_csv(path, CsvOptions(), scan=True).quoted_line_breaks is spans


def test_a_quoted_line_break_past_the_first_chunk_is_found(tmp_path):
    path = tmp_path / "f.csv"
    path.write_bytes(b"a,b\n" + b'1,"' + b"x" * (4 << 20) + b'\ny"\n')
    assert sniff_csv(path, CsvOptions(), scan=True).quoted_line_breaks is True
    path.write_bytes(b"a,b\n" + b'1,"' + b"x" * ((4 << 20) - 7) + b'""y"\n2,3\n')  # a doubled quote across chunks
    assert sniff_csv(path, CsvOptions(), scan=True).quoted_line_breaks is False


def test_header_names_are_kept_as_written_with_the_dialect(tmp_path):
    path = tmp_path / "f.csv"
    path.write_bytes("Q1;Q1;;Name\r\n1;2;3;Ann\r\n".encode("cp1252"))
    dialect = sniff_csv(path, CsvOptions())
    assert (dialect.delimiter, dialect.names, dialect.line_end) == (";", ("Q1", "Q1", "", "Name"), "\r\n")
    assert dialect.quoted_line_breaks is None  # not scanned
    assert sniff_csv(path, CsvOptions(delimiter=",", encoding="latin-1")).names == ("Q1;Q1;;Name",)
