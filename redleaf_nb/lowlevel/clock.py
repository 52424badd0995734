"""The cycle counter, read inside jitted code, and the machine it runs on.

``rdtsc()`` is the CPU's time-stamp counter through LLVM's
``readcyclecounter`` intrinsic (RDTSC on x86), callable from ``@njit`` code
and from Python. Its frequency is calibrated against ``perf_counter_ns``.
"""
from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from functools import lru_cache
from pathlib import Path

import numba
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def _readcyclecounter(typingctx):
    def codegen(context, builder, signature, args):
        fnty = ir.FunctionType(ir.IntType(64), [])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.readcyclecounter")
        return builder.call(fn, [])
    return types.uint64(), codegen


@njit(cache=True)
def rdtsc():
    """The CPU's cycle counter (RDTSC), as a uint64."""
    return _readcyclecounter()


@lru_cache(maxsize=1)
def tsc_hz(seconds: float = 0.2) -> float:
    """The counter's frequency in Hz, calibrated against perf_counter_ns."""
    rdtsc()  # compile or load before timing
    c0, t0 = rdtsc(), time.perf_counter_ns()
    time.sleep(seconds)
    c1, t1 = rdtsc(), time.perf_counter_ns()
    return float(c1 - c0) / (t1 - t0) * 1e9


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True,
                              cwd=Path(__file__).resolve().parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine() -> dict:
    """What a result was measured on: CPU, cores, counter frequency, versions."""
    return {"cpu_model": cpu_model(), "cores": os.cpu_count(),
            "tsc_ghz": round(tsc_hz() / 1e9, 4), "python": sys.version.split()[0],
            "numba": numba.__version__, "numpy": np.__version__,
            "platform": platform.platform(), "git_commit": git_commit()}
