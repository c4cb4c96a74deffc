"""Process-wide settings of the console command, made before numpy, polars and the batch's threads start."""

from __future__ import annotations

import os


def process_defaults() -> None:
    """Settings read once, when numpy and polars load; a value the user set is kept.

    OpenBLAS starts a spinning thread per core although no command does linear algebra: ~0.1-0.3 s of
    CPU taken from a batch's two cores. polars' jemalloc makes 4 arenas per core; threads that
    allocate at once then spread each chunk's buffers over more of them: two arenas, ~5 % less CPU
    (fewer fresh pages to fault in) and a lower peak RSS (docs/batch.md, sixth session)."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("_RJEM_MALLOC_CONF", "narenas:2")


def two_malloc_arenas() -> None:
    """glibc gives threads that allocate at once heap arenas of their own (up to 8 per core): the batch's
    reader and workers then hold 10-20 % more memory, more the longer the file. Two arenas (before any
    thread starts): a lower peak, the same speed. Elsewhere than glibc this does nothing."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(-8, 2)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass
