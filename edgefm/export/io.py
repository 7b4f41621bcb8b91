"""Loading what the compress/export commands work on: model checkpoints and window data.

Checkpoints: a distilled student (``edgefm-student``, via :func:`distill.deploy.load_student`)
or a compressed model written by :func:`save_model` (``edgefm-model`` version 2). Pruning changes
the architecture, so a compressed model is stored as its module tree described in plain data
(each module's class name, constructor-level attributes such as channel counts, kernel sizes and
groups, and its parameter and buffer names) plus its tensors, never as a pickled module. Loading
rebuilds that tree from classes of ``torch.nn`` and edgefm's own packages only, so nothing in the
file can run code; every load checks the manifest's sha256 (see
:func:`edgefm.train.checkpoint.read_torch_checkpoint`).
"""

from __future__ import annotations

import dataclasses
import importlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgefm.errors import DataError, EdgefmError, ExportError, ManifestError

FORMAT = "edgefm-model"
VERSION = 2
STUDENT_FORMAT, STUDENT_VERSION = "edgefm-student", 1

# classes a model checkpoint may name: torch's layers and edgefm's own modules and configs
ALLOWED_PACKAGES = ("torch.nn.modules.", "distill.", "quantize.", "edgefm.")
_INTERNALS = frozenset(nn.Module().__dict__)          # nn.Module's own bookkeeping, rebuilt by __init__
_DATACLASS = "__dataclass__"
_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


@dataclass
class LoadedModel:
    model: torch.nn.Module                # (B, C, T) -> (B, 1) bpm, eval mode
    input_spec: dict
    source: dict                          # checkpoint, sha256, unverified (no manifest), config
    meta: dict = field(default_factory=dict)
    output_spec: dict = field(default_factory=lambda: {"name": "hr", "unit": "bpm"})


# ---------------------------------------------------------------- module tree as plain data

def _class_ref(cls: type, where: str) -> str:
    """``module:qualname`` of a class a checkpoint may name; :class:`ExportError` otherwise."""
    ref = f"{cls.__module__}:{cls.__qualname__}"
    try:
        ok = _resolve(ref, where) is cls
    except ManifestError:
        ok = False
    if not ok:
        raise ExportError(f"{where} is a {ref}, which a code-free checkpoint cannot name (only classes "
                          f"importable from {', '.join(p.rstrip('.') for p in ALLOWED_PACKAGES)})", field=where)
    return ref


def _resolve(ref: object, where: str, path=None) -> type:
    """The class named ``module:qualname``, imported only from :data:`ALLOWED_PACKAGES`."""
    mod, _, qual = str(ref).partition(":")
    if not (_DOTTED.match(mod) and _DOTTED.match(qual) and mod.startswith(ALLOWED_PACKAGES)):
        raise ManifestError(f"class {str(ref)[:80]!r} is not allowed in a model checkpoint (only torch.nn and "
                            "edgefm classes)", path=path, field=where)
    try:
        obj = importlib.import_module(mod)
        for part in qual.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError):
        raise ManifestError(f"class {ref} does not exist in this edgefm", path=path, field=where) from None
    if not isinstance(obj, type):
        raise ManifestError(f"{ref} is not a class", path=path, field=where)
    return obj


def _encode(v, where: str):
    """An attribute value as plain data: numbers, strings, None, tensors, tuples/lists/dicts of
    them, and dataclass configs of allowed classes."""
    if v is None or isinstance(v, (str, torch.Tensor)):
        return v.detach().cpu() if isinstance(v, torch.Tensor) else v
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v)
    if isinstance(v, (tuple, list)):
        items = [_encode(x, f"{where}[{i}]") for i, x in enumerate(v)]
        return items if isinstance(v, list) else tuple(items)
    if isinstance(v, dict) and _DATACLASS not in v and all(isinstance(k, (str, int)) for k in v):
        return {k: _encode(x, f"{where}.{k}") for k, x in v.items()}
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return {_DATACLASS: _class_ref(type(v), where),
                "fields": {f.name: _encode(getattr(v, f.name), f"{where}.{f.name}")
                           for f in dataclasses.fields(v) if f.init}}
    raise ExportError(f"{where} is a {type(v).__name__}, which cannot be stored without code", field=where,
                      hint="keep only numbers, strings, tensors and dataclass configs on modules you save")


def _decode(v, where: str, path):
    if isinstance(v, dict):
        if _DATACLASS in v:
            cls = _resolve(v[_DATACLASS], where, path)
            if not dataclasses.is_dataclass(cls):
                raise ManifestError(f"{v[_DATACLASS]} is not a config class", path=path, field=where)
            return cls(**{k: _decode(x, f"{where}.{k}", path) for k, x in v["fields"].items()})
        return {k: _decode(x, f"{where}.{k}", path) for k, x in v.items()}
    if isinstance(v, (tuple, list)):
        items = [_decode(x, where, path) for x in v]
        return items if isinstance(v, list) else tuple(items)
    return v


def describe_module(m: nn.Module, prefix: str = "", tensors: dict | None = None,
                    seen: dict | None = None) -> dict:
    """``m``'s module tree as plain data; its parameters and buffers go into ``tensors`` (full
    dotted name -> tensor; a tensor shared by two names is stored once and referenced).

    Raises:
        ExportError: a class outside the allowed packages, a registered hook, or an attribute
            that is not plain data (anything that would need code to restore).
    """
    tensors = {} if tensors is None else tensors
    seen = {} if seen is None else seen
    where = prefix.rstrip(".") or "model"
    for k in _INTERNALS:
        if "hook" in k and getattr(m, k, None):
            raise ExportError(f"{where} has hooks registered ({k}): they are code and cannot be stored",
                              field=where, hint="remove the hooks before saving")

    def entries(items, extra):
        out = []
        for name, t in items:
            full = prefix + name
            if t is None:
                out.append((name, None))
            elif id(t) in seen:
                out.append((name, {"alias": seen[id(t)]}))
            else:
                seen[id(t)] = full
                tensors[full] = t.detach().cpu()
                out.append((name, extra(name, t)))
        return out

    for name, p in m._parameters.items():
        if p is not None and type(p) is not nn.Parameter:
            raise ExportError(f"{prefix}{name} is a {type(p).__name__}, not a plain Parameter", field=where)
    return {
        "class": _class_ref(type(m), where),
        "attrs": {k: _encode(v, f"{where}.{k}") for k, v in m.__dict__.items() if k not in _INTERNALS},
        "params": entries(m._parameters.items(), lambda n, p: {"requires_grad": bool(p.requires_grad)}),
        "buffers": entries(m._buffers.items(),
                           lambda n, b: {"persistent": n not in m._non_persistent_buffers_set}),
        "children": [(name, None if c is None else describe_module(c, f"{prefix}{name}.", tensors, seen))
                     for name, c in m._modules.items()],
        "training": bool(m.training)}


def _name(n, where: str, path) -> str:
    if not isinstance(n, str) or not n or "." in n or n.startswith("__") or n in _INTERNALS:
        raise ManifestError(f"bad member name {str(n)[:40]!r}", path=path, field=where)
    return n


def _build(node: dict, prefix: str, tensors: dict, made: dict, path) -> nn.Module:
    where = prefix.rstrip(".") or "model"
    cls = _resolve(node["class"], where, path)
    if not issubclass(cls, nn.Module):
        raise ManifestError(f"{node['class']} is not a torch module", path=path, field=where)
    m = cls.__new__(cls)
    nn.Module.__init__(m)              # the bookkeeping only; the class's own __init__ is not run
    for k, v in node["attrs"].items():
        m.__dict__[_name(k, where, path)] = _decode(v, f"{where}.{k}", path)

    def tensor(name, info):
        full = prefix + name
        if info is None:
            return None
        if "alias" in info:
            return made[info["alias"]]
        t = tensors[full]
        if not isinstance(t, torch.Tensor):
            raise ManifestError(f"{full} is not a tensor", path=path, field=full)
        return made.setdefault(full, t)

    for name, info in node["params"]:
        t = tensor(_name(name, where, path), info)
        if t is not None and not isinstance(t, nn.Parameter):
            t = made[prefix + name] = nn.Parameter(t, requires_grad=bool(info["requires_grad"]))
        m._parameters[name] = t
    for name, info in node["buffers"]:
        m._buffers[_name(name, where, path)] = tensor(name, info)
        if info is not None and "alias" not in info and not info["persistent"]:
            m._non_persistent_buffers_set.add(name)
    for name, child in node["children"]:
        m._modules[_name(name, where, path)] = None if child is None else \
            _build(child, f"{prefix}{name}.", tensors, made, path)
    m.training = bool(node["training"])
    return m


def build_module(structure: dict, tensors: dict, path=None) -> nn.Module:
    """Rebuild the module tree :func:`describe_module` described; typed errors on a malformed one."""
    made: dict = {}
    try:
        model = _build(structure, "", tensors, made, path)
    except ManifestError:
        raise
    except EdgefmError as e:          # a config dataclass refused its stored values
        raise ManifestError(f"model structure does not rebuild: {e.one_line()}", path=path,
                            field="structure") from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, RecursionError) as e:
        raise ManifestError(f"model structure is malformed ({type(e).__name__}: {e})"[:300], path=path,
                            field="structure") from None
    unused = sorted(set(tensors) - set(made))
    if unused:
        raise ManifestError(f"tensors not used by the model structure: {', '.join(unused[:5])}", path=path,
                            field="tensors")
    return model


# ---------------------------------------------------------------- checkpoints

def model_from_checkpoint(ck: dict) -> LoadedModel:
    """A :class:`LoadedModel` from a checkpoint dict read by ``read_torch_checkpoint`` (student or model)."""
    src = {"checkpoint": ck["path"], "sha256": ck["sha256"], "unverified": ck["unverified"]}
    if ck["format"] == STUDENT_FORMAT:
        from distill.deploy import student_from_checkpoint
        ls = student_from_checkpoint(ck)
        return LoadedModel(ls.deployable(), ls.input_spec,
                           {**src, "config": {"arch": ls.meta.get("arch"), "student": ls.meta.get("student_config")}},
                           output_spec=dict(ls.meta.get("output_spec") or {"name": "heart_rate", "unit": "bpm"}))
    if not isinstance(ck.get("structure"), dict) or not isinstance(ck.get("tensors"), dict):
        raise ManifestError("model checkpoint lacks its structure or tensors", path=ck["path"], field="structure")
    model = build_module(ck["structure"], ck["tensors"], ck["path"])
    return LoadedModel(model.eval(), dict(ck.get("input_spec") or {}), {**dict(ck.get("source") or {}), **src},
                       dict(ck.get("meta") or {}), dict(ck.get("output_spec") or {"name": "hr", "unit": "bpm"}))


def load_model(path: str | Path, *, unverified: bool | None = None) -> LoadedModel:
    """Load a student (``edgefm distill run``) or compressed model (``edgefm compress prune``) checkpoint.

    ``unverified``: accept a file without a manifest (``source["unverified"]`` then says so);
    None follows :func:`edgefm.train.checkpoint.accept_unverified`."""
    from edgefm.train.checkpoint import read_torch_checkpoint
    ck = read_torch_checkpoint(path, {STUDENT_FORMAT: STUDENT_VERSION, FORMAT: VERSION}, "student or model",
                               unverified=unverified,
                               hint_missing="pass a student checkpoint (edgefm distill run)",
                               hint_corrupt="the file is corrupted or not a torch checkpoint")
    return model_from_checkpoint(ck)


def save_model(path: str | Path, model: torch.nn.Module, *, input_spec: dict, source: dict, meta: dict,
               output_spec: dict | None = None) -> Path:
    """Write a (pruned) model checkpoint atomically with its manifest: the module tree as plain data
    plus its tensors (see the module docstring). Nothing is written if the model cannot be
    stored that way (:class:`ExportError`)."""
    from edgefm.train.checkpoint import plain_data, save_torch_checkpoint
    path = Path(path)
    output_spec = output_spec or {"name": "hr", "unit": "bpm"}
    model.eval()
    tensors: dict = {}
    structure = describe_module(model, tensors=tensors)
    payload = {"format": FORMAT, "version": VERSION, "structure": structure, "tensors": tensors,
               "input_spec": plain_data(input_spec), "output_spec": plain_data(output_spec),
               "source": plain_data(source), "meta": plain_data(meta)}
    return save_torch_checkpoint(path, payload, {
        "format": "torch-checkpoint", "kind": FORMAT, "source": source, "input_spec": input_spec,
        "output_spec": output_spec, "quantization": {"dtype": "float32"}, "meta": meta})


def load_windows(data: str | Path, split: str, channels=None, max_n: int | None = None,
                 label: str | None = "hr") -> tuple[np.ndarray, np.ndarray | None]:
    """(x (N, C, T) float32 normalised ACC, y (N,) or None) from a windows dataset directory
    (``cohort/raw``; a cohort directory is accepted too) or a ``.npy`` array of (N, C, T)."""
    data = Path(data)
    if data.suffix == ".npy":
        try:
            x = np.load(data).astype(np.float32)
        except Exception as e:
            raise DataError(f"cannot read windows ({type(e).__name__})", path=data) from e
        if x.ndim != 3 or not np.isfinite(x).all():
            raise DataError(f"expected finite (N, C, T) windows, got shape {x.shape}", path=data)
        return x[:max_n], None
    if (data / "raw" / "manifest.json").exists():
        data = data / "raw"
    from distill.data import acc_view, load_split
    from distill.data import label as get_label
    w = load_split(data, split, max_n=max_n)
    x = acc_view(w, tuple(channels) if channels else None)
    y = None
    if label and label in w.labels:
        y = get_label(w, label).astype(np.float32)
        ok = np.isfinite(y)
        x, y = x[ok], y[ok]
    if len(x) == 0:
        raise DataError(f"no windows in split {split!r}", path=data, field="split")
    return x, y
