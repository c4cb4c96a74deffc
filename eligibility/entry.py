"""The `eligibility` console command's first steps, before typer and the command line's own modules load.

`eligibility batch LIST ...` spends its first ~0.1 s importing typer and pydantic and parsing the command
line. Reading the list does not depend on any of it, so when the arguments plainly name a file to
read with the local engine, the reading starts first (batch.run.read_early); run_batch takes that read
over if it is asked for the same file with the same chunk size, and closes it otherwise. A guess that
misses costs only the read: the command line is parsed, checked and reported by typer as ever.
"""

from __future__ import annotations

import sys

from .process import process_defaults, two_malloc_arenas

# `batch` options that take a value, and its flags (tests/test_batch_files.py checks both against typer's)
BATCH_VALUE_OPTIONS = frozenset({"-o", "--output", "--on", "--engine", "--scheduler", "--workers", "--chunk-rows",
                                 "--only", "--rules"})
BATCH_FLAGS = frozenset({"--long", "--facts-to-collect", "--no-facts-to-collect"})


def batch_read_args(args: list[str]) -> tuple[str, int | None, bool] | None:
    """(input file, --chunk-rows, --long) when `args` (after `batch`) plainly ask the local engine to read
    one file into an output; None for anything else (an unknown option, --help, another engine, two file
    names, no output: typer would refuse the command at once, so nothing is read for it)."""
    path, chunk_rows, long, output = None, None, False, False
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("-") and arg != "-":
            name, eq, value = arg.partition("=")
            if name in BATCH_VALUE_OPTIONS:
                if not eq:
                    i += 1
                    if i == len(args):
                        return None
                    value = args[i]
                output = output or name in ("-o", "--output")
                if name == "--engine" and value != "polars":
                    return None
                if name == "--chunk-rows":
                    try:
                        chunk_rows = int(value)
                    except ValueError:
                        return None
            elif name in BATCH_FLAGS and not eq:
                long = long or name == "--long"
            else:
                return None
        elif path is None:
            path = arg
        else:
            return None
        i += 1
    return (path, chunk_rows, long) if path and output else None


def main() -> None:
    process_defaults()
    if sys.argv[1:2] == ["batch"]:
        import gc

        gc.disable()  # until the rules are loaded (cli.batch): the imports' objects all live on, and the
        # ~0.05 s of collections over them would fall in the start-up, where one core does everything
        guess = batch_read_args(sys.argv[2:])
        if guess is not None:
            two_malloc_arenas()  # before the reader's thread starts
            from .batch.run import read_early

            read_early(*guess)
    from .cli import main as cli_main

    cli_main()
