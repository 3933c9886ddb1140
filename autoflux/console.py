"""Everything the CLI shows: messages, progress bars, tables, JSON; quiet and JSON modes."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from typing import Any

from rich.console import Console as RichConsole
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table


class Console:
    """Output for people (rich, on stderr for progress) or for scripts (``--json``, ``--quiet``)."""

    def __init__(self, *, quiet: bool = False, json_output: bool = False) -> None:
        self.quiet = quiet or json_output
        self.json_output = json_output
        self.out = RichConsole(highlight=False, soft_wrap=True)
        self.err = RichConsole(stderr=True, highlight=False, soft_wrap=True)

    def info(self, message: str) -> None:
        if not self.quiet:
            self.out.print(escape(message))

    def warn(self, message: str) -> None:
        if not self.json_output:
            self.err.print(f"[yellow]warning:[/] {escape(message)}")

    def error(self, message: str) -> None:
        if self.json_output:
            sys.stdout.write(json.dumps({"error": message}) + "\n")
        else:
            self.err.print(f"[bold red]error:[/] {escape(message)}", markup=True)

    def data(self, payload: Any) -> None:
        """Machine-readable result: printed only in JSON mode."""
        if self.json_output:
            sys.stdout.write(json.dumps(payload, default=str, indent=2) + "\n")

    def table(self, title: str, columns: list[str], rows: list[list[Any]]) -> None:
        if self.quiet:
            return
        table = Table(title=title, title_justify="left", show_edge=False)
        for column in columns:
            table.add_column(column, justify="right" if column in ("rows", "version", "bytes", "seconds") else "left")
        for row in rows:
            table.add_row(*["" if v is None else escape(str(v)) for v in row])
        self.out.print(table)

    @contextlib.contextmanager
    def progress(self, *, transfer: bool = False) -> Iterator[Progress | None]:
        """A live progress display on stderr (None when quiet)."""
        if self.quiet or not self.err.is_terminal and not self.err.is_jupyter:
            yield None
            return
        columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn()]
        columns += [DownloadColumn()] if transfer else [TextColumn("{task.fields[detail]}")]
        with Progress(*columns, TimeElapsedColumn(), console=self.err, transient=True) as progress:
            yield progress
