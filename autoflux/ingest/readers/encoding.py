"""A data file's bytes: compression by suffix, the text encoding, and lines (for errors and bad rows)."""

from __future__ import annotations

import codecs
import collections
import re
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from autoflux.exceptions import IngestError

COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd"}
SAMPLE_BYTES = 1 << 20


def split_suffixes(path: Path) -> tuple[str, str | None]:
    """The data format suffix and the compression of ``path`` (``train.csv.gz`` → ``.csv``, ``gzip``)."""
    suffixes = [s.lower() for s in path.suffixes]
    compression = COMPRESSIONS.get(suffixes[-1]) if suffixes else None
    if compression:
        suffixes = suffixes[:-1]
    return (suffixes[-1] if suffixes else ""), compression


def open_bytes(path: Path) -> pa.NativeFile:
    _, compression = split_suffixes(path)
    return pa.input_stream(str(path), compression=compression)


def read_head(path: Path, size: int = SAMPLE_BYTES) -> bytes:
    with open_bytes(path) as stream:
        return stream.read(size)


_LATIN_ALPHABETS = {
    "Basic Latin",
    "Control character",
    "Latin-1 Supplement",
    "Latin Extended-A",
    "Latin Extended-B",
    "Latin Extended Additional",
    "General Punctuation",
    "Currency Symbols",
    "Spacing Modifier Letters",
}


def detect_encoding(path: Path, head: bytes) -> str:
    """``utf-8`` (with or without BOM) when the head decodes as such, else the best guess.

    A sample cannot tell Latin code pages apart (French text reads as well in cp1257 as in
    cp1252), so when the best guess is Latin-script text, cp1252 (a superset of latin-1's
    letters, what spreadsheets save) wins if it decodes the bytes; other scripts keep the guess.
    """
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(head).best()
    if best is None:
        raise IngestError(
            "cannot tell which text encoding this file uses",
            path=path,
            hint="set ingest.csv.encoding in autoflux.yml (for example latin-1 or cp1252)",
        )
    if set(best.alphabets) <= _LATIN_ALPHABETS:
        try:
            head.decode("cp1252")
            return "cp1252"
        except UnicodeDecodeError:
            pass
    return best.encoding


_LINE_END = re.compile(rb"\r\n|\n|\r")


def lines(path: Path) -> Iterator[bytes]:
    """The file's lines without their ends, which may be \\r\\n, \\n or \\r, mixed (streamed)."""
    with open_bytes(path) as stream:
        rest = b""
        while chunk := stream.read(1 << 20):
            data = rest + chunk
            cut = len(data) - 1 if data.endswith(b"\r") else len(data)  # a \r may be half of a \r\n
            parts = _LINE_END.split(data[:cut])
            rest = parts.pop() + data[cut:]
            yield from parts
        parts = _LINE_END.split(rest)
        yield from parts[:-1] if parts[-1] == b"" else parts


def find_line(path: Path, needle: bytes | None) -> int | None:
    """The 1-based line equal to ``needle``, else the first starting with it (errors only: it reads the file)."""
    if not needle:
        return None
    needle, first_prefix = _LINE_END.split(needle)[0], None
    for number, line in enumerate(lines(path), start=1):
        if line == needle:
            return number
        if first_prefix is None and line.startswith(needle):
            first_prefix = number
    return first_prefix


def locate_lines(path: Path, texts: list[str], encoding: str) -> list[int | None]:
    """The line where each of ``texts`` (rows, in file order when equal) starts, in one pass over the file."""
    wanted: dict[bytes, collections.deque[int]] = {}
    for index, text in enumerate(texts):
        wanted.setdefault(_LINE_END.split(text.encode(encoding, errors="replace"))[0], collections.deque()).append(index)
    found: list[int | None] = [None] * len(texts)
    for number, line in enumerate(lines(path), start=1):
        if not wanted:
            break
        if waiting := wanted.get(line):
            found[waiting.popleft()] = number
            if not waiting:
                del wanted[line]
    return found


_TEXT_LINE_END = re.compile(r"\r\n|\n|\r")


def first_invalid_line(path: Path, encoding: str) -> int | None:
    """The 1-based line of the first bytes ``encoding`` cannot decode (the last line when the file
    ends in the middle of a character), else None. The file is decoded as one stream, so lines are
    counted right in any encoding (in UTF-16 a line end is two bytes)."""
    decoder = codecs.getincrementaldecoder(encoding)()
    ends, after_cr = 0, False
    with open_bytes(path) as stream:
        while True:
            chunk = stream.read(1 << 20)
            state = decoder.getstate()
            try:
                text = decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as error:  # error.object: the bytes the decoder held, then chunk
                valid = codecs.getincrementaldecoder(encoding)(errors="replace")
                valid.setstate((b"", state[1]))
                text = valid.decode(error.object[: error.start])
                return ends + len(_TEXT_LINE_END.findall(text)) - (after_cr and text.startswith("\n")) + 1
            if not chunk:
                return None
            ends += len(_TEXT_LINE_END.findall(text)) - (after_cr and text.startswith("\n"))
            after_cr = text.endswith("\r") if text else after_cr
