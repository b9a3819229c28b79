"""Files: atomic writes, reads that fail in one line, and an undo journal for commands.

Every file zspace writes goes through ``atomic_write``: a temporary name in the same
folder, then ``os.replace``, so a crash or a full disk never leaves a half-written
checkpoint, latents file or report under the final name. The same layer turns what
the operating system refuses (a full disk, no permission, a folder where a file
should go) into a one-line ``ZspaceError`` naming the path, so no command needs a
``try`` of its own for it (issue 18). Temporaries are named
``.<name>.<pid>-<random>.tmp``; the next successful write of the same file removes
the ones whose process is gone (left by a kill).

``undo_on_error()`` makes a block all-or-nothing for the files it writes: when the
block raises (a bad input found half-way, a full disk, Ctrl-C), every file it wrote
is put back as it was and every folder it created is removed. The CLI runs its
batch commands (generate, analyze, encode, report, ...) inside it, so a failing
command leaves the run folder as it found it.

Reads of zspace's own files (``read_json``, ``read_npz``, ...) report truncated,
foreign or unreadable files as one line, naming the file.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import hashlib
import io
import json
import os
import re
import secrets
import struct
import sys
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from zspace.core.errors import ZspaceError, first_line

LEGACY_TMP_AGE = 600.0  # seconds: temporaries without a pid (older versions) count as stale
_IN_FLIGHT: set[str] = set()  # temporaries and backups this process still needs


def os_error(action: str, path: str | Path, exc: OSError) -> ZspaceError:
    """The one-line form of an OSError: ``cannot write PATH: No space left on device``."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    return ZspaceError(f"cannot {action} {path}: {reason}")


# ---------------------------------------------------------------- the undo journal


class _Journal:
    """What a block wrote: each path's backup (None: the file is new) and new folders."""

    def __init__(self) -> None:
        self.files: dict[Path, Path | None] = {}
        self.folders: list[Path] = []

    def before_replace(self, path: Path) -> None:
        if path in self.files:
            return  # the first backup holds the state before the block
        backup = None
        if path.is_file():
            backup = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.undo")
            _IN_FLIGHT.add(str(backup))
            try:
                os.link(path, backup)  # O(1); the old content survives the replace
            except OSError:
                import shutil

                try:
                    shutil.copy2(path, backup)  # file systems without hard links
                except OSError:
                    backup.unlink(missing_ok=True)
                    _IN_FLIGHT.discard(str(backup))
                    raise
        self.files[path] = backup

    def rollback(self) -> None:
        for path, backup in reversed(list(self.files.items())):
            with contextlib.suppress(OSError):
                if backup is None:
                    path.unlink(missing_ok=True)
                else:
                    os.replace(backup, path)
        for folder in reversed(self.folders):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty: never someone else's files
        self._forget()

    def commit(self) -> None:
        for backup in self.files.values():
            if backup is not None:
                with contextlib.suppress(OSError):
                    backup.unlink()
        self._forget()

    def _forget(self) -> None:
        for backup in self.files.values():
            _IN_FLIGHT.discard(str(backup))


_JOURNAL: contextvars.ContextVar[_Journal | None] = contextvars.ContextVar(
    "zspace_journal", default=None
)


@contextlib.contextmanager
def undo_on_error() -> Iterator[None]:
    """All-or-nothing for the files written inside: on any exception (Ctrl-C too) they
    are restored and new folders removed. Nested blocks join the outermost one."""
    if _JOURNAL.get() is not None:
        yield
        return
    journal = _Journal()
    token = _JOURNAL.set(journal)
    try:
        yield
    except BaseException:
        journal.rollback()
        raise
    else:
        journal.commit()
    finally:
        _JOURNAL.reset(token)


# ---------------------------------------------------------------- folders


def make_dirs(folder: str | Path, *, undoable: bool = True) -> Path:
    """``mkdir -p`` with one-line errors; new folders join the undo journal."""
    folder = Path(folder)
    missing = []
    p = folder
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    if p.exists() and not p.is_dir():
        raise ZspaceError(f"cannot create {folder}: {p} is a file, not a folder")
    if not missing:
        return folder
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise os_error("create folder", folder, exc) from None
    journal = _JOURNAL.get()
    if undoable and journal is not None:
        journal.folders.extend(reversed(missing))
    return folder


def check_writable(path: str | Path, what: str, *, folder: bool = False) -> None:
    """Refuse early, before any work, an output that cannot be written: a file name that
    is a folder (or a folder name that is a file), a parent that is a file, a place
    without write permission. Probes by creating and removing a temporary folder in
    the nearest existing ancestor, so nothing is left behind."""
    path = Path(path)
    if not folder and path.is_dir():
        raise ZspaceError(f"{what} {path} is a folder; give a file name")
    if folder and path.exists() and not path.is_dir():
        raise ZspaceError(f"{what} {path} is a file, not a folder")
    base = path if folder and path.is_dir() else path.absolute().parent
    while not base.exists() and base != base.parent:
        base = base.parent
    if not base.is_dir():
        raise ZspaceError(f"{what} {path}: {base} is a file, not a folder")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".zspace-probe-", dir=base))
    except OSError as exc:
        raise ZspaceError(
            f"{what} {path}: cannot write in {base} ({exc.strerror or exc})"
        ) from None


# ---------------------------------------------------------------- writing


@contextlib.contextmanager
def atomic_path(path: str | Path, *, undoable: bool = True) -> Iterator[Path]:
    """A temporary name beside ``path`` for the block to write (a memory map, worker
    processes, a library's ``save(filename)``), renamed onto ``path`` when the block
    ends and removed when it raises: the one all-or-nothing write every other builds on.

    ``undoable=False`` keeps the file out of an enclosing ``undo_on_error`` (shared
    state such as the data cache, which is not the command's output)."""
    path = Path(path)
    if path.is_dir():
        raise ZspaceError(f"cannot write {path}: it is a folder")
    make_dirs(path.parent, undoable=undoable)
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=f".{path.name}.{os.getpid()}-", suffix=".tmp", dir=path.parent
        )
        os.close(fd)
    except OSError as exc:
        raise os_error("write", path, exc) from None
    _IN_FLIGHT.add(tmp)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        journal = _JOURNAL.get() if undoable else None
        if journal is not None:
            journal.before_replace(path)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise os_error("write", path, exc) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        _IN_FLIGHT.discard(tmp)
    remove_stale_temporaries(path)


def atomic_write(
    path: str | Path, write: Callable[[BinaryIO], object], *, undoable: bool = True
) -> Path:
    """Call ``write(fh)`` on a temporary file beside ``path`` and rename it into place."""
    with atomic_path(path, undoable=undoable) as tmp, open(tmp, "wb") as fh:
        write(fh)
        fh.flush()
        os.fsync(fh.fileno())
    return Path(path)


_STALE = re.compile(r"^\.(?P<name>.+)\.(?:(?P<pid>\d+)-)?[A-Za-z0-9_]+\.(?:tmp|undo)$")


def remove_stale_temporaries(path: str | Path) -> list[Path]:
    """Remove the temporaries and undo backups of ``path`` left by killed writers: those
    whose process is gone (or older than LEGACY_TMP_AGE without a pid). Live writers'
    files, in this process or another, are kept. Returns what was removed."""
    path = Path(path)
    removed: list[Path] = []
    try:
        siblings = list(path.parent.iterdir())
    except OSError:
        return removed
    for p in siblings:
        m = _STALE.match(p.name)
        if not m or m["name"] != path.name or str(p) in _IN_FLIGHT:
            continue
        pid = m["pid"]
        if pid is None or sys.platform == "win32":
            with contextlib.suppress(OSError):
                if time.time() - p.stat().st_mtime < LEGACY_TMP_AGE:
                    continue
        elif int(pid) != os.getpid() and _alive(int(pid)):
            continue
        with contextlib.suppress(OSError):
            p.unlink()
            removed.append(p)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's process, or we cannot tell: keep its files
    return True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | Path, data: bytes, *, undoable: bool = True) -> Path:
    return atomic_write(path, lambda fh: fh.write(data), undoable=undoable)


def atomic_write_text(path: str | Path, text: str, *, undoable: bool = True) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"), undoable=undoable)


def atomic_write_json(path: str | Path, obj: Any, *, undoable: bool = True) -> Path:
    text = json.dumps(obj, indent=2, sort_keys=False, allow_nan=True) + "\n"
    return atomic_write_text(path, text, undoable=undoable)


# ---------------------------------------------------------------- reading


def read_bytes(path: str | Path) -> bytes:
    path = Path(path)
    try:
        return path.read_bytes()
    except IsADirectoryError:
        raise ZspaceError(f"cannot read {path}: it is a folder") from None
    except OSError as exc:
        raise os_error("read", path, exc) from None


def read_text(path: str | Path, encoding: str = "utf-8") -> str:
    path = Path(path)
    return decode_text(read_bytes(path), path, encoding)


def decode_text(data: bytes, where: str | Path, encoding: str = "utf-8") -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        raise ZspaceError(f"{where} is not UTF-8 text (a binary or foreign file?)") from None


def read_json(path: str | Path, hint: str = "") -> Any:
    """A JSON file; a truncated or foreign one is a one-line error (``hint``: what to do)."""
    path = Path(path)
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        more = f"; {hint}" if hint else ""
        raise ZspaceError(
            f"{path} is truncated or not JSON ({exc.msg} at line {exc.lineno}){more}"
        ) from None


NPZ_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_LOCAL_HEADER = struct.Struct("<4s22sHH")  # zip signature, fixed fields, name and extra lengths


def read_npz(
    path: str | Path, hint: str = "", data: bytes | None = None, *, mmap: bool = False
) -> dict[str, Any]:
    """Every array of an .npz file, without pickles. ``mmap``: the members stored
    uncompressed (``np.savez``, ``core.npz.write``) are read-only memory maps of the file
    (files larger than memory), the others are read. A truncated archive, a foreign file
    or one holding object arrays (pickled Python objects, refused) is a one-line error
    naming the file (``hint``: what to do). ``data``: the file's bytes when already read."""
    import numpy as np

    path = Path(path)
    more = f"; {hint}" if hint else ""
    try:
        raw: BinaryIO = io.BytesIO(data) if data is not None else open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        raise os_error("read", path, exc) from None
    out: dict[str, Any] = {}
    try:
        with raw:
            if raw.read(4) not in NPZ_MAGIC:
                raise ZspaceError(f"{path} is not an .npz archive (truncated or foreign){more}")
            with zipfile.ZipFile(raw) as zf:
                for info in zf.infolist():
                    if not info.filename.endswith(".npy"):
                        continue
                    arr = _mapped(path, raw, info) if mmap and data is None else None
                    if arr is None:
                        with zf.open(info) as member:
                            arr = np.lib.format.read_array(member, allow_pickle=False)
                    out[info.filename[: -len(".npy")]] = arr
    except ValueError as exc:
        text = first_line(exc)
        if "pickle" in text.lower() or "object" in text.lower():
            raise ZspaceError(
                f"{path} holds object arrays (pickled Python objects); refused{more}"
            ) from None
        raise ZspaceError(f"{path} is truncated or corrupt ({text}){more}") from None
    except (zipfile.BadZipFile, EOFError, OSError, zlib.error, KeyError, struct.error) as exc:
        raise ZspaceError(f"{path} is truncated or corrupt ({first_line(exc)}){more}") from None
    return out


def _mapped(path: Path, raw: BinaryIO, info: zipfile.ZipInfo) -> Any:
    """A stored member as a read-only memory map (a plain ndarray view of an np.memmap),
    or None when it cannot be mapped (compressed, encrypted, an unknown .npy version,
    object dtype or empty). The array's bytes follow the member's local zip header and
    its .npy header."""
    import numpy as np

    if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
        return None
    raw.seek(info.header_offset)
    sig, _, name_len, extra_len = _LOCAL_HEADER.unpack(raw.read(_LOCAL_HEADER.size))
    if sig != NPZ_MAGIC[0]:
        return None
    raw.seek(info.header_offset + _LOCAL_HEADER.size + name_len + extra_len)
    version = np.lib.format.read_magic(raw)
    fmt = np.lib.format
    header = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}.get(version)
    if header is None:
        return None
    shape, fortran, dtype = header(raw)
    if dtype.hasobject or int(np.prod(shape)) == 0:
        return None
    mm = np.memmap(
        path, dtype=dtype, mode="r", offset=raw.tell(), shape=shape, order="F" if fortran else "C"
    )
    return mm.view(np.ndarray)


# ---------------------------------------------------------------- digests, pairs, shared files


def sha256_of(data: bytes | Path) -> str:
    """The sha256 of bytes, or of a file's bytes (read in chunks)."""
    h = hashlib.sha256()
    if isinstance(data, Path):
        with data.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    else:
        h.update(data)
    return h.hexdigest()


def digest(obj: Any) -> str:
    """A stable identity of a JSON-able value: the sha256 of its canonical JSON."""
    return sha256_of(json.dumps(obj, sort_keys=True, default=str).encode())


def write_pair(
    path: str | Path, record: dict, arrays: dict[str, Any], compress: bool = True
) -> Path:
    """``path`` (.json) and the .npz beside it; the JSON, written last, names the npz by
    its sha256, so a crash between the two writes leaves a pair ``read_pair`` refuses,
    never new arrays with old numbers. Two writers at once write one after the other."""
    import numpy as np

    path = Path(path)
    buf = io.BytesIO()
    (np.savez_compressed if compress else np.savez)(buf, **arrays)
    data = buf.getvalue()
    with locked(_lock_beside(path), remove=True):
        atomic_write_bytes(path.with_suffix(".npz"), data)
        return atomic_write_json(path, {**record, "npz_sha256": sha256_of(data)})


def read_pair(
    path: str | Path, hint: str = "", what: str = "zspace record"
) -> tuple[dict, dict[str, Any]]:
    """(record, arrays) of a pair ``write_pair`` wrote; a missing, stale or damaged half
    is a one-line error (``hint``: what to do). A record without ``npz_sha256``
    (written before the pairs were tied) is read with its npz, if any, unchecked."""
    path = Path(path)
    more = f"; {hint}" if hint else ""
    record = read_json(path, hint)
    if not isinstance(record, dict):
        raise ZspaceError(f"{path} is not a {what}{more}")
    npz, want = path.with_suffix(".npz"), record.get("npz_sha256")
    if not npz.is_file():
        if want is not None:
            raise ZspaceError(f"{npz} is missing (its json names it){more}")
        return record, {}
    data = read_bytes(npz)
    if want is not None and sha256_of(data) != want:
        with locked(_lock_beside(path), remove=True):  # a writer between the two reads?
            record, data = read_json(path, hint), read_bytes(npz)
        if not isinstance(record, dict) or sha256_of(data) != record.get("npz_sha256"):
            raise ZspaceError(f"{npz} does not belong to {path.name} (another write?){more}")
    return record, read_npz(npz, hint, data)


WAIT_REPORT = 30.0  # seconds between two "still waiting" lines of ``locked``


@contextlib.contextmanager
def locked(
    path: str | Path,
    *,
    busy: str = "",
    remove: bool = False,
    waiting: Callable[[str, float], None] | None = None,
) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) for the block: a
    lock the kernel releases when its holder dies, so a kill never leaves it held.
    The holder's pid is written into the file. ``busy``: do not wait; when another
    process holds the lock, raise ``ZspaceError(busy.format(pid=HOLDER))``.
    ``remove``: delete the file on release (a lock inside a folder that must be left
    as found); whoever locked the deleted file meanwhile takes the new one instead.
    ``waiting(holder pid, seconds waited)``: called when the lock is busy, then every
    ``WAIT_REPORT`` seconds until it is free (a wait that says so)."""
    try:
        import fcntl
    except ImportError:  # Windows: unique temporaries + atomic renames still keep files whole
        yield
        return
    path = Path(path)
    while True:
        make_dirs(path.parent, undoable=False)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except FileNotFoundError:  # its folder was removed by the last holder: again
            continue
        except OSError as exc:
            raise os_error("lock", path, exc) from None
        started, told = time.monotonic(), -WAIT_REPORT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (fcntl.LOCK_NB if busy or waiting else 0))
                break
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                if busy or waiting is None:
                    os.close(fd)
                    raise ZspaceError(busy.format(pid=holder)) from None
                if (waited := time.monotonic() - started) - told >= WAIT_REPORT:
                    waiting(holder, waited)
                    told = waited
                time.sleep(0.1)
        with contextlib.suppress(FileNotFoundError):
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                break
        os.close(fd)
    try:
        with contextlib.suppress(OSError):  # a full disk: the lock holds, the pid is unknown
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        if remove:
            with contextlib.suppress(OSError):
                path.unlink()
        os.close(fd)  # releases the lock


def update_json(path: str | Path, change: Callable[[Any], Any]) -> Any:
    """Read-modify-write a JSON file that several commands add to (rows of eval.json,
    entries of samples/index.json): ``change(old)`` (None when the file is missing,
    truncated or foreign) returns the new content, written atomically while a lock
    beside the file is held, so two writers at once both keep their rows."""
    path = Path(path)
    with locked(_lock_beside(path), remove=True):
        try:
            old = read_json(path) if path.is_file() else None
        except ZspaceError:
            old = None
        new = change(old)
        atomic_write_json(path, new)
    return new


def _lock_beside(path: Path) -> Path:
    """The lock file of a shared file (its folder made first, undone with a failing
    command's other writes)."""
    return make_dirs(path.parent) / f".{path.name}.lock"


# errno values that say the machine or the user's setup refused, never a bug in zspace
_ENVIRONMENT = ("ENOSPC", "EDQUOT", "EROFS", "EACCES", "EPERM", "EMFILE", "ENFILE")
ENVIRONMENT_ERRNOS = frozenset(getattr(errno, n) for n in _ENVIRONMENT if hasattr(errno, n))
