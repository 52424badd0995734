"""Numba's on-disk cache, keyed by the toolkit's whole source.

Numba invalidates a cached function when *its own* file changes, not when a
function it calls (and inlined) changes in another file: after editing, say,
``kernel/heap.py`` or a driver's helper, a cached proxy or driver would keep
running the old code. So the cache lives in a folder named by a hash of every
source file that jitted code can reach (this package, and the repository's
``devices/`` and ``experiments/`` when present); any edit starts a fresh
cache. A ``NUMBA_CACHE_DIR`` the user sets is respected.
"""
from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def _source_digest() -> str:
    h = hashlib.sha1()
    roots = [PACKAGE] + [PACKAGE.parent / d for d in ("devices", "experiments")]
    for root in roots:
        for path in sorted(root.rglob("*.py")) if root.is_dir() else ():
            h.update(str(path.relative_to(root.parent)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def configure() -> None:
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    base = Path(os.environ.get("REDLEAF_NB_CACHE", Path.home() / ".cache" / "redleaf_nb"))
    os.environ["NUMBA_CACHE_DIR"] = str(base / "numba" / _source_digest())
    config = sys.modules.get("numba.core.config")
    if config is not None:   # numba was imported first: it reads the folder when caching
        config.CACHE_DIR = os.environ["NUMBA_CACHE_DIR"]
