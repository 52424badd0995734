"""Build small C programs with the system compiler, once per source text."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path


def cache_dir() -> Path:
    d = Path(os.environ.get("REDLEAF_NB_CACHE", Path.home() / ".cache" / "redleaf_nb")) / "native"
    d.mkdir(parents=True, exist_ok=True)
    return d


def build_executable(source: Path, flags: tuple[str, ...] = ("-O2",)) -> Path:
    """Compile ``source`` with gcc (cached by a hash of source and flags)."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise RuntimeError("no C compiler found (gcc): install gcc to run the native analogs")
    text = source.read_bytes()
    digest = hashlib.sha1(text + " ".join(flags).encode()).hexdigest()[:12]
    exe = cache_dir() / f"{source.stem}-{digest}"
    if not exe.exists():
        tmp = exe.with_suffix(f".{os.getpid()}.tmp")
        subprocess.run([cc, *flags, "-o", str(tmp), str(source)], check=True)
        tmp.replace(exe)
    return exe
