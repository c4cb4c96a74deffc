"""The batch on a Dask cluster: the same chunks, evaluated by the same compiled code on the workers.

(It lives inside the batch package, which calls it for engine="dask", and uses only the package's
public chunk.evaluate_chunk: no import goes back and forth. eligibility.distributed re-exports it.)

    run_batch(input, output, on, engine="dask", scheduler="tcp://10.0.0.5:8786")   # a running cluster
    run_batch(input, output, on, engine="dask")                                     # a local cluster

The client reads the input in chunks exactly as the single-machine run does (same reader, same chunk
boundaries), ships each raw chunk to a worker, which parses and evaluates it with
chunk.evaluate_chunk (the columnar Program compiled once per worker and rule set), and writes the
results in input order. The output is therefore byte-for-byte the single-machine output. At most
`2 × workers` chunks are in flight, so the client's memory stays bounded whatever the input size.

For data that already lives in a Dask DataFrame (e.g. Parquet on shared storage),
`evaluate_dask_frame(ddf, on)` maps the same evaluation over its partitions.

Dask is imported lazily: the package works without it (pip install 'eligibility[dask]').
"""

from __future__ import annotations

import collections
import datetime as dt
from typing import Any, Iterable, Iterator

import polars as pl

from ..errors import BatchInputError
from .chunk import evaluate_chunk


def _import():
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as e:  # pragma: no cover - dask is an optional dependency
        raise BatchInputError("--engine dask 需要安装 dask / needs dask: pip install 'eligibility[dask]' "
                              f"({e})") from None
    return Client, LocalCluster


def _evaluate(raw: pl.DataFrame, on: dt.date, rules, offset: int, long: bool, facts_to_collect: bool = True):
    return evaluate_chunk(raw, on, rules, offset, long, facts_to_collect=facts_to_collect)


def connect(scheduler: str | None = None, workers: int | None = None, processes: bool = True):
    """(client, cluster or None): a client of the scheduler at `scheduler`, or of a new local cluster."""
    Client, LocalCluster = _import()
    if scheduler:
        try:
            return Client(scheduler, timeout="30s"), None
        except (OSError, TimeoutError) as e:
            raise BatchInputError(f"--scheduler {scheduler}: 无法连接 / cannot connect to the Dask scheduler: {e}") \
                from None
    cluster = LocalCluster(n_workers=workers or 2, threads_per_worker=1, processes=processes,
                           dashboard_address=None)
    return Client(cluster), cluster


def evaluate_chunks(chunks: Iterable[pl.DataFrame], on: dt.date, rules, long: bool = False,
                    scheduler: str | None = None, workers: int | None = None, client: Any = None,
                    in_flight: int | None = None, facts_to_collect: bool = True) -> Iterator:
    """ChunkResults in input order, each chunk evaluated on the cluster."""
    own_cluster = None
    own_client = None
    if client is None:
        own_client, own_cluster = connect(scheduler, workers)
        client = own_client
    try:
        n_workers = max(1, len(client.scheduler_info().get("workers", {})) or (workers or 2))
        limit = in_flight or 2 * n_workers
        rules_ref = client.scatter(rules, broadcast=True)
        pending: collections.deque = collections.deque()
        offset = 0
        for raw in chunks:
            pending.append(client.submit(_evaluate, raw, on, rules_ref, offset, long, facts_to_collect, pure=False))
            offset += raw.height
            while len(pending) >= limit:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        if own_client is not None:
            own_client.close()
        if own_cluster is not None:
            own_cluster.close()


def evaluate_dask_frame(ddf, on: Any = None, rules=None, long: bool = False):
    """A Dask DataFrame of companies -> a Dask DataFrame of summary rows (or long rows), partition by
    partition with chunk.evaluate_chunk. Row numbers count across partitions, in order."""
    import dask
    import dask.dataframe as dd

    from ..evaluate import resolve_rules
    from ..validity import as_date

    rules = resolve_rules(rules)
    on = as_date(on)
    lengths = ddf.map_partitions(len).compute()
    offsets = [0]
    for n in list(lengths)[:-1]:
        offsets.append(offsets[-1] + int(n))

    def one(part, offset):
        raw = pl.from_pandas(part, include_index=False)
        res = evaluate_chunk(raw, on, rules, offset, long)
        return (res.long.frame() if long else res.summary).to_pandas(use_pyarrow_extension_array=True)

    empty = pl.from_pandas(ddf._meta, include_index=False)
    res0 = evaluate_chunk(empty, on, rules, 0, long)
    meta = (res0.long.frame() if long else res0.summary).to_pandas(use_pyarrow_extension_array=True)
    parts = [dask.delayed(one)(p, off) for p, off in zip(ddf.to_delayed(), offsets)]
    return dd.from_delayed(parts, meta=meta, verify_meta=False)
