"""Mutation fuzz: damaged copies of valid CSV, TSV, gzip, NDJSON and JSON files, ingested as a user does.

Valid seed files are mutated with a fixed seed (truncated, bytes flipped, inserted or deleted, lines
duplicated or dropped, quotes, delimiters, NULs and BOMs inserted, gzip streams cut or concatenated,
text re-encoded) and ingested in batches, each mutant its own table, through the CLI in-process and,
for one batch, as a subprocess. Whatever the bytes, every run must keep the bad-input contract: exit
code 0 or 1, no traceback, one error line per failed file naming it and saying what to do, a failed
file's table as it was, and every other table untouched.
"""

from __future__ import annotations

import codecs
import gzip
import json
import os
import random
from collections.abc import Callable
from dataclasses import dataclass

import pytest

import autoflux
from autoflux.ingest.discover import _table_name

SEED = int(os.environ.get("AUTOFLUX_TEST_FUZZ_SEED", "20240610"))  # another seed explores other mutants
BATCHES = 6
PROCESS_BATCH = 0  # run as a subprocess; the others in-process

# --------------------------------------------------------------------------------- seed files


def _rows(delimiter: str = ",") -> str:
    cities = ["Paris, FR", "Zürich", "São Paulo", "Kraków", "Montréal", 'the "big" apple']
    lines = [delimiter.join(["id", "name", "score", "city", "joined"])]
    for i in range(1, 41):
        city = cities[i % len(cities)]
        if delimiter in city or '"' in city:
            city = '"' + city.replace('"', '""') + '"'
        lines.append(delimiter.join([str(i), f"Zoë {i}", f"{i * 1.25:.2f}", city, f"2024-01-{i % 28 + 1:02d}"]))
    return "\n".join(lines) + "\n"


def _records() -> list[dict]:
    return [
        {"id": i, "name": f"Zoë {i}", "score": i * 1.25, "tags": ["a", "b"][: i % 3], "ok": i % 2 == 0, "at": f"2024-01-{i % 28 + 1:02d}"}
        for i in range(1, 31)
    ]


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


@dataclass(frozen=True)
class Seed:
    name: str
    suffix: str  # .csv, .tsv, .csv.gz, .ndjson, …
    encoding: str  # of the text inside (after gunzip)
    text: str

    @property
    def gzipped(self) -> bool:
        return self.suffix.endswith(".gz")

    @property
    def delimiter(self) -> str:
        return "\t" if self.suffix.startswith(".tsv") else ","

    def plain(self) -> bytes:
        return self.text.encode(self.encoding)

    def data(self) -> bytes:
        return _gzip(self.plain()) if self.gzipped else self.plain()


NDJSON = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in _records())
SEEDS = [
    Seed("csv_utf8", ".csv", "utf-8", _rows()),
    Seed("csv_utf16", ".csv", "utf-16", _rows()),
    Seed("csv_latin1", ".csv", "latin-1", _rows().replace('"big" apple', "Köln")),
    Seed("tsv", ".tsv", "utf-8", _rows("\t")),
    Seed("csv_gz", ".csv.gz", "utf-8", _rows()),
    Seed("ndjson", ".ndjson", "utf-8", NDJSON),
    Seed("ndjson_gz", ".ndjson.gz", "utf-8", NDJSON),
    Seed("json_array", ".json", "utf-8", json.dumps(_records(), ensure_ascii=False, indent=1)),
]

# ---------------------------------------------------------------------------------- mutators
# Each takes the seed and a Random and returns the mutant's bytes (the whole file, compressed or not).

Mutator = Callable[[Seed, random.Random], bytes]


def _at(rng: random.Random, data: bytes | str) -> int:
    return rng.randrange(0, len(data) + 1)


def truncate(seed: Seed, rng: random.Random) -> bytes:
    data = seed.data()
    return data[: rng.randrange(1, len(data))]


def truncate_odd(seed: Seed, rng: random.Random) -> bytes:
    """A UTF-16 file cut at an odd byte, or mid surrogate pair: the issue's truncated download."""
    data = seed.data()
    return data[: rng.randrange(3, len(data) - 1, 2)]


def flip_bytes(seed: Seed, rng: random.Random) -> bytes:
    data = bytearray(seed.data())
    for _ in range(rng.randint(1, 4)):
        data[rng.randrange(len(data))] ^= rng.randrange(1, 256)
    return bytes(data)


def insert_bytes(seed: Seed, rng: random.Random) -> bytes:
    data, at = seed.data(), rng.randrange(len(seed.data()))
    return data[:at] + rng.randbytes(rng.randint(1, 8)) + data[at:]


def delete_bytes(seed: Seed, rng: random.Random) -> bytes:
    data = seed.data()
    at = rng.randrange(len(data) - 1)
    return data[:at] + data[at + rng.randint(1, 16) :]


def _text_mutant(change: Callable[[str, Seed, random.Random], str]) -> Mutator:
    """A change to the decoded text, encoded and compressed again as the seed was."""

    def mutate(seed: Seed, rng: random.Random) -> bytes:
        plain = change(seed.text, seed, rng).encode(seed.encoding, errors="replace")
        return _gzip(plain) if seed.gzipped else plain

    mutate.__name__ = change.__name__
    return mutate


@_text_mutant
def duplicate_line(text: str, seed: Seed, rng: random.Random) -> str:
    lines = text.splitlines(keepends=True)
    at = rng.randrange(len(lines))
    return "".join(lines[: at + 1] + lines[at:])


@_text_mutant
def drop_line(text: str, seed: Seed, rng: random.Random) -> str:
    lines = text.splitlines(keepends=True)
    at = rng.randrange(len(lines))
    return "".join(lines[:at] + lines[at + 1 :])


def _insert_text(*choices: str) -> Callable[[str, Seed, random.Random], str]:
    def insert(text: str, seed: Seed, rng: random.Random) -> str:
        for _ in range(rng.randint(1, 3)):
            at = _at(rng, text)
            text = text[:at] + rng.choice(choices).replace(",", seed.delimiter) + text[at:]
        return text

    return insert


insert_quote = _text_mutant(_insert_text('"', '"', "'", '""'))
insert_quote.__name__ = "insert_quote"
insert_delimiter = _text_mutant(_insert_text(",", ",,", "\n", "\r"))
insert_delimiter.__name__ = "insert_delimiter"
insert_nul = _text_mutant(_insert_text("\x00", "\x00\x00"))
insert_nul.__name__ = "insert_nul"
insert_bom_char = _text_mutant(_insert_text("\ufeff"))
insert_bom_char.__name__ = "insert_bom_char"


def insert_bom_bytes(seed: Seed, rng: random.Random) -> bytes:
    """A BOM's raw bytes (of any encoding) at the start or anywhere in the file or its gzip content."""
    bom = rng.choice([codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_LE])
    plain = seed.plain()
    at = 0 if rng.random() < 0.5 else _at(rng, plain)
    mutant = plain[:at] + bom + plain[at:]
    return _gzip(mutant) if seed.gzipped else mutant


def reencode(seed: Seed, rng: random.Random) -> bytes:
    """The text in another encoding than it says or seems to be, whole or from a random line on."""
    target = rng.choice(["utf-16-le", "utf-16-be", "utf-16", "utf-32", "cp1252", "utf-8-sig", "utf-8"])
    if target == seed.encoding:
        target = "utf-16-le"
    lines = seed.text.splitlines(keepends=True)
    cut = 0 if rng.random() < 0.5 else rng.randrange(1, len(lines))
    plain = "".join(lines[:cut]).encode(seed.encoding) + "".join(lines[cut:]).encode(target, errors="replace")
    return _gzip(plain) if seed.gzipped else plain


def gzip_cut(seed: Seed, rng: random.Random) -> bytes:
    """A gzip stream cut short: in the header, in the deflate data or in the trailer."""
    data = seed.data()
    return data[: rng.choice([rng.randrange(1, 10), rng.randrange(10, len(data) - 8), len(data) - rng.randint(1, 8)])]


def gzip_members(seed: Seed, rng: random.Random) -> bytes:
    """Two gzip members one after the other (valid gzip: the text twice), the second perhaps cut."""
    second = _gzip(seed.plain())
    if rng.random() < 0.5:
        second = second[: rng.randrange(1, len(second))]
    return seed.data() + second


def gzip_trailing_garbage(seed: Seed, rng: random.Random) -> bytes:
    return seed.data() + rng.randbytes(rng.randint(1, 64))


def gzip_not_gzip(seed: Seed, rng: random.Random) -> bytes:
    """A .gz name over plain text, or over text gzipped twice."""
    return seed.plain() if rng.random() < 0.5 else _gzip(seed.data())


COMMON: list[tuple[Mutator, int]] = [
    (truncate, 3),
    (flip_bytes, 2),
    (insert_bytes, 1),
    (delete_bytes, 1),
    (duplicate_line, 1),
    (drop_line, 1),
    (insert_quote, 1),
    (insert_delimiter, 1),
    (insert_nul, 1),
    (insert_bom_char, 1),
    (insert_bom_bytes, 1),
    (reencode, 2),
]
GZIP: list[tuple[Mutator, int]] = [(gzip_cut, 2), (gzip_members, 1), (gzip_trailing_garbage, 1), (gzip_not_gzip, 1)]
UTF16: list[tuple[Mutator, int]] = [(truncate_odd, 5)]


@dataclass(frozen=True)
class Mutant:
    index: int
    seed: Seed
    kind: str
    data: bytes


def mutants() -> list[Mutant]:
    """Every mutant, the same on every run; none equals another or its seed."""
    rng = random.Random(SEED)
    made: list[Mutant] = []
    seen: set[tuple[str, bytes]] = set()
    for seed in SEEDS:
        plan = COMMON + (GZIP if seed.gzipped else []) + (UTF16 if seed.encoding == "utf-16" else [])
        seen.add((seed.suffix, seed.data()))
        for mutate, count in plan:
            for _ in range(count):
                for _attempt in range(20):
                    data = mutate(seed, rng)
                    if (seed.suffix, data) not in seen:
                        break
                else:
                    raise AssertionError(f"{mutate.__name__} keeps making the same {seed.name} mutant")
                seen.add((seed.suffix, data))
                made.append(Mutant(len(made), seed, mutate.__name__, data))
    return made


MUTANTS = mutants()


def batch_files(batch: int) -> list[tuple[str, Mutant]]:
    """The batch's mutants (every seed in every batch) and their file names.

    The first mutant of each seed in a batch takes the name of the seed's stored table, so a failed
    mutant must leave a table with rows in it as it was; the others are new tables. Some names carry
    brackets, which the console must print as they are.
    """
    files, replaced = [], set()
    for mutant in MUTANTS[batch::BATCHES]:
        if mutant.seed.name not in replaced:
            replaced.add(mutant.seed.name)
            name = f"seed_{mutant.seed.name}"
        else:
            name = f"m{mutant.index:03d}_{mutant.seed.name}_{mutant.kind}" + (" [draft]" if mutant.index % 7 == 0 else "")
        files.append((name + mutant.seed.suffix, mutant))
    return files


def table_name(file_name: str) -> str:
    return _table_name(file_name)


# ------------------------------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def stored(tmp_path_factory, cli):
    """A workspace holding keeper.csv and every seed file as tables (version 0)."""
    root = tmp_path_factory.mktemp("fuzz")
    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if n.startswith("AUTOFLUX") and not n.startswith("AUTOFLUX_TEST_")]:
            patch.delenv(name)
        ws = autoflux.init(root / "ws")
        data = root / "stored"
        data.mkdir()
        (data / "keeper.csv").write_text("id,value\n1,one\n2,two\n3,three\n")
        for seed in SEEDS:
            (data / f"seed_{seed.name}{seed.suffix}").write_bytes(seed.data())
        result = cli("ingest", str(data), cwd=ws)
    assert result.exit_code == 0, result.output
    return ws, root


def test_the_mutants_are_many_and_varied():
    kinds = {m.kind for m in MUTANTS}
    assert 80 <= len(MUTANTS) <= 150
    assert {"truncate_odd", "gzip_cut", "gzip_members", "reencode", "insert_nul", "insert_bom_bytes"} <= kinds
    assert {table_name(name) for b in range(BATCHES) for name, _ in batch_files(b) if not name.startswith("seed_")}.__len__() == len(
        MUTANTS
    ) - len(SEEDS) * BATCHES


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")  # Python would print it as a traceback
@pytest.mark.parametrize("batch", range(BATCHES), ids=[f"batch{b}{'-process' if b == PROCESS_BATCH else ''}" for b in range(BATCHES)])
def test_mutated_files_fail_alone_and_cleanly(stored, batch, cli, cli_process, lake_snapshot):
    ws, root = stored
    folder = root / f"batch{batch}"
    folder.mkdir()
    files = batch_files(batch)
    for name, mutant in files:
        (folder / name).write_bytes(mutant.data)
    before = lake_snapshot(ws)
    assert before["keeper"] == (0, 3) and {f"seed_{seed.name}" for seed in SEEDS} <= set(before), before
    run = cli_process if batch == PROCESS_BATCH else cli
    result = run("ingest", str(folder), cwd=ws)
    after = lake_snapshot(ws)

    assert result.exit_code in (0, 1), result.output
    assert "Traceback" not in result.output
    stray = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith(("error:", "warning:"))]
    assert not stray, f"output that is not a one-line message:\n{result.stderr}"
    errors = result.error_lines()
    assert result.exit_code == (1 if errors else 0), result.output
    failed = set()
    for line in errors:
        named = [name for name, _ in files if f"{folder / name}:" in line or f"{folder / name}, line" in line]
        assert len(named) == 1, f"an error line must name one file of the batch: {line}"
        assert named[0] not in failed, f"two error lines for {named[0]}:\n{result.output}"
        assert " — " in line and len(line.split(" — ", 1)[1]) > 10, f"no advice in: {line}"
        failed.add(named[0])
        if dict(files)[named[0]].kind in ("truncate_odd", "gzip_cut"):  # the truncated download of issue 10
            assert "cut short" in line, line

    for name, mutant in files:
        table = table_name(name)
        if name in failed:
            assert after.get(table) == before.get(table), f"{name} ({mutant.kind}) failed but its table changed"
        else:
            previous = before[table][0] if table in before else -1
            assert table in after and after[table][0] == previous + 1, f"{name} ({mutant.kind}) neither failed nor loaded"
    batch_tables = {table_name(name) for name, _ in files}
    assert {t: s for t, s in after.items() if t not in batch_tables} == {t: s for t, s in before.items() if t not in batch_tables}
    assert after["keeper"] == (0, 3)
