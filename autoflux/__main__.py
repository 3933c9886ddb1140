"""The ``autoflux`` command (``python -m autoflux`` too)."""

from __future__ import annotations

import sys


def main() -> None:
    """Run the command line; for ``autoflux run`` of a workspace never built, start dbt's process first.

    dbt's import (1.5–2 s) then overlaps AutoFlux's own start-up as well as ingest: the process starts
    before AutoFlux imports its stages (~0.25 s). It ends with the command, or as soon as the run
    finds dbt will not run in it (the engine runs dbt in AutoFlux's own process: Spark). A workspace
    built before is most often up to date, and dbt's import would only take 1.5–2 CPU-s from a run that
    needs none: there the run starts dbt's process itself once it finds the build out of date.
    """
    arguments = sys.argv[1:]
    if next((arg for arg in arguments if not arg.startswith("-")), None) == "run":
        from autoflux.transform.dbt_process import never_built, prestart

        if never_built(workspace_option(arguments)):
            prestart(None)
    from autoflux.cli import main as command_line

    command_line()


def workspace_option(arguments: list[str]) -> str:
    """The ``--workspace`` (``-w``) of a command line, read ahead of the command line's parser (default: here)."""
    for i, argument in enumerate(arguments):
        if argument in ("-w", "--workspace") and i + 1 < len(arguments):
            return arguments[i + 1]
        if argument.startswith("--workspace="):
            return argument.removeprefix("--workspace=")
        if argument.startswith("-w") and not argument.startswith("--"):
            return argument.removeprefix("-w")
    return "."


if __name__ == "__main__":
    main()
