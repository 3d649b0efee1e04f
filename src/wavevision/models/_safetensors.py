"""Minimal reader and writer of the safetensors format, so the core needs no extra package.

Layout: an 8-byte little-endian header length N, N bytes of JSON mapping each name to
``{"dtype", "shape", "data_offsets": [begin, end]}`` (plus an optional string-to-string
``__metadata__``), then the raw little-endian tensor bytes.
"""
from __future__ import annotations

import json
import struct
from typing import Dict, Optional, Tuple

import torch

__all__ = ["load_safetensors", "save_safetensors_bytes"]

_DTYPES = {
    torch.float64: "F64",
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}
_FROM_NAME = {v: k for k, v in _DTYPES.items()}


def save_safetensors_bytes(tensors: Dict[str, torch.Tensor], metadata: Optional[Dict[str, str]] = None) -> bytes:
    """Serialise ``tensors`` (moved to CPU, made contiguous) to safetensors bytes."""
    header: Dict[str, object] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    chunks = []
    offset = 0
    for name, t in tensors.items():
        if t.dtype not in _DTYPES:
            raise TypeError(f"tensor {name!r} has dtype {t.dtype}, which safetensors cannot store")
        data = t.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
        header[name] = {"dtype": _DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * ((-len(raw)) % 8)
    return struct.pack("<Q", len(raw)) + raw + b"".join(chunks)


def load_safetensors(path: str) -> Tuple[Dict[str, torch.Tensor], Dict[str, str]]:
    """Read a safetensors file into CPU tensors; returns (tensors, metadata).

    Raises ValueError naming the file when it is truncated or not a safetensors file.
    """
    with open(path, "rb") as f:
        blob = f.read()
    try:
        if len(blob) < 8:
            raise ValueError("file shorter than its 8-byte header length")
        (n,) = struct.unpack("<Q", blob[:8])
        if n > len(blob) - 8:
            raise ValueError(f"header length {n} exceeds the file size {len(blob)}")
        header = json.loads(blob[8 : 8 + n].decode("utf-8"))
        if not isinstance(header, dict):
            raise ValueError("header is not a JSON object")
        metadata = header.pop("__metadata__", {}) or {}
        data = memoryview(blob)[8 + n :]
        out: Dict[str, torch.Tensor] = {}
        for name, info in header.items():
            dtype = _FROM_NAME[info["dtype"]]
            begin, end = info["data_offsets"]
            if not 0 <= begin <= end <= len(data):
                raise ValueError(f"tensor {name!r} lies outside the data buffer (truncated file?)")
            shape = [int(s) for s in info["shape"]]
            buf = bytearray(data[begin:end])
            t = torch.frombuffer(buf, dtype=torch.uint8) if buf else torch.empty(0, dtype=torch.uint8)
            t = t.view(dtype).reshape(shape)
            out[name] = t
        return out, dict(metadata)
    except (KeyError, TypeError, UnicodeDecodeError, json.JSONDecodeError, RuntimeError, ValueError) as e:
        raise ValueError(f"{path} is not a valid safetensors file ({e}); was it written completely?") from None
