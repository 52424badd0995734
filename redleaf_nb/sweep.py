"""Parameter sweeps: the points of a grid fanned out on Dask distributed, gathered into
one tidy DataFrame with the parameter columns attached.

Backends: ``"serial"`` (this process, in order), ``"local"`` (a ``LocalCluster`` of
worker processes on this machine, one thread each: the kernels are jitted and hold the
GIL), the address of any running Dask scheduler, or a ``distributed.Client``.

* **Seeds.** Every point gets its own seed from one root seed: a
  ``numpy.random.SeedSequence`` of the root, the point's replicate number and a digest
  of its parameters. So a point's seed, and every parameter and outcome column, are the
  same whatever the backend, the number of workers and the order; only the columns an
  experiment declares ``measured`` (times, rates) differ. An experiment with a ``seed``
  parameter gets the point's seed there, unless the grid sets it.
* **Cache.** A finished point is stored (CSV under ``data/results/sweeps/<name>/points/``)
  under a key of its experiment, parameters, replicate and the code version, with a flag
  for uncommitted changes (the key numba's cache uses, :mod:`redleaf_nb.codeversion`).
  A point with a stored result is not run again: an interrupted sweep resumes, and a
  changed parameter reruns only its points.
* **Timing.** An experiment that measures time (``timing_sensitive``) has its points run
  one per machine (a lock on a file in the host's temporary folder), each pinned to one core:
  on two cores two measurements at once perturb each other through the shared caches and
  memory. Each point records the worker, the core and its peak memory.
* **Failures.** A point that raises is reported with its parameters and error
  (``result.attrs["failures"]``); the other points complete.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import io
import itertools
import json
import os
import socket
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import experiments as ex
from .measure import pinned

CONNECT_TIMEOUT_S = 3
SERIAL_BELOW = 3            # fewer points than this: no cluster is worth starting
TIMING_LOCK = Path(tempfile.gettempdir()) / "redleaf-nb-timing.lock"   # one per host
SEED_LIMIT = 2 ** 31        # the seeds a sweep hands out: 0 .. 2**31 - 1


class SweepError(RuntimeError):
    """A sweep that cannot start: a bad grid, a backend that does not answer."""


@dataclass(frozen=True)
class Point:
    """One run of the sweep: the experiment's parameters (resolved and checked), its
    replicate number, its seed and its cache key."""
    params: dict
    replicate: int
    seed: int
    key: str


def code_key() -> str:
    """The code version the results come from, ``+uncommitted`` if the checkout has
    uncommitted changes (results of code that no commit holds)."""
    from .codeversion import code_version, uncommitted_changes
    return code_version() + ("+uncommitted" if uncommitted_changes() else "")


def _values(text: str) -> list[str]:
    """``a,b,c`` or an inclusive integer range ``12..26``."""
    if ".." in text and "," not in text:
        low, high = text.split("..", 1)
        return [str(v) for v in range(int(low), int(high) + 1)]
    return [v for v in text.split(",") if v]


def parse_grid(items: list[str]) -> dict[str, list[str]]:
    """``KEY=V1,V2`` (or ``KEY=12..26``) items as a grid; ``KEY1+KEY2=...`` gives
    several parameters the same value in each point (``min_log2+max_log2=12..26``)."""
    grid = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not key or not _values(values):
            raise SweepError(f"sweep: --grid {item!r} is not KEY=V1,V2,... (or KEY=LOW..HIGH)")
        grid[key] = _values(values)
    return grid


def points(exp: ex.Experiment, grid: dict, replicates: int = 1, root_seed: int = 0,
           full: bool = False) -> list[Point]:
    """The grid's points in order (the product of its values, then the replicates),
    each checked by the experiment's own parameters."""
    valid = [p.name for p in exp.params]
    for key in grid:
        unknown = [k for k in key.split("+") if k not in valid]
        if unknown:
            raise SweepError(f"sweep {exp.name}: no parameter {', '.join(unknown)} "
                             f"(valid: {', '.join(valid)})")
        if not len(grid[key]):
            raise SweepError(f"sweep {exp.name}: no values for {key}")
    if replicates < 1:
        raise SweepError(f"sweep {exp.name}: replicates must be >= 1, not {replicates}")
    has_seed = "seed" in valid and not any("seed" in k.split("+") for k in grid)
    code = code_key()           # once: it reads the checkout's files and asks git
    out = []
    for combo in itertools.product(*grid.values()):
        given = {k: v for key, v in zip(grid, combo) for k in key.split("+")}
        try:
            params = exp.resolve(full, **given)
        except ex.ParamError as e:
            raise SweepError(f"sweep: {e}") from None
        for replicate in range(replicates):
            seed = _seed(root_seed, replicate, params)
            if has_seed:
                params = {**params, "seed": seed}
            out.append(Point(params, replicate, seed, _key(exp.name, params, replicate, code)))
    return out


def _seed(root_seed: int, replicate: int, params: dict) -> int:
    """The point's seed: from the root, the replicate and the parameters (not the seed
    itself), never from the point's place in the grid or the order points ran in."""
    digest = hashlib.sha256(json.dumps({k: v for k, v in params.items() if k != "seed"},
                                       sort_keys=True).encode()).digest()
    words = np.frombuffer(digest[:16], np.uint32).tolist()
    state = np.random.SeedSequence(root_seed, spawn_key=(replicate, *words)).generate_state(1)
    return int(state[0]) % SEED_LIMIT


def _key(name: str, params: dict, replicate: int, code: str) -> str:
    text = json.dumps({"experiment": name, "params": params, "replicate": replicate,
                       "code": code}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def cache_dir(name: str) -> Path:
    return ex.repo_root() / "data" / "results" / "sweeps" / name / "points"


# --- one point, where it runs ---------------------------------------------------------

def _current_core() -> int:
    """The CPU this thread last ran on (field 39 of /proc/thread-self/stat)."""
    with open("/proc/thread-self/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[36])


@contextlib.contextmanager
def _alone_on_this_machine(exclusive: bool):
    """For a timing-sensitive point: hold this host's one timing slot and pin this
    thread to one core (:func:`measure.pinned`; yields the core). The slot is a lock on
    a file in the host's temporary folder, so every worker on the host (of this sweep or
    another) waits its turn, and a worker that dies lets go of it (a Dask semaphore's
    lease could lapse while jitted code holds the GIL for minutes)."""
    if not exclusive:
        yield None
        return
    with open(TIMING_LOCK, "a") as slot:
        fcntl.flock(slot, fcntl.LOCK_EX)
        try:
            with pinned() as core:
                yield core
        finally:
            fcntl.flock(slot, fcntl.LOCK_UN)


class _PeakMemory:
    """The process's peak resident memory while the block runs (sampled every 20 ms)."""

    def __enter__(self):
        import psutil
        self._process, self._done, self.peak = psutil.Process(), threading.Event(), 0
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while True:
            self.peak = max(self.peak, self._process.memory_info().rss)
            if self._done.wait(0.02):
                return

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)


def run_point(name: str, params: dict, seed: int, exclusive: bool) -> dict:
    """Run one point (in a worker, or here): its table, or its error, with where and
    how it ran. Never raises: a failed point is reported, the others go on."""
    try:
        exp = ex.get(name)
        np.random.seed(seed)                   # for code that draws from numpy's global
        worker = _worker_name()
        with _alone_on_this_machine(exclusive) as pinned, _PeakMemory() as memory:
            started, start = time.time(), time.perf_counter()
            table = exp.run(params)
            seconds = time.perf_counter() - start
        return {"table": table, "worker": worker,
                "core": pinned if pinned is not None else _current_core(),
                "started": started, "seconds": seconds, "peak_rss_mb": memory.peak / 2 ** 20}
    except Exception as e:   # noqa: BLE001 -- any failure of the point is its result
        return {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}


def _worker_name() -> str:
    try:
        from distributed import get_worker
        return get_worker().address
    except (ImportError, ValueError):
        return f"serial ({socket.gethostname()})"


# --- the sweep ------------------------------------------------------------------------

def sweep(experiment: str, grid: dict, backend=None, workers: int = 2,
          replicates: int = 1, root_seed: int = 0, full: bool = False, cache: bool = True,
          memory_limit: str = "auto", progress: bool = True, exclusive: bool | None = None,
          warm: bool = True) -> pd.DataFrame:
    """Run ``experiment`` at every point of ``grid`` (``{param: [values]}``; a key
    ``"a+b"`` sets both) times ``replicates`` on ``backend`` (default: serial under
    ``SERIAL_BELOW`` points, else local); one DataFrame, in the
    grid's order: each point's table with its parameter columns attached (unless the
    table has them), its replicate, seed, worker, core, start (Unix time), seconds and
    peak memory. ``exclusive``: run the points one per machine, pinned (default: if the
    experiment is timing-sensitive); ``warm``: on a cluster, run the first point alone
    first, so that its compiling fills numba's on-disk cache for the others. ``attrs``: ``failures`` (the parameters, error and traceback of each point that
    raised, as dicts), ``computed`` and ``cached`` (how many points ran, how many came from
    the cache) and ``backend``."""
    exp = ex.get(experiment)
    todo = points(exp, grid, replicates, root_seed, full)
    if backend is None:
        backend = "serial" if len(todo) < SERIAL_BELOW else "local"
    store = cache_dir(exp.name)
    done = {p.key: pd.read_csv(store / f"{p.key}.csv") for p in todo
            if cache and (store / f"{p.key}.csv").exists()}
    missing = [p for p in todo if p.key not in done]
    failures = []
    with _client(backend, workers, memory_limit, bool(missing)) as client:
        one_at_a_time = exp.timing_sensitive if exclusive is None else exclusive
        for point, result in _execute(client, exp, missing, progress, one_at_a_time, warm):
            if "error" in result:
                failures.append({**point.params, "replicate": point.replicate,
                                 "seed": point.seed, "error": result["error"],
                                 "traceback": result["traceback"]})
                continue
            done[point.key] = _tidy(result, point)
            if cache:
                _store(store, point.key, done[point.key])
    out = pd.concat([done[p.key] for p in todo if p.key in done], ignore_index=True) \
        if done else pd.DataFrame()
    out.attrs.update(failures=failures, computed=len(missing) - len(failures),
                     cached=len(todo) - len(missing), backend=str(backend))
    return out


def _tidy(result: dict, point: Point) -> pd.DataFrame:
    """The point's table with its parameters and where it ran, as it reads back from
    the cache (so a fresh point and a cached one have the same types)."""
    table = result["table"].copy()
    for name, value in point.params.items():
        if name not in table.columns:
            table[name] = value
    table["replicate"], table["seed"] = point.replicate, point.seed
    table["worker"], table["core"] = result["worker"], result["core"]
    table["point_started"], table["point_seconds"] = result["started"], result["seconds"]
    table["peak_rss_mb"] = result["peak_rss_mb"]
    return pd.read_csv(io.StringIO(table.to_csv(index=False)))


def _store(store: Path, key: str, table: pd.DataFrame) -> None:
    """Write a finished point whole or not at all (a sweep killed mid-write leaves no
    half file behind to be taken for a result)."""
    store.mkdir(parents=True, exist_ok=True)
    tmp = store / f".{key}.{os.getpid()}.tmp"
    table.to_csv(tmp, index=False)
    os.replace(tmp, store / f"{key}.csv")


def _execute(client, exp, todo: list[Point], progress: bool, exclusive: bool, warm: bool):
    """(point, result) for every point as it finishes: here, in order, or on the cluster
    (``warm``: the first point alone, to fill numba's on-disk cache for the others)."""
    from tqdm.auto import tqdm
    bar = tqdm(total=len(todo), desc=f"sweep {exp.name}", unit="point", disable=not progress)
    with bar:
        if client is None:
            for p in todo:
                yield p, run_point(exp.name, p.params, p.seed, exclusive)
                bar.update()
            return
        from distributed import as_completed
        client.run(ex.get, exp.name)       # every worker imports the experiment meanwhile
        batches = (todo[:1], todo[1:]) if warm else (todo,)
        for batch in batches:
            futures = {client.submit(run_point, exp.name, p.params, p.seed, exclusive,
                                     key=f"{exp.name}-{p.key}", pure=False): p for p in batch}
            for future in as_completed(futures):
                yield futures[future], future.result()
                bar.update()


@contextlib.contextmanager
def _client(backend, workers: int, memory_limit: str, needed: bool):
    """The Dask client the backend names (None: serial, or nothing left to run)."""
    if backend == "serial" or not needed:
        yield None
        return
    from distributed import Client
    if isinstance(backend, Client):
        yield backend
        return
    if backend == "local":
        client = local_client(workers, memory_limit)
        with client.cluster, client:
            yield client
        return
    try:
        client = Client(backend, timeout=f"{CONNECT_TIMEOUT_S}s")
    except (OSError, TimeoutError) as e:
        raise SweepError(f"sweep: no Dask scheduler answered at {backend!r} within "
                         f"{CONNECT_TIMEOUT_S} s ({e})") from None
    with client:
        yield client


def local_client(workers: int = 2, memory_limit: str = "auto"):
    """A client of a new ``LocalCluster`` as sweeps want it: ``workers`` processes of one
    thread each (jitted kernels hold the GIL), each with ``memory_limit`` ("auto": the
    machine's memory shared among them), allowed to fork (the fault campaign's trial
    processes), its dashboard on a free port (``client.dashboard_link``). Close the
    client and its cluster when done (``with client.cluster, client:``)."""
    import dask
    from distributed import Client, LocalCluster
    if workers < 1:
        raise SweepError(f"sweep: workers must be >= 1, not {workers}")
    with dask.config.set({"distributed.worker.daemon": False}):   # daemons may not fork
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               memory_limit=memory_limit, dashboard_address=":0")
    return Client(cluster)


def save(table: pd.DataFrame, experiment: str) -> Path:
    """The gathered table as ``data/results/sweeps/<name>/sweep-<UTC time>.csv``."""
    out = cache_dir(experiment).parent
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"sweep-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%SZ}.csv"
    table.to_csv(path, index=False)
    return path
