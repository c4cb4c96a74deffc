"""The Dask engine, under the name it has always had: it lives in eligibility.batch.dask (see there)."""

from .batch.dask import connect, evaluate_chunks, evaluate_dask_frame

__all__ = ["connect", "evaluate_chunks", "evaluate_dask_frame"]
