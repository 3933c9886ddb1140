"""Reading ahead, bounded: the writer reads a file's next batches in a thread while it encodes the last
(writer.read_ahead), and Arrow's CSV reader reads only a few blocks ahead of the batches taken."""

from __future__ import annotations

import threading
import time

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from autoflux.exceptions import IngestError
from autoflux.ingest.readers.csv import READ_AHEAD_BLOCKS, READ_AHEAD_WAIT, _QuoteCounter
from autoflux.ingest.writer import read_ahead


def test_items_come_in_order_from_another_thread():
    threads = []

    def items():
        for i in range(100):
            threads.append(threading.current_thread())
            yield i

    assert list(read_ahead(items())) == list(range(100))
    assert {t.name for t in threads} == {"autoflux-read-ahead"}


def test_an_error_while_reading_is_raised_to_the_caller_after_the_items_before_it():
    def items():
        yield 1
        yield 2
        raise IngestError("bad row", path="t.csv", hint="fix it")

    got = []
    with pytest.raises(IngestError, match="bad row"):
        for item in read_ahead(items()):
            got.append(item)
    assert got == [1, 2]


def test_a_caller_that_stops_stops_the_reading():
    made = []

    def items():
        for i in range(1000):
            made.append(i)
            yield i

    ahead = read_ahead(items(), depth=2)
    assert next(ahead) == 0
    ahead.close()  # joins the thread
    assert len(made) <= 5
    assert not any(t.name == "autoflux-read-ahead" for t in threading.enumerate())


def test_arrow_reads_only_a_few_blocks_ahead_of_the_batches_taken(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("a,b\n" + "".join(f"{i},{i * 7}\n" for i in range(300_000)))  # about 60 blocks of 64 KiB
    block = 1 << 16
    counter = _QuoteCounter(pa.OSFile(str(path)), ahead=READ_AHEAD_BLOCKS)
    reader = pacsv.open_csv(counter, read_options=pacsv.ReadOptions(block_size=block))
    rows = reader.read_next_batch().num_rows
    counter.taken()
    time.sleep(0.3)  # unbounded, Arrow's reader is 32 blocks ahead by now
    assert counter.bytes <= (READ_AHEAD_BLOCKS + 2) * block
    started = time.perf_counter()
    counter.stop_waiting()  # a reader closed while a read waits for room does not wait for it
    reader.close()
    counter.close()
    assert time.perf_counter() - started < READ_AHEAD_WAIT
    assert 0 < rows < 300_000


def test_a_bounded_read_gives_every_row(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("a\n" + "".join(f"{i}\n" for i in range(200_000)))
    counter = _QuoteCounter(pa.OSFile(str(path)), ahead=2)
    reader = pacsv.open_csv(counter, read_options=pacsv.ReadOptions(block_size=1 << 14))
    values = []
    for batch in reader:
        counter.taken()
        values += batch.column(0).to_pylist()
    counter.close()
    assert values == list(range(200_000))


def test_batches_are_gathered_into_row_groups_of_duckdbs_size_in_order(monkeypatch):
    from autoflux.ingest import writer

    monkeypatch.setattr(writer, "ROW_GROUP_ROWS", 100)
    schema = pa.schema([("i", pa.int64())])
    batches = [pa.record_batch([pa.array(range(start, start + 70))], schema=schema) for start in range(0, 350, 70)]
    groups = list(writer._row_groups(iter(batches), schema))
    assert [g.num_rows for g in groups] == [100, 100, 100, 50]  # batches split at the row group's end
    assert pa.concat_tables(groups)["i"].to_pylist() == list(range(350))


def test_a_row_group_of_wide_rows_ends_at_its_size_in_bytes(monkeypatch):
    from autoflux.ingest import writer

    schema = pa.schema([("i", pa.int64())])
    monkeypatch.setattr(writer, "ROW_GROUP_BYTES", 8 * 60)  # 60 rows of int64
    batches = [pa.record_batch([pa.array(range(start, start + 50))], schema=schema) for start in range(0, 200, 50)]
    groups = list(writer._row_groups(iter(batches), schema))
    assert [g.num_rows for g in groups] == [100, 100]
