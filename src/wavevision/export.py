"""Deployment: ONNX and TorchScript export, and ``torch.compile`` with a clear failure mode.

* :func:`export_onnx` writes an ONNX file with a dynamic batch dimension and (by default)
  checks it with onnxruntime at two batch sizes against the PyTorch model.
* :func:`export_torchscript` writes a traced TorchScript module, checked the same way.
* :func:`export_metadata` is what a deployed model's user needs to feed it (its input size,
  normalisation and class names); both exporters embed it (ONNX ``metadata_props``, a
  ``wavevision.json`` extra file of the TorchScript archive).
* :func:`load_run` loads a training run's model with its dataset's description, and the input
  size it trained on: ``model, size = load_run("runs/mine"); export_onnx(model, "m.onnx",
  input_size=size)`` writes a file that knows its normalisation and class names.

A file is written only once its check has passed (into a temporary file of the target's
folder, then renamed over the target), so a failed export never replaces a good file.
* :func:`compile_model` is ``torch.compile`` that first checks what Inductor needs on CPU
  (a C++ compiler) and says how to get it.

Every exporter runs the model in eval mode (restoring its mode afterwards) and can export the
fused model (:func:`wavevision.fuse`). ONNX exporter choice (``exporter="auto"``, the default):
the TorchScript-based exporter, which takes well under a second per WaveMix model, and the
``torch.export``-based (dynamo) exporter only for models using an operator the former cannot
translate (the FFT of the Fourier token mixer, antialiased resizing), since it takes 5-50 s
per model on a CPU machine and needs ``onnxscript`` and opset >= 18. ``onnx``, ``onnxscript``
and ``onnxruntime`` are imported only when used.
"""
from __future__ import annotations

import io
import json
import shutil
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn as nn

from .engine.predict import load_trained
from .fuse import fuse
from .utils import atomic_write_bytes
from .utils.validate import PathLike, check_choice

__all__ = [
    "DEFAULT_OPSET",
    "EXPORT_FORMATS",
    "ExportCheckError",
    "ExportReport",
    "compile_model",
    "export_metadata",
    "export_model",
    "export_onnx",
    "export_torchscript",
    "find_cxx_compiler",
    "load_run",
    "onnx_opset_range",
]

EXPORT_FORMATS = ("onnx", "torchscript")
ONNX_EXPORTERS = ("auto", "torchscript", "dynamo")
DEFAULT_OPSET = 17
_ONNX_EXTRA = "pip install 'wavevision[onnx]' (or pip install onnx onnxscript onnxruntime)"


class ExportCheckError(RuntimeError):
    """The exported file does not answer like the PyTorch model (nothing was written)."""


@dataclass
class ExportReport:
    """What an export wrote and how well the exported model matched PyTorch.

    Attributes:
        path: the file written.
        format: ``"onnx"`` or ``"torchscript"``.
        input_shape: the example input's shape (the batch dimension is dynamic).
        output_shape: the model's output shape for that input.
        opset: the ONNX opset (None for TorchScript).
        exporter: the ONNX exporter used (None for TorchScript).
        fused: whether BatchNorm was folded first.
        checks: per checked batch size, the largest absolute difference relative to the
            largest absolute PyTorch output (empty when ``check=False``).
        seconds: export time.
        metadata: what the file carries about its inputs (:func:`export_metadata`).
    """

    path: Path
    format: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    opset: int | None = None
    exporter: str | None = None
    fused: bool = False
    checks: dict[int, float] = field(default_factory=dict)
    seconds: float = 0.0
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def max_rel_error(self) -> float:
        return max(self.checks.values(), default=0.0)


def onnx_opset_range(exporter: str = "auto") -> tuple[int, int]:
    """The (lowest, highest) ONNX opset the installed torch can write with ``exporter``."""
    check_choice("exporter", exporter, ONNX_EXPORTERS)
    from torch.onnx import _constants as c

    lo, hi = int(getattr(c, "ONNX_MIN_OPSET", 7)), int(getattr(c, "ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET", 20))
    top = max(hi, int(getattr(c, "ONNX_MAX_OPSET", 23)))
    return {"torchscript": (lo, hi), "dynamo": (18, top), "auto": (lo, top)}[exporter]


def _require(module: str, purpose: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"{purpose} needs the {module!r} package, which is not installed ({e}); {_ONNX_EXTRA}") from None


def _example_input(model: nn.Module, input_size: Sequence[int] | None, example: torch.Tensor | None, batch: int) -> torch.Tensor:
    if example is not None:
        if not isinstance(example, torch.Tensor) or example.dim() != 4:
            raise ValueError(f"example must be a 4D tensor (batch, channels, height, width), got {getattr(example, 'shape', example)!r}")
        return example
    if input_size is None:
        raise ValueError("pass input_size=(H, W) (or (C, H, W)) or an example tensor: the exported graph is traced at that size")
    size = tuple(int(s) for s in input_size)
    chans = getattr(model, "in_chans", None)
    if len(size) == 2:
        size = (int(chans or 3), *size)
    if len(size) != 3 or min(size) < 1:
        raise ValueError(f"input_size must be (H, W) or (C, H, W) of positive integers, got {tuple(input_size)}")
    if chans is not None and size[0] != chans:
        raise ValueError(f"input_size {size} has {size[0]} channel(s) but the model takes {chans} (its in_chans, "
                         "from its weights); pass input_size=(H, W) to use the model's channels")
    param = next(iter(model.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    return torch.rand((batch, *size), generator=torch.Generator().manual_seed(0)).to(device=device, dtype=dtype)


def _single_output(out: Any, what: str) -> torch.Tensor:
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, list) and out and isinstance(out[0], dict):  # a detector's one dict per image
        raise TypeError(f"{what} supports models returning one tensor in eval mode, got one dict per image: a "
                        "detector's whole forward does not trace; trace its model.backbone (backbone + FPN) in Python")
    raise TypeError(f"{what} supports models returning one tensor in eval mode, got {type(out).__name__}")


class _EvalCopy:
    """The model to export: eval mode (restored afterwards), fused when asked."""

    def __init__(self, model: nn.Module, fuse: bool) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"expected a torch.nn.Module, got {type(model).__name__}")
        self.model, self.fuse = model, fuse
        self.modes = [(m, m.training) for m in model.modules()]

    def __enter__(self) -> nn.Module:
        self.model.eval()
        if self.fuse:
            return fuse(self.model)
        return self.model

    def __exit__(self, *exc: Any) -> None:
        for m, mode in self.modes:
            m.training = mode


def _relative_error(ours: Any, ref: torch.Tensor) -> float:
    ref = ref.detach().double().cpu()
    ours = torch.as_tensor(ours).double()
    if ours.shape != ref.shape:
        raise ExportCheckError(f"the exported model returned shape {tuple(ours.shape)}, PyTorch {tuple(ref.shape)}; "
                               "the model may bake in the traced batch size")
    return float((ours - ref).abs().max() / ref.abs().max().clamp_min(1e-12))


def _check_batches(run, model: nn.Module, example: torch.Tensor, rtol: float, what: str, dynamic: bool = True) -> dict[int, float]:
    """Compare ``run(x)`` with ``model(x)`` for the traced batch size and (``dynamic``) a different one."""
    checks: dict[int, float] = {}
    n = example.shape[0]
    for batch in (n, n + 1) if dynamic else (n,):
        g = torch.Generator().manual_seed(batch)
        x = torch.rand((batch, *example.shape[1:]), generator=g).to(example)
        with torch.no_grad():
            ref = _single_output(model(x), what)
        err = _relative_error(run(x), ref)
        checks[batch] = err
        if not err <= rtol:
            raise ExportCheckError(
                f"the exported {what} model differs from PyTorch at batch {batch}: relative error {err:.2e} > {rtol:.0e}; "
                "the model may use an operation the exporter does not translate faithfully (or bakes in the batch size)"
            )
    return checks


def export_onnx(
    model: nn.Module,
    path: PathLike,
    *,
    input_size: Sequence[int] | None = None,
    example: torch.Tensor | None = None,
    opset: int = DEFAULT_OPSET,
    dynamic_batch: bool = True,
    fuse: bool = False,
    exporter: str = "auto",
    check: bool = True,
    rtol: float = 1e-4,
    metadata: Mapping[str, Any] | None = None,
) -> ExportReport:
    """Write ``model`` as an ONNX file.

    Args:
        model: any model returning one tensor in eval mode (its mode is restored afterwards).
        path: the ``.onnx`` file (written atomically; parent folders created).
        input_size: (H, W) or (C, H, W) of the traced example (channels default to
            ``model.in_chans``); or pass ``example``.
        example: a (B, C, H, W) example input instead of ``input_size``.
        opset: ONNX opset (see :func:`onnx_opset_range`).
        dynamic_batch: make the batch dimension symbolic (``"batch"``).
        fuse: fold BatchNorm into convolutions first (:func:`wavevision.fuse`).
        exporter: ``"auto"`` (module docstring), ``"torchscript"`` or ``"dynamo"``.
        check: run the file with onnxruntime at two batch sizes and compare with PyTorch
            (before the file is written: a failed check leaves ``path`` as it was).
        rtol: largest accepted difference, relative to the largest absolute output.
        metadata: key/value pairs for the file's ``metadata_props`` (values not strings are
            written as JSON); default :func:`export_metadata` of the model and input.

    Raises:
        ValueError: bad opset, exporter or input size.
        ImportError: a needed ONNX package is missing (the message says what to install).
        ExportCheckError: the check failed (a RuntimeError; ``path`` is left as it was).
    """
    check_choice("exporter", exporter, ONNX_EXPORTERS)
    lo, hi = onnx_opset_range(exporter)
    if isinstance(opset, bool) or not isinstance(opset, int) or not lo <= opset <= hi:
        raise ValueError(
            f"ONNX opset {opset!r} is not supported by the {exporter} exporter of torch {torch.__version__}: "
            f"choose an opset from {lo} to {hi} (default {max(lo, min(DEFAULT_OPSET, hi))})"
        )
    if exporter == "dynamo" or (exporter == "auto" and opset > onnx_opset_range("torchscript")[1]):
        exporter = "dynamo"
        _require("onnxscript", "the dynamo ONNX exporter")
        _require("onnx", "the dynamo ONNX exporter")
    if check:
        ort = _require("onnxruntime", "checking the exported ONNX file")
    start = time.perf_counter()
    with _EvalCopy(model, fuse) as m:
        x = _example_input(m, input_size, example, batch=2)
        with torch.no_grad():
            out = _single_output(m(x), "ONNX export")
        data, exporter, opset = _onnx_bytes(m, x, opset, dynamic_batch, exporter)
        meta = export_metadata(model, tuple(x.shape[1:])) if metadata is None else dict(metadata)
        data += _onnx_metadata_props(_strings(meta))
        checks: dict[int, float] = {}
        if check:
            options = ort.SessionOptions()
            options.intra_op_num_threads = max(1, torch.get_num_threads())
            session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
            name = session.get_inputs()[0].name

            def run(t: torch.Tensor):
                return session.run(None, {name: t.detach().cpu().numpy()})[0]

            checks = _check_batches(run, m, x, rtol, "ONNX", dynamic=dynamic_batch)
        path = atomic_write_bytes(path, data)
    return ExportReport(Path(path), "onnx", tuple(x.shape), tuple(out.shape), opset, exporter, fuse, checks,
                        time.perf_counter() - start, meta)


def load_run(run: PathLike) -> tuple[nn.Module, tuple[int, int, int] | None]:
    """The model of a training run (its directory or a ``.safetensors`` checkpoint of
    ``wavevision train``) in eval mode, and the (C, H, W) input it trained on (None where the run
    does not record one). The run's dataset (name, classes, class names, input size,
    normalisation) goes into the model's ``pretrained_cfg``, which :func:`export_metadata` and
    :func:`wavevision.save_pretrained` read.
    """
    trained = load_trained(run)
    model, info = trained.model, trained.info
    if info is None:
        return model, None
    cfg = dict(cast(dict[str, Any], model.pretrained_cfg), dataset=info.name, num_classes=info.num_classes)
    if info.class_names:
        cfg["label_names"] = tuple(info.class_names)
    if info.image_size:
        cfg["input_size"] = (info.in_chans, *info.image_size)
    if info.mean:
        cfg["mean"], cfg["std"] = tuple(info.mean), tuple(info.std)
    setattr(model, "pretrained_cfg", cfg)  # noqa: B010 - nn.Module's typing takes only tensors and modules here
    if not info.image_size:
        return model, None
    scale = info.scale or 1  # super-resolution records the target's size: the model takes 1/scale of it
    height, width = (int(s) // scale for s in info.image_size)
    return model, (int(getattr(model, "in_chans", info.in_chans)), height, width)


def export_metadata(model: nn.Module, input_shape: Sequence[int]) -> dict[str, Any]:
    """What a user of the exported file needs to feed it, from ``model.pretrained_cfg``.

    ``model`` (the registered name), ``task``, ``input_size`` (C, H, W of the traced input),
    ``mean``/``std`` (the normalisation its inputs need; empty for inputs in [0, 1]),
    ``class_names`` and ``dataset`` where known. A model loaded from a training run carries the
    run's dataset in its ``pretrained_cfg`` (``wavevision export RUN``). ONNX files hold each
    entry in ``metadata_props`` (strings as they are, other values as JSON).
    """
    cfg = dict(getattr(model, "pretrained_cfg", None) or {})
    meta: dict[str, Any] = {"model": getattr(model, "model_name", type(model).__name__),
                            "input_size": [int(s) for s in input_shape]}
    for key, name in (("task", "task"), ("mean", "mean"), ("std", "std"), ("label_names", "class_names"),
                      ("dataset", "dataset"), ("num_classes", "num_classes")):
        if cfg.get(key) not in (None, (), []):
            meta[name] = list(cfg[key]) if isinstance(cfg[key], (tuple, list)) else cfg[key]
    return meta


def _strings(metadata: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _onnx_metadata_props(metadata: Mapping[str, str]) -> bytes:
    """``ModelProto.metadata_props`` entries as protobuf bytes to append to a serialized model.

    Protobuf merges repeated fields across concatenated messages, so appending these bytes adds
    the entries without the ``onnx`` package (field 14: StringStringEntryProto, key 1, value 2).
    """
    out = bytearray()
    for key, value in metadata.items():
        entry = b"".join(bytes([tag]) + _varint(len(raw)) + raw for tag, raw in ((0x0A, key.encode()), (0x12, value.encode())))
        out += bytes([14 << 3 | 2]) + _varint(len(entry)) + entry  # field 14, length-delimited
    return bytes(out)


def _onnx_bytes(model: nn.Module, x: torch.Tensor, opset: int, dynamic_batch: bool, exporter: str) -> tuple[bytes, str, int]:
    """The ONNX file's bytes, the exporter that wrote them and its opset."""
    with warnings.catch_warnings():
        # The tracer warns about Python-level shape arithmetic (spatial sizes are static by design).
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        if exporter != "dynamo":
            buffer = io.BytesIO()
            axes = {"input": {0: "batch"}, "output": {0: "batch"}} if dynamic_batch else None
            try:
                with _quiet_stdout():  # the TorchScript exporter dumps its whole graph on failure
                    torch.onnx.export(model, (x,), cast(Any, buffer), dynamo=False, opset_version=opset, input_names=["input"],
                                      output_names=["output"], dynamic_axes=axes, do_constant_folding=True)
                return buffer.getvalue(), "torchscript", opset
            except torch.onnx.errors.UnsupportedOperatorError as e:
                if exporter == "torchscript":
                    raise ValueError(f"{e}; export with exporter='dynamo' (or 'auto'), which translates more operators") from None
                try:
                    _require("onnxscript", f"exporting this model (the TorchScript exporter failed: {e})")
                except ImportError as missing:
                    raise missing from None
                opset = max(opset, 18)
        shapes = ({0: torch.export.Dim("batch", min=1)},) if dynamic_batch else None
        program = torch.onnx.export(model, (x,), None, dynamo=True, opset_version=opset, dynamic_shapes=shapes,
                                    input_names=["input"], output_names=["output"], verbose=False)
        assert program is not None  # the dynamo exporter returns its program
        return program.model_proto.SerializeToString(), "dynamo", opset


class _quiet_stdout:
    """Send file descriptor 1 to a temporary file (C++ prints bypass ``sys.stdout``)."""

    def __enter__(self) -> None:
        import os
        import sys
        import tempfile

        sys.stdout.flush()
        self.saved = os.dup(1)
        self.sink = tempfile.TemporaryFile()
        os.dup2(self.sink.fileno(), 1)

    def __exit__(self, *exc: Any) -> None:
        import os
        import sys

        sys.stdout.flush()
        os.dup2(self.saved, 1)
        os.close(self.saved)
        self.sink.close()


def export_torchscript(
    model: nn.Module,
    path: PathLike,
    *,
    input_size: Sequence[int] | None = None,
    example: torch.Tensor | None = None,
    fuse: bool = False,
    check: bool = True,
    rtol: float = 1e-4,
    metadata: Mapping[str, Any] | None = None,
) -> ExportReport:
    """Write ``model`` as a traced TorchScript module (``torch.jit.load`` reads it back).

    Arguments as in :func:`export_onnx`; the check reloads the module and compares it with
    PyTorch at two batch sizes before the file is written. ``metadata`` is stored as JSON in the
    archive's extra file ``wavevision.json``
    (``torch.jit.load(path, _extra_files={"wavevision.json": ""})`` reads it).
    """
    start = time.perf_counter()
    with _EvalCopy(model, fuse) as m:
        x = _example_input(m, input_size, example, batch=2)
        meta = export_metadata(model, tuple(x.shape[1:])) if metadata is None else dict(metadata)
        buffer = io.BytesIO()
        with torch.no_grad(), warnings.catch_warnings():
            out = _single_output(m(x), "TorchScript export")
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            # torch >= 2.10 marks torch.jit deprecated on every call; the format is still what this writes
            warnings.filterwarnings("ignore", category=FutureWarning, message=r".*torch\.jit")
            traced = torch.jit.trace(m, (x,), check_trace=False)
            torch.jit.save(traced, buffer, _extra_files={"wavevision.json": json.dumps(meta)})
            loaded = torch.jit.load(io.BytesIO(buffer.getvalue()), map_location=x.device) if check else None
        checks: dict[int, float] = {}
        if check:

            def run(t: torch.Tensor):
                assert loaded is not None
                with torch.no_grad():
                    return loaded(t).cpu()

            checks = _check_batches(run, m, x, rtol, "TorchScript")
        path = atomic_write_bytes(path, buffer.getvalue())
    return ExportReport(Path(path), "torchscript", tuple(x.shape), tuple(out.shape), fused=fuse, checks=checks,
                        seconds=time.perf_counter() - start, metadata=meta)


def export_model(model: nn.Module, path: PathLike, *, format: str = "onnx", **kwargs: Any) -> ExportReport:
    """:func:`export_onnx` or :func:`export_torchscript` by ``format``."""
    check_choice("export format", format, EXPORT_FORMATS)
    if format == "onnx":
        return export_onnx(model, path, **kwargs)
    unknown = sorted(set(kwargs) - {"input_size", "example", "fuse", "check", "rtol", "metadata"})
    if unknown:
        raise ValueError(f"TorchScript export does not take {unknown} (ONNX-only options)")
    return export_torchscript(model, path, **kwargs)


def _cxx_candidates() -> list[str]:
    import os

    names = [os.environ.get("CXX", "")]
    try:
        from torch._inductor import config as inductor_config

        names += [c for c in inductor_config.cpp.cxx if c]
    except Exception:  # pragma: no cover - internal layout changed
        pass
    return [n for n in dict.fromkeys(names + ["g++", "clang++", "c++"]) if n]


def find_cxx_compiler() -> str | None:
    """The C++ compiler Inductor would find on this machine, or None."""
    for name in _cxx_candidates():
        found = shutil.which(name)
        if found:
            return found
    return None


def compile_model(model: Any, *, backend: str = "inductor", device: str | torch.device | None = None, **kwargs: Any) -> Any:
    """``torch.compile(model, backend=backend, **kwargs)`` after checking the toolchain.

    Inductor generates C++ for CPU code, so on CPU it needs a C++ compiler; without one
    ``torch.compile`` only fails at the first call, deep in a traceback. This fails at once
    with the fix instead.

    Args:
        model: the module (or function) to compile.
        backend: a ``torch.compile`` backend.
        device: where the model runs (default: the device of its first parameter, else CPU).
    """
    if device is None:
        param = next(iter(model.parameters()), None) if isinstance(model, nn.Module) else None
        device = param.device if param is not None else torch.device("cpu")
    if backend == "inductor" and torch.device(device).type == "cpu" and find_cxx_compiler() is None:
        raise RuntimeError(
            "torch.compile's inductor backend needs a C++ compiler to generate CPU code, and none was found "
            f"(tried {', '.join(_cxx_candidates())} and $CXX). Install one (Debian/Ubuntu: apt-get install g++; "
            "macOS: xcode-select --install; conda: conda install gxx_linux-64) or set CXX to its path; "
            "or compile with backend='aot_eager' (no code generation), or run without compiling"
        )
    return torch.compile(model, backend=backend, **kwargs)
