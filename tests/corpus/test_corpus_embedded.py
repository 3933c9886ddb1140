"""Conformance on the embedded engine: every corpus file's raw table, value by value, against an
independent reading of the same file (:mod:`reference`).

A difference is either one of the deliberate kinds of :data:`reference.KINDS` (counted, and printed
with the corpus counts at the end) or a bug: the test fails listing each, naming the file, column,
row and both values.
"""

from __future__ import annotations

from collections import Counter

import pytest
from corpus_files import MIN_FILES, CorpusFile
from reference import Bug, Expected, Tally, compare, expected_csv, expected_excel, expected_json, expected_parquet

from autoflux.ingest.schema import LINEAGE_COLUMNS


def test_the_corpus_has_enough_real_files(corpus):
    per_package = Counter(f.package for f in corpus)
    formats = Counter(f.format for f in corpus)
    print(f"corpus: {len(corpus)} files; per package {dict(per_package)}; per format {dict(formats)}")
    assert len(corpus) >= MIN_FILES, f"only {len(corpus)} corpus files ({dict(per_package)}): is the dev extra installed?"
    assert {"csv", "json", "excel", "parquet"} <= set(formats), formats
    assert any(f.path.name.endswith(".gz") for f in corpus), "no gzip file in the corpus"


def expectations(corpus_file: CorpusFile) -> dict[str | None, Expected]:
    """The independent reading of one file: sheet (None but for workbooks) → what its table holds."""
    if corpus_file.format == "csv":
        return {None: expected_csv(corpus_file.path)}
    if corpus_file.format == "json":
        return {None: expected_json(corpus_file.path)}
    if corpus_file.format == "parquet":
        return {None: expected_parquet(corpus_file.path)}
    return expected_excel(corpus_file.path)


def raw_table(workspace, table: str):
    import deltalake

    arrow = deltalake.DeltaTable(str(workspace / "lake" / "raw" / table)).to_pyarrow_table()
    assert arrow.column_names[-3:] == list(LINEAGE_COLUMNS), f"raw.{table}: no lineage columns"
    return arrow.drop_columns(list(LINEAGE_COLUMNS))


def check_file(ingested, corpus_file: CorpusFile, tally: Tally) -> None:
    name = str(corpus_file)
    tables = ingested.tables.get(corpus_file.index, {})
    for sheet, expected in expectations(corpus_file).items():
        label = name if sheet is None or len(tables) <= 1 else f"{name}[{sheet}]"
        table = tables.get(sheet) or (tables.get(None) if len(tables) == 1 else None)
        if table is None and len(tables) == 1:
            table = next(iter(tables.values()))
        outcome, message = ingested.outcomes.get(table, ("not ingested", None)) if table else ("not found", None)
        bugs: list[Bug] = []
        if expected.fails is not None:
            if outcome != "failed":
                bugs.append(Bug(label, "load", expected=f"fails: {expected.fails}", got=outcome))
        elif outcome != "loaded":
            bugs.append(Bug(label, "load", expected="loaded", got=f"{outcome}: {message}"))
        else:
            bugs = compare(label, expected, raw_table(ingested.workspace, table))
        tally.add(corpus_file.format, expected, bugs)


def test_every_raw_table_is_its_file(embedded, corpus):
    tally = Tally()
    for corpus_file in corpus:
        try:
            check_file(embedded, corpus_file, tally)
        except Exception as error:  # noqa: BLE001 - the reference reader itself must name the file
            raise AssertionError(f"{corpus_file}: {error!r}") from error
    summary = tally.report(f"embedded engine (ingest {embedded.seconds:.1f}s)")
    print(summary)
    by_file: dict[str, list[Bug]] = {}
    for bug in tally.bugs:
        by_file.setdefault(bug.file, []).append(bug)
    listing = "\n".join(f"  {bug}" for bugs in by_file.values() for bug in bugs[:3])
    assert not tally.bugs, f"{len(by_file)} corpus files differ from the independent reader:\n{listing}\n{summary}"


@pytest.mark.parametrize("kind", ["csv", "json", "excel", "parquet"])
def test_each_format_is_in_the_corpus_and_loads(embedded, corpus, kind):
    """At least one file of each format loads (a reader broken for a whole format shows here alone)."""
    loaded = [
        f
        for f in corpus
        if f.format == kind and any(embedded.outcomes.get(t, ("",))[0] == "loaded" for t in embedded.tables.get(f.index, {}).values())
    ]
    assert loaded, f"no {kind} file of the corpus loaded"
