"""Where tinyengine-tvm may write, and how it writes there without losing user data.

Every output (a compiled project directory or .tar, a Zephyr project, a memory
plot, a run report, an outputs .npz) goes through this module:

* a directory output goes into a new or empty directory, or replaces a
  directory that holds a previous output of the same kind and nothing else
  (recognised by its manifest, see :func:`check_output_dir`);
* a file output goes to a new path, or replaces a file this tool wrote
  (recognised by its content);
* a path that must be kept (the model, an input project) is never inside what
  gets replaced, and the current directory is never replaced;
* outputs are staged beside their destination and moved in at the end, so an
  error leaves the destination as it was.

Paths are checked before any work (``check_*``) and written after it
(:func:`staged_dir`, :func:`write_file`); a refusal is a :class:`UsageError`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import tempfile
from typing import Callable, Iterable, Iterator, Optional, Sequence, Union

from .errors import UsageError

#: Written into every manifest (metadata.json, project.json, run reports) so that
#: a later run can recognise its own output.
GENERATOR = "tinyengine-tvm"

# A recogniser returns None when the existing path is a previous output that may
# be replaced, else the reason why it is not.
Recogniser = Callable[[str], Optional[str]]


@dataclasses.dataclass(frozen=True)
class DirTarget:
    """A checked output directory. ``mode``: "new", "empty" or "replace"."""

    path: str
    mode: str


@dataclasses.dataclass(frozen=True)
class FileTarget:
    """A checked output file (``replaces``: an earlier output of ours is there)."""

    path: str
    replaces: bool


def is_inside(path: str, folder: str) -> bool:
    """Whether ``path`` is ``folder`` or below it (symbolic links resolved)."""
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def check_creatable(path: str, what: str) -> None:
    """Refuse ``path`` unless it exists or could be made (its first existing
    ancestor is a writable directory); makes nothing."""
    ancestor = os.path.dirname(os.path.abspath(path))
    while not os.path.lexists(ancestor):
        ancestor = os.path.dirname(ancestor)
    if not os.path.isdir(ancestor):
        raise UsageError(f"{what} '{path}': '{ancestor}' is a file, not a directory")
    _check_writable_dir(ancestor, what, path, "create anything")


def _check_path_text(path: str, what: str) -> None:
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path).strip():
        raise UsageError(f"{what}: the path is empty")
    if "\0" in os.fspath(path):
        raise UsageError(f"{what} '{path}': the path contains a NUL character")


def check_output_dir(path: str, what: str, recognise: Recogniser, keep: Iterable[str] = ()) -> DirTarget:
    """Check that ``path`` may receive a directory output (see the module rules).

    ``recognise`` tells whether an existing non-empty directory is a previous
    output of this kind; ``keep`` are paths (the model, input projects) that
    must survive, so an output directory holding one of them is refused.
    """
    _check_path_text(path, what)
    full = os.path.abspath(path)
    if os.path.lexists(full) and not os.path.isdir(full):
        raise UsageError(f"{what} '{path}' exists and is not a directory; nothing was written")
    for k in keep:
        if k and os.path.lexists(k) and is_inside(k, full):
            raise UsageError(f"{what} '{path}' contains '{k}', which this command reads; "
                             "choose another directory (nothing was written)")
    if not os.path.lexists(full):
        check_creatable(full, what)
        return DirTarget(full, "new")
    if not os.listdir(full):
        _check_writable_dir(full, what, path)
        return DirTarget(full, "empty")
    why = recognise(full)
    if why is not None:
        raise UsageError(f"{what} '{path}' is not empty and {why}; choose a new or empty directory "
                         "(nothing was written)")
    if os.path.islink(full):
        raise UsageError(f"{what} '{path}' is a symbolic link to a previous output; give the directory itself")
    if is_inside(os.getcwd(), full):
        raise UsageError(f"{what} '{path}' holds the current directory and cannot be replaced; "
                         "run from elsewhere or choose another directory")
    _check_writable_dir(os.path.dirname(full), what, path)
    return DirTarget(full, "replace")


def _check_writable_dir(folder: str, what: str, path: str, action: str = "write") -> None:
    try:  # access() says yes to root even where nothing can be made (/proc): try it
        os.rmdir(tempfile.mkdtemp(prefix=".tinyengine-probe-", dir=folder))
    except OSError as exc:
        raise UsageError(f"{what} '{path}': cannot {action} in '{folder}' ({exc.strerror})") from None


def unlisted_files(folder: str, listed: Iterable[str], free_dirs: Sequence[str] = ("build",)) -> list:
    """Files under ``folder`` (relative paths) that are neither in ``listed`` nor
    under one of ``free_dirs`` (build trees a previous output may have grown)."""
    listed = {os.path.normpath(p) for p in listed}
    extra = []
    for root, dirs, files in os.walk(folder):
        rel_root = os.path.relpath(root, folder)
        if rel_root == ".":
            dirs[:] = [d for d in dirs if d not in free_dirs]
        for f in files:
            rel = os.path.normpath(os.path.join(rel_root, f))
            if rel not in listed:
                extra.append(rel)
    return sorted(extra)


def describe_unlisted(extra: Sequence[str], kind: str) -> Optional[str]:
    """None when ``extra`` is empty, else a reason naming the first few files."""
    if not extra:
        return None
    shown = ", ".join(extra[:3]) + (f" and {len(extra) - 3} more" if len(extra) > 3 else "")
    return f"holds files that are not part of the previous {kind} ({shown})"


def read_manifest(path: str) -> Optional[dict]:
    """A JSON object from ``path``, or None when it is missing or not one."""
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read(4 << 20).decode("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@contextlib.contextmanager
def staged_dir(target: DirTarget) -> Iterator[str]:
    """Yield an empty staging directory; on success its contents become ``target``.

    On an exception the staging directory is removed and ``target`` is left as
    it was (for "replace", the previous output is put back if the swap fails).
    """
    made = _make_parents(os.path.dirname(target.path)) if target.mode == "new" else []
    where = target.path if target.mode == "empty" else os.path.dirname(target.path)
    staging = tempfile.mkdtemp(prefix=".tinyengine-staging-", dir=where)
    try:
        yield staging
        if target.mode == "new":
            os.rename(staging, target.path)
        elif target.mode == "empty":
            moved = []
            try:
                for entry in sorted(os.listdir(staging)):
                    os.rename(os.path.join(staging, entry), os.path.join(target.path, entry))
                    moved.append(entry)
            except BaseException:
                for entry in moved:
                    _remove(os.path.join(target.path, entry))
                raise
            os.rmdir(staging)
        else:
            backup = tempfile.mkdtemp(prefix=".tinyengine-previous-", dir=where)
            os.rmdir(backup)
            os.rename(target.path, backup)
            try:
                os.rename(staging, target.path)
            except BaseException:
                os.rename(backup, target.path)
                raise
            shutil.rmtree(backup, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for d in reversed(made):
            with contextlib.suppress(OSError):
                os.rmdir(d)
        raise


def _make_parents(folder: str) -> list:
    """Create ``folder`` and its missing ancestors; return those made, outermost first."""
    missing = []
    while not os.path.lexists(folder):
        missing.append(folder)
        folder = os.path.dirname(folder)
    for d in reversed(missing):
        os.mkdir(d)
    return list(reversed(missing))


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            os.remove(path)


def check_output_file(path: str, what: str, suffixes: Sequence[str], recognise: Recogniser,
                      keep: Iterable[str] = ()) -> FileTarget:
    """Check that ``path`` may receive a file output: right suffix, not a directory,
    not one of ``keep``, new or a previous output of ours (``recognise``)."""
    _check_path_text(path, what)
    full = os.path.abspath(path)
    if suffixes and not full.lower().endswith(tuple(s.lower() for s in suffixes)):
        raise UsageError(f"{what} '{path}' must end in {' or '.join(suffixes)}")
    if os.path.isdir(full):
        raise UsageError(f"{what} '{path}' is a directory; give a file name")
    for k in keep:
        if k and os.path.lexists(k) and os.path.realpath(k) == os.path.realpath(full):
            raise UsageError(f"{what} '{path}' is the file this command reads; choose another name")
    if os.path.lexists(full):
        if not os.path.isfile(full):
            raise UsageError(f"{what} '{path}' exists and is not a regular file; nothing was written")
        why = recognise(full)
        if why is not None:
            raise UsageError(f"{what} '{path}' exists and {why}; choose a new name (nothing was written)")
        _check_writable_dir(os.path.dirname(full), what, path)
        return FileTarget(full, True)
    check_creatable(full, what)
    return FileTarget(full, False)


def write_file(target: FileTarget, data: Union[bytes, Callable[[str], None]]) -> str:
    """Write ``data`` (bytes, or a function that writes a given path) to ``target``
    through a temporary file in the same directory; returns the path."""
    made = _make_parents(os.path.dirname(target.path))
    base = os.path.basename(target.path)
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=".partial" + os.path.splitext(base)[1],
                               dir=os.path.dirname(target.path))
    try:
        if callable(data):
            os.close(fd)
            data(tmp)
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target.path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        for d in reversed(made):
            with contextlib.suppress(OSError):
                os.rmdir(d)
        raise
    return target.path


def not_ours(kind: str) -> str:
    """The reason given when a path holds something this tool did not write."""
    return f"was not written by {GENERATOR} as a {kind}"
