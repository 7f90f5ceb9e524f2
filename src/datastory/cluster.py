"""An existing Dask cluster: its address, a connection with a clear message when nothing answers, and the
deterministic batches the stages send to it.

The address comes from a parameter when the stage has one (`scheduler_address` in params/forecast.yaml), else
from the environment variable DASK_SCHEDULER_ADDRESS; empty means no external cluster. Nothing here starts a
cluster or connects at import.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from .errors import ClusterError

ENV = "DASK_SCHEDULER_ADDRESS"
CONNECT_TIMEOUT = 20   # seconds for the scheduler to answer
WORKER_TIMEOUT = 60    # seconds for at least one worker to join it
FIX = (f"start the scheduler and its workers (`dask scheduler`, then `dask worker ADDRESS`), correct the address "
       f"({ENV}, or scheduler_address in params/forecast.yaml), or unset it to run on this machine")

T = TypeVar("T")


def address(configured: str = "") -> str:
    """The scheduler to use: the configured one, else DASK_SCHEDULER_ADDRESS, else "" (none)."""
    return configured.strip() or os.environ.get(ENV, "").strip()


@contextlib.contextmanager
def connect(addr: str, timeout: float | None = None, worker_timeout: float | None = None) -> Iterator[Any]:
    """A distributed Client on the scheduler at `addr` with at least one worker, closed on exit.

    ClusterError names the address and the fix when no scheduler answers in `timeout` seconds (default
    CONNECT_TIMEOUT), or when no worker has joined it in `worker_timeout` seconds (default WORKER_TIMEOUT):
    work sent there would wait forever.
    """
    from distributed import Client

    timeout = CONNECT_TIMEOUT if timeout is None else timeout
    worker_timeout = WORKER_TIMEOUT if worker_timeout is None else worker_timeout

    try:
        client = Client(addr, timeout=timeout)
    except (OSError, TimeoutError, ValueError) as exc:
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ClusterError(f"no Dask scheduler answered at {addr!r} within {timeout:g} s ({why})", fix=FIX) from None
    with client:
        try:
            client.wait_for_workers(1, timeout=worker_timeout)
        except (OSError, TimeoutError):
            raise ClusterError(f"the Dask scheduler at {addr!r} has no worker (none joined within "
                               f"{worker_timeout:g} s)", fix=FIX) from None
        yield client


def batches(items: Sequence[T], n_workers: int, per_worker: int = 4, max_size: int = 8) -> list[list[T]]:
    """`items` dealt round-robin (item i to batch i mod k) into k non-empty batches, in a fixed order.

    k gives each worker at least `per_worker` batches, so one slow batch does not leave the others idle at the
    end, and keeps each batch to at most `max_size` items (more tasks, but each still worth its round trip);
    never more batches than items. Dealing spreads neighbouring items, often of similar cost, over the batches.
    """
    if not items:
        return []
    k = max(max(1, n_workers) * per_worker, -(-len(items) // max(1, max_size)))
    k = min(len(items), k)
    return [list(items[i::k]) for i in range(k)]
