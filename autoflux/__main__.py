"""The ``autoflux`` command (``python -m autoflux`` too)."""

from __future__ import annotations

import sys


def main() -> None:
    """Run the command line; for ``autoflux run``, start dbt's process first.

    dbt's import (~1 s) then overlaps AutoFlux's own start-up as well as ingest: the process starts
    before AutoFlux imports its stages (~0.25 s). It ends with the command, or as soon as the run
    finds dbt will not run in it (the build is up to date, or the engine runs dbt in AutoFlux's own
    process: Spark).
    """
    if next((arg for arg in sys.argv[1:] if not arg.startswith("-")), None) == "run":
        from autoflux.transform.dbt_process import prestart

        prestart(None)
    from autoflux.cli import main as command_line

    command_line()


if __name__ == "__main__":
    main()
