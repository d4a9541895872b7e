"""Paths, atomic writes, locks, checksums and content hashes.

Everything unlearnkit builds or caches lives under ``$UNLEARNKIT_HOME`` (default
``~/.cache/unlearnkit``). The guarantees this module gives every caller (docs/reliability.md):

- **Atomic writes.** A file is written to a temporary name in its directory (the name carries
  the writer's pid, so concurrent writers never share one) and moved into place with
  ``os.replace``; a directory is built under a temporary name and swapped in with a rename, the
  old one kept until the new one is in place. A killed process never leaves a half-written file
  under a final name.
- **A full disk** (``ENOSPC``) becomes one :class:`UnlearnkitError` naming the path; the
  temporary file is removed, so nothing partial remains.
- **Locks.** :func:`locked` is an exclusive ``flock`` on a lock file: two processes that want to
  compute the same entry take turns, and the second finds the first one's result.
- **Checksums.** :func:`write_checked` stores a file with a ``.sha256`` sidecar;
  :func:`read_checked` returns ``None`` (after one line on stderr) when the bytes no longer
  match, so a damaged or altered cache file is discarded and rebuilt instead of being trusted.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable, Iterator

from unlearnkit.errors import UnlearnkitError

_STARTED = time.time()
TMP_SUFFIX = ".tmp"
_TMP_RE = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[A-Za-z0-9_]+\.tmp$")
_OLD_RE = re.compile(r"^\.(?P<name>.+)\.old-(?P<pid>\d+)\.[A-Za-z0-9_]+$")


def home() -> Path:
    """The unlearnkit home directory (``$UNLEARNKIT_HOME`` or ``~/.cache/unlearnkit``)."""
    env = os.environ.get("UNLEARNKIT_HOME")
    root = Path(env).expanduser() if env else Path.home() / ".cache" / "unlearnkit"
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UnlearnkitError(f"cannot create the unlearnkit home {str(root)!r} ({e.strerror}): set "
                              "UNLEARNKIT_HOME to a writable directory") from None
    return root


def ensure_dir(path: Path | str) -> Path:
    """``mkdir -p`` with a one-line error when the directory cannot be created."""
    path = Path(path)
    with no_space_is_an_error(path):
        path.mkdir(parents=True, exist_ok=True)
    return path


HOME_MARK = "$UNLEARNKIT_HOME"


def to_home_relative(path: Path | str) -> str:
    """``path`` written as ``$UNLEARNKIT_HOME/...`` when it lies inside the home (so a moved home
    keeps working); anything else (a user path, a hub name) unchanged."""
    p = Path(path)
    if not p.is_absolute():
        return str(path)
    with contextlib.suppress(ValueError):
        return f"{HOME_MARK}/{p.resolve().relative_to(home().resolve()).as_posix()}"
    return str(path)


def from_home_relative(path: str) -> str:
    """Inverse of :func:`to_home_relative`."""
    if path.startswith(HOME_MARK + "/"):
        return str(home() / path[len(HOME_MARK) + 1:])
    return path


def canonical_json(obj: Any) -> str:
    """Deterministic JSON text (sorted keys, no whitespace) used for hashing."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def content_hash(obj: Any, length: int = 12) -> str:
    """Short SHA-256 of the canonical JSON of ``obj``."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:length]


def bytes_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path | str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_hash(paths: Iterable[Path], length: int = 16) -> str:
    """SHA-256 over the bytes of several files (sorted by name)."""
    h = hashlib.sha256()
    for p in sorted(Path(x) for x in paths):
        h.update(p.name.encode())
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:length]


def warn(msg: str) -> None:
    """One line on stderr for something the user should know but that does not stop the run."""
    print(f"warning: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Atomic writes


def _tmp_name(final: Path) -> str:
    return f".{final.name}.{os.getpid()}."


_CLEAR = {errno.EACCES: "permission denied", errno.EPERM: "not permitted", errno.EROFS: "read-only file system",
          errno.ENOTDIR: "a parent is not a directory", errno.EISDIR: "it is a directory",
          errno.ENAMETOOLONG: "the name is too long", errno.ENOENT: "a parent directory is missing"}


@contextlib.contextmanager
def no_space_is_an_error(path: Path | str) -> Iterator[None]:
    """Turn write failures into one clear line naming ``path``: a full disk (``ENOSPC``, also when a library
    wraps it in its own exception type), a read-only or forbidden location, a parent that is a file."""
    try:
        yield
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise UnlearnkitError(_full(path)) from None
        if e.errno in _CLEAR:
            raise UnlearnkitError(f"cannot write {path} ({_CLEAR[e.errno]}): choose a writable location, e.g. another "
                                  "--out or UNLEARNKIT_HOME") from None
        raise
    except Exception as e:  # safetensors / numpy report ENOSPC in their own exception types
        if "No space left on device" in str(e) or "Disk quota exceeded" in str(e):
            raise UnlearnkitError(_full(path)) from None
        raise


def _full(path: Path | str) -> str:
    return (f"no space left on device while writing {path}: free some space or set UNLEARNKIT_HOME to a larger "
            "disk (nothing partial was kept)")


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file in the same directory, fsync, rename)."""
    path = Path(path)
    with no_space_is_an_error(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_tmp_name(path), suffix=TMP_SUFFIX)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise


def atomic_write_text(path: Path | str, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path | str, obj: Any, indent: int | None = 2) -> None:
    atomic_write_text(path, json.dumps(obj, indent=indent, sort_keys=False, default=str) + "\n")


def atomic_write_jsonl(path: Path | str, rows: Iterable[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


@contextlib.contextmanager
def atomic_file(path: Path | str) -> Iterator[Path]:
    """A temporary path to write ``path`` with any writer (numpy, torch, matplotlib); moved into place on success."""
    path = Path(path)
    with no_space_is_an_error(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_tmp_name(path), suffix=TMP_SUFFIX + path.suffix)
        os.close(fd)
        try:
            yield Path(tmp)
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def read_json(path: Path | str) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_jsonl(path: Path | str) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def read_json_or_none(path: Path | str) -> Any:
    """The parsed JSON file, or ``None`` when it is missing or damaged (a killed writer, a bad disk)."""
    try:
        return read_json(path)
    except (OSError, ValueError, UnicodeDecodeError):
        return None


@contextlib.contextmanager
def atomic_dir(final: Path | str) -> Iterator[Path]:
    """Build a directory under a temporary name and swap it into place only on success.

    An existing ``final`` is renamed aside first and removed only once the new directory is in
    place, so a crash at any moment leaves either the old or the new directory (a leftover old
    one is restored by :func:`cleanup_stale_temps`).
    """
    final = Path(final)
    with no_space_is_an_error(final):
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=_tmp_name(final), suffix=TMP_SUFFIX))
        try:
            yield tmp
            _swap_in(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def _swap_in(new: Path, final: Path) -> None:
    old = None
    if final.exists():
        old = final.parent / f".{final.name}.old-{os.getpid()}.{os.urandom(4).hex()}"
        os.replace(final, old)
    try:
        os.replace(new, final)
    except BaseException:
        if old is not None and not final.exists():
            os.replace(old, final)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


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


def cleanup_stale_temps(root: Path | None = None, max_depth: int = 4) -> int:
    """Remove temporary files/directories left by killed processes under ``root`` (the home).

    A temporary name carries its writer's pid; it is removed when that process is gone and the
    entry is older than this process. A directory that was renamed aside during a swap is put
    back when its final name is missing (the swap was interrupted), else removed. Returns the
    number of entries cleaned.
    """
    root = root or home()
    cleaned = 0
    for path in _walk(root, max_depth):
        m_tmp, m_old = _TMP_RE.match(path.name), _OLD_RE.match(path.name)
        m = m_tmp or m_old
        if m is None or _pid_alive(int(m["pid"])):
            continue
        with contextlib.suppress(OSError):
            if path.lstat().st_mtime > _STARTED:
                continue
            final = path.parent / m["name"]
            if m_old is not None and not final.exists():
                os.replace(path, final)
            elif path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
            cleaned += 1
    return cleaned


def _walk(root: Path, max_depth: int) -> Iterator[Path]:
    if max_depth < 0 or not root.is_dir():
        return
    with contextlib.suppress(OSError):
        for child in list(root.iterdir()):
            yield child
            if child.is_dir() and not child.is_symlink() and not child.name.startswith("."):
                yield from _walk(child, max_depth - 1)


# ---------------------------------------------------------------------------------------------
# Locks and checksummed files


@contextlib.contextmanager
def locked(path: Path | str) -> Iterator[None]:
    """An exclusive lock (``flock``) on ``path`` (created if needed), held for the ``with`` block.

    In a job of several processes (``torchrun`` / ``accelerate launch``) only the main process (rank 0)
    takes locks: the others run the same code in step with it and leave every write to it
    (:mod:`unlearnkit.engine.distributed`), so they must never wait on a lock it holds."""
    if launcher_rank() != 0:
        yield
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def launcher_rank() -> int:
    """This process's rank in a job started by torchrun / accelerate launch (0 otherwise)."""
    try:
        return int(os.environ.get("RANK", "0")) if int(os.environ.get("WORLD_SIZE", "1")) > 1 else 0
    except ValueError:
        return 0


def lock_path(kind: str, key: str) -> Path:
    """Where the lock of a cache entry or run entry lives (under the home, never beside user files)."""
    return home() / "locks" / kind / f"{key}.lock"


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def write_checked(path: Path | str, data: bytes) -> None:
    """Write ``data`` atomically with a ``.sha256`` sidecar that :func:`read_checked` verifies."""
    path = Path(path)
    atomic_write_bytes(path, data)
    atomic_write_text(_sidecar(path), bytes_sha256(data) + "\n")


def read_checked(path: Path | str, what: str = "cache file") -> bytes | None:
    """The bytes of a file written by :func:`write_checked`; ``None`` if missing, or if damaged or
    altered (checksum mismatch; reported in one line, both files removed so they are rebuilt)."""
    path = Path(path)
    side = _sidecar(path)
    try:
        data = path.read_bytes()
        expected = side.read_text().strip()
    except (OSError, UnicodeDecodeError):
        if path.exists() or side.exists():
            discard(path, what, "its checksum is missing")
        return None
    if bytes_sha256(data) != expected:
        discard(path, what, "its content does not match its checksum (damaged or altered)")
        return None
    return data


def discard(path: Path, what: str, why: str) -> None:
    """Remove a damaged artefact (and its sidecar) after saying so in one line."""
    warn(f"{what} {path} is unusable: {why}; discarded, it will be rebuilt")
    for p in (path, _sidecar(path)):
        with contextlib.suppress(FileNotFoundError, IsADirectoryError):
            p.unlink()
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
