"""Native CPU kernels: small C files compiled on first use with the system's C compiler.

The hot loops of MD on many small systems -- the pair loop of an analytic potential, the pair
search of a small cell, the blow-up guard's checks -- cost a CPU far less as one C loop than as
a chain of torch operations (each of which pays ~10-20 µs of dispatch on a 6,000-element
tensor). Each kernel here is a plain C file next to this module, with no torch headers: it
compiles in well under a second with ``cc -O3 -fopenmp`` (``$CC`` if set; without OpenMP where
the compiler lacks it) and is called through ``ctypes`` on the tensors' memory. OpenMP threads
come from the runtime torch itself has loaded, so the kernels share torch's thread count
(``torch.get_num_threads()``, passed on each call).

Files: ``pair_lj.c`` (:class:`common.potential.pair.LennardJones`), ``neighbors.c``
(:class:`common.md.neighbors.NeighborList`), ``guard.c`` (:class:`common.md.guard.BlowUpGuard`).

Compiled libraries are cached under ``$MLP_CASES_CACHE/native`` (default
``~/.cache/mlp-cases/native``), keyed by the source, the flags, the compiler and the CPU, so a
cluster whose nodes differ compiles once per CPU type; a library is written to a temporary name
and renamed into place, so concurrent first uses cannot load half a file. ``-march=native`` is
used where the compiler takes it (the vector instructions of the machine that runs it).

Every caller keeps its torch path: :func:`load` returns ``None`` (and :func:`why_not` says why)
when there is no compiler, the platform is not Linux/macOS, or ``MLP_CASES_NATIVE=0``.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

_HERE = Path(__file__).parent
_FAILED: dict[str, str] = {}


def cache_dir() -> Path:
    """Folder of the compiled libraries (``$MLP_CASES_CACHE/native``)."""
    root = os.environ.get("MLP_CASES_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "mlp-cases")
    return Path(root) / "native"


def _cpu_id() -> str:
    """Return what identifies this CPU's instruction set (model name and flags)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.machine() + platform.processor()
    keep = [ln for ln in text.splitlines() if ln.startswith(("model name", "flags", "Features"))]
    return "\n".join(sorted(set(keep)))


def _compiler() -> str | None:
    cc = os.environ.get("CC") or "cc"
    return shutil.which(cc)


def _try_compile(cc: str, src: Path, out: Path, flags: list[str]) -> str | None:
    """Compile ``src`` into ``out``; return None, or the compiler's complaint."""
    proc = subprocess.run([cc, *flags, str(src), "-o", str(out)], capture_output=True,
                          text=True, timeout=300)
    return None if proc.returncode == 0 else (proc.stderr.strip() or "compiler failed")


def _build(name: str) -> Path:
    """Return the compiled library of ``<name>.c``, compiling it if it is not cached."""
    src = _HERE / f"{name}.c"
    cc = _compiler()
    if cc is None:
        raise OSError("no C compiler (cc, or $CC) on PATH")
    version = subprocess.run([cc, "--version"], capture_output=True, text=True).stdout
    base = ["-O3", "-fPIC", "-shared", "-std=c99"]
    # OpenMP and this CPU's vector instructions where the compiler has them; serial otherwise
    # (Apple's clang has no -fopenmp: the pragmas are then ignored, the results the same)
    attempts = [base + ["-fopenmp", "-march=native"], base + ["-fopenmp"], base]
    key = hashlib.sha256("\0".join([src.read_text(), version, _cpu_id(), repr(attempts)])
                         .encode()).hexdigest()[:20]
    target = cache_dir() / f"{name}-{key}.so"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for flags in attempts:
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
        os.close(fd)
        err = _try_compile(cc, src, Path(tmp), flags)
        if err is None:
            os.replace(tmp, target)
            return target
        os.unlink(tmp)
        errors.append(err.splitlines()[-1])
    raise OSError(f"{cc} could not compile {src.name}: {errors[-1]}")


@functools.cache
def load(name: str) -> ctypes.CDLL | None:
    """Return the native library ``name`` (``<name>.c`` here), or None where there is none.

    None when ``MLP_CASES_NATIVE`` is 0 (or false, no, off), on Windows, or when compiling
    failed; :func:`why_not` then gives the reason. Callers fall back to their torch code.
    """
    setting = os.environ.get("MLP_CASES_NATIVE", "1").strip().lower()
    if setting in ("0", "false", "no", "off"):
        _FAILED[name] = f"switched off by MLP_CASES_NATIVE={os.environ['MLP_CASES_NATIVE']}"
        return None
    if platform.system() not in ("Linux", "Darwin"):
        _FAILED[name] = f"native kernels are built on Linux and macOS, not {platform.system()}"
        return None
    try:
        return ctypes.CDLL(str(_build(name)))
    except (OSError, subprocess.SubprocessError) as exc:
        _FAILED[name] = str(exc)
        return None


def why_not(name: str) -> str | None:
    """Why :func:`load` gave None for ``name`` (None if it loaded or was not tried)."""
    return _FAILED.get(name)


@functools.cache
def function(library: str, name: str, argtypes: tuple, restype=None):
    """Return the C function ``name`` of ``library`` with its signature set, or None.

    ``argtypes`` are ctypes types (pointers as ``c_void_p``: callers pass ``tensor.data_ptr()``).
    """
    lib = load(library)
    if lib is None:
        return None
    fn = getattr(lib, name)
    fn.argtypes, fn.restype = list(argtypes), restype
    return fn


LIBRARIES = ("pair_lj", "neighbors", "guard")


def status() -> str:
    """One line: whether the native kernels load here (compiling them if needed), and from where.

    ``mlp-cases doctor`` prints it; without them MD runs on the torch kernels, only slower.
    """
    failed = {name: why_not(name) for name in LIBRARIES if load(name) is None}
    if not failed:
        return f"on ({', '.join(LIBRARIES)}; cached in {cache_dir()})"
    name, why = next(iter(failed.items()))
    return (f"off, MD runs on torch kernels ({name}: {why}); a C compiler on PATH (cc, or $CC) "
            "turns them on")


def reset() -> None:
    """Forget loaded libraries and failures (tests; after changing ``$CC`` or the cache)."""
    load.cache_clear()
    function.cache_clear()
    _FAILED.clear()
