"""Atomic file writes: every file the project produces appears whole or not at all.

A write goes to a hidden temporary file in the same folder, is flushed to disk, and is then
renamed over the target (``os.replace`` is atomic on POSIX). A ``kill -9`` at any moment leaves
either the old file or the new one, never half of one. The temporary name is
``.<name>.<pid>.<random>.partial`` (plus the target's suffix where a writer needs it), so a rerun
ignores it, and the next atomic write of the same target removes it once its process is gone.
:func:`atomic_dir` does the same for a folder (a trained model, deepmd system folders).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

PARTIAL_SUFFIX = ".partial"


def _partial_prefix(path: Path) -> str:
    return f".{path.name}.{os.getpid()}."


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_partials(path: str | os.PathLike) -> int:
    """Remove the temporary files or folders that killed writes of ``path`` left behind.

    Only those whose process is gone are removed; returns how many.
    """
    path = Path(path)
    if not path.parent.is_dir():
        return 0
    n = 0
    for p in path.parent.glob(f".{glob_escape(path.name)}.*{PARTIAL_SUFFIX}*"):
        rest = p.name[len(path.name) + 2:]
        pid_text = rest.split(".", 1)[0]
        if not pid_text.isdigit() or _pid_alive(int(pid_text)):
            continue
        with contextlib.suppress(OSError):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
            n += 1
    return n


def glob_escape(name: str) -> str:
    """Return ``name`` with glob metacharacters escaped."""
    import glob

    return glob.escape(name)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, keep_suffix: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``.

    On success it is renamed to ``path``, on any exception it is removed and ``path`` is left as it
    was.

    The temporary name ends in ``.partial``, or, with ``keep_suffix``, in ``.partial`` plus the
    target's suffix (for writers that insist on one, e.g. ``.db``); writers that choose a format
    from the name (``ase.io.write``) should be given ``format=`` explicitly. A writer may
    delete the (empty) temporary file and create it itself.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(path)
    suffix = PARTIAL_SUFFIX + (path.suffix if keep_suffix else "")
    fd, tmp = tempfile.mkstemp(prefix=_partial_prefix(path), suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a new empty temporary folder next to ``path``; on success it becomes ``path``.

    ``path`` must not exist, or (with ``overwrite``) is replaced only once the new folder is
    complete: the old one is renamed aside, the new one renamed in, then the old one removed.
    On an exception the temporary folder is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(path)
    tmp_path = Path(tempfile.mkdtemp(prefix=_partial_prefix(path), suffix=PARTIAL_SUFFIX,
                                     dir=path.parent))
    try:
        yield tmp_path
        _replace_dir(tmp_path, path, overwrite)
    except BaseException:
        shutil.rmtree(tmp_path, ignore_errors=True)
        raise


def _replace_dir(new: Path, path: Path, overwrite: bool) -> None:
    if not path.exists() and not path.is_symlink():
        os.rename(new, path)
        return
    if not overwrite:
        raise FileExistsError(f"{path} already exists")
    old = Path(tempfile.mkdtemp(prefix=_partial_prefix(path), suffix=PARTIAL_SUFFIX,
                                dir=path.parent))
    os.rmdir(old)
    os.rename(path, old)  # a kill from here to the next line leaves no `path`: a rerun works
    os.rename(new, path)
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            old.unlink()


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def atomic_write_json(path: str | os.PathLike, obj: Any, **kwargs: Any) -> Path:
    """Write ``json.dumps(obj, indent=2)`` atomically (numpy values and paths converted)."""
    kwargs.setdefault("indent", 2)
    kwargs.setdefault("default", _json_default)
    return atomic_write_text(path, json.dumps(obj, **kwargs) + "\n")


def atomic_write_atoms(path: str | os.PathLike, frames: Any, format: str | None = None) -> Path:
    """Write ASE frames atomically.

    The format comes from ``path``'s name unless given (``.xyz`` and ``.extxyz`` are written as
    extxyz).
    """
    import ase.io
    from ase.io.formats import filetype

    path = Path(path)
    if format is None:
        suffix = path.suffix.lower()
        format = "extxyz" if suffix in (".xyz", ".extxyz") else filetype(path, read=False)
    with atomic_path(path) as tmp:
        ase.io.write(tmp, frames, format=format)
    return path


def remove_partials(folder: str | os.PathLike) -> int:
    """Remove every temporary file or folder left by killed atomic writes in ``folder``.

    Those of any process are removed: call it only when nothing else writes there. Returns how
    many.
    """
    n = 0
    for p in Path(folder).glob(f".*{PARTIAL_SUFFIX}*"):
        if PARTIAL_SUFFIX not in p.name:
            continue
        with contextlib.suppress(OSError):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
            n += 1
    return n


def _json_default(o: Any) -> Any:
    if hasattr(o, "tolist"):
        return o.tolist()
    if hasattr(o, "__fspath__"):
        return os.fspath(o)
    if hasattr(o, "item"):
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
