"""A compiled project on disk (what ``tvmc compile`` wrote)."""
from __future__ import annotations

import json
import os
from typing import Dict, List, Mapping, Optional, Sequence, Union

import numpy as np

from ..errors import TinyEngineError

Inputs = Union[Mapping[str, np.ndarray], Sequence[np.ndarray], np.ndarray]


_DTYPES = ("int8", "int16", "int32", "uint8", "float32", "bool")


def read_metadata(project_dir: str) -> dict:
    """The project's metadata.json, checked; a clear error when the directory is
    not a compiled project or its metadata is damaged."""
    if not os.path.isdir(project_dir):
        raise TinyEngineError(f"{project_dir}: no such directory (give a directory or .tar written by 'tvmc compile')")
    path = os.path.join(project_dir, "metadata.json")
    if not os.path.isfile(path):
        raise TinyEngineError(f"{project_dir}: not a compiled tinyengine project (no metadata.json)")
    try:
        with open(path, "rb") as f:
            meta = json.loads(f.read().decode("utf-8"))
    except (OSError, ValueError) as exc:
        raise TinyEngineError(f"{path}: not readable JSON ({exc}); compile the model again") from None
    problem = _metadata_problem(meta)
    if problem:
        raise TinyEngineError(f"{path}: damaged metadata ({problem}); compile the model again")
    missing = [f for f in meta.get("files", []) if not os.path.isfile(os.path.join(project_dir, f))]
    if missing:
        raise TinyEngineError(f"{project_dir}: incomplete project, missing {', '.join(missing[:3])}"
                              f"{' and more' if len(missing) > 3 else ''}; compile the model again")
    return meta


def _metadata_problem(meta) -> Optional[str]:
    """What is wrong with a metadata.json object (None when the fields this package reads are sound)."""
    if not isinstance(meta, dict):
        return "not a JSON object"
    name = meta.get("model")
    if not isinstance(name, str) or not name.isidentifier() or not name.isascii():
        return "'model' is not a C identifier"
    for kind in ("inputs", "outputs"):
        tensors = meta.get(kind)
        if not isinstance(tensors, list) or not tensors:
            return f"'{kind}' is not a non-empty list"
        for t in tensors:
            if not isinstance(t, dict) or not isinstance(t.get("name"), str):
                return f"an entry of '{kind}' has no name"
            shape = t.get("shape")
            if (not isinstance(shape, list)
                    or not all(isinstance(d, int) and not isinstance(d, bool) and 0 < d < 1 << 31 for d in shape)):
                return f"{kind[:-1]} '{t['name']}' has no valid shape"
            if t.get("dtype") not in _DTYPES:
                return f"{kind[:-1]} '{t['name']}' has an unknown dtype {t.get('dtype')!r}"
    memory = meta.get("memory")
    if not isinstance(memory, dict) or not isinstance(memory.get("arena_bytes"), int):
        return "'memory.arena_bytes' is missing"
    files = meta.get("files", [])
    if not isinstance(files, list) or not all(isinstance(f, str) and not os.path.isabs(f)
                                              and ".." not in f.split("/") for f in files):
        return "'files' is not a list of relative paths"
    return None


def open_project(path: str, scratch_dir: str) -> str:
    """The directory of a compiled project given as a directory or a .tar
    (unpacked into ``scratch_dir``); refuses anything else with a clear error."""
    import tarfile

    if os.path.isdir(path):
        return path
    if not os.path.exists(path):
        raise TinyEngineError(f"{path}: no such file or directory")
    if not path.endswith(".tar"):
        raise TinyEngineError(f"{path}: not a compiled project (give the directory or .tar 'tvmc compile' wrote)")
    try:
        with tarfile.open(path) as tar:
            tar.extractall(scratch_dir, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise TinyEngineError(f"{path}: not a readable .tar of a compiled project ({exc})") from None
    return scratch_dir


def load_inputs_file(path: str, inputs_meta: List[dict]) -> Dict[str, np.ndarray]:
    """Inputs from an .npz keyed by tensor name (a lone unnamed array is accepted
    for a one-input model), checked against the model's names, shapes and dtypes."""
    import zipfile

    if not os.path.isfile(path):
        raise TinyEngineError(f"--inputs '{path}': no such file")
    if not path.endswith(".npz"):
        raise TinyEngineError(f"--inputs '{path}': give an .npz of arrays keyed by input name (np.savez)")
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise TinyEngineError(f"--inputs '{path}': an .npy array, not an .npz archive; use np.savez")
        with data:
            arrays = {k: data[k] for k in data.files}
    except ValueError as exc:  # object arrays need pickle, which is never allowed here
        raise TinyEngineError(f"--inputs '{path}': holds arrays that are not plain numbers ({exc})") from None
    except (OSError, zipfile.BadZipFile, EOFError, KeyError) as exc:
        raise TinyEngineError(f"--inputs '{path}': not a readable .npz ({exc})") from None
    return match_inputs(arrays, inputs_meta)


def random_arrays(inputs_meta: List[dict], seed: int) -> List[np.ndarray]:
    """Random inputs in model order: integers over their full range, floats in [-1, 1)."""
    rng = np.random.default_rng(seed)
    out = []
    for m in inputs_meta:
        dtype = np.dtype(m["dtype"])
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            out.append(rng.integers(info.min, int(info.max) + 1, size=m["shape"], dtype=dtype))
        else:
            out.append(rng.uniform(-1, 1, size=m["shape"]).astype(dtype))
    return out


def random_inputs(inputs_meta: List[dict], seed: int) -> Dict[str, np.ndarray]:
    """:func:`random_arrays` by input name."""
    return dict(zip((m["name"] for m in inputs_meta), random_arrays(inputs_meta, seed)))


def match_inputs(inputs: Inputs, inputs_meta: List[dict]) -> Dict[str, np.ndarray]:
    """The model's inputs by name, contiguous and in the model's shape and dtype.

    ``inputs``: a mapping by tensor name (a lone unnamed array is accepted for a
    one-input model), a sequence in model order, or one array.
    """
    names = [m["name"] for m in inputs_meta]
    if isinstance(inputs, np.ndarray):
        inputs = [inputs]
    if not isinstance(inputs, Mapping):
        inputs = list(inputs)
        if len(inputs) != len(names):
            raise TinyEngineError(f"{len(inputs)} input(s) given; the model has {len(names)}")
        inputs = dict(zip(names, inputs))
    if len(names) == 1 and names[0] not in inputs and len(inputs) == 1:
        inputs = {names[0]: next(iter(inputs.values()))}
    missing = [n for n in names if n not in inputs]
    if missing:
        raise TinyEngineError(f"missing input(s) {missing}; the model's inputs are {names}")
    out = {}
    for m in inputs_meta:
        arr = np.asarray(inputs[m["name"]])
        want = tuple(m["shape"])
        if arr.shape != want:
            raise TinyEngineError(f"input '{m['name']}': expected shape {list(want)}, got {list(arr.shape)}")
        if arr.dtype != np.dtype(m["dtype"]):
            raise TinyEngineError(f"input '{m['name']}': expected dtype {m['dtype']}, got {arr.dtype}")
        out[m["name"]] = np.ascontiguousarray(arr)
    return out


def previous_project_reason(folder: str) -> Optional[str]:
    """None when ``folder`` holds a project written by ``tvmc compile`` and nothing
    else (so it may be replaced), else why it may not."""
    from ..output_paths import GENERATOR, describe_unlisted, not_ours, read_manifest, unlisted_files

    meta = read_manifest(os.path.join(folder, "metadata.json"))
    if meta is None:
        return not_ours("compiled project (no metadata.json)")
    if meta.get("generator") == GENERATOR and isinstance(meta.get("files"), list):
        listed = [f for f in meta["files"] if isinstance(f, str)]
    elif meta.get("generator") is None and {"model", "memory", "ops"} <= set(meta):
        # Written before projects listed their files: only its own folders count.
        listed = [os.path.relpath(os.path.join(r, f), folder)
                  for sub in ("include", "src") for r, _, fs in os.walk(os.path.join(folder, sub)) for f in fs
                  if f.endswith((".h", ".c", ".cc"))] + ["metadata.json"]
    else:
        return not_ours("compiled project (its metadata.json is not one of ours)")
    return describe_unlisted(unlisted_files(folder, listed), "compiled project")


def previous_project_tar_reason(path: str) -> Optional[str]:
    """None when ``path`` is a .tar written by ``tvmc compile``, else why it is not."""
    import tarfile

    from ..output_paths import GENERATOR, not_ours

    try:
        with tarfile.open(path) as tar:
            member = tar.extractfile("metadata.json")
            meta = json.loads(member.read(4 << 20).decode("utf-8")) if member else None
    except (OSError, KeyError, ValueError, tarfile.TarError, EOFError):
        meta = None
    if not isinstance(meta, dict) or not (meta.get("generator") == GENERATOR or {"model", "memory", "ops"} <= set(meta)):
        return not_ours("compiled project .tar")
    return None
