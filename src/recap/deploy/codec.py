"""openpi's wire format: msgpack maps with numpy arrays as ``{"__ndarray__": True, "data", "dtype", "shape"}``.

The array maps use bytes keys (``b"__ndarray__"``, as openpi-client writes them); both bytes and str keys are
read. Object, void and complex dtypes are refused both ways (they could carry pickles or need a schema), and an
array whose byte count does not match its dtype and shape is refused rather than misread.
"""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np
import torch

from recap.errors import RecapError

REFUSED_KINDS = ("O", "V", "c")


class ProtocolError(RecapError, ValueError):
    """A message that does not follow the protocol (not msgpack, a bad array, a wrong field)."""


def _encode(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        obj = obj.detach().cpu().numpy()
    if isinstance(obj, (np.ndarray, np.generic)) and obj.dtype.kind in REFUSED_KINDS:
        raise ProtocolError(f"arrays of dtype {obj.dtype} cannot be sent; use numeric or bool arrays")
    if isinstance(obj, np.ndarray):
        return {
            b"__ndarray__": True,
            b"data": np.ascontiguousarray(obj).tobytes(),
            b"dtype": obj.dtype.str,
            b"shape": list(obj.shape),
        }
    if isinstance(obj, np.generic):
        return {b"__npgeneric__": True, b"data": obj.item(), b"dtype": obj.dtype.str}
    raise TypeError(f"cannot encode {type(obj).__name__} as msgpack")


def _field(obj: dict, name: str) -> Any:
    return obj[name.encode()] if name.encode() in obj else obj.get(name)


def _decode(obj: dict) -> Any:
    if _field(obj, "__ndarray__") is None and _field(obj, "__npgeneric__") is None:
        return obj
    try:
        dtype = np.dtype(_field(obj, "dtype"))
    except TypeError as exc:
        raise ProtocolError(f"an array has an unknown dtype {_field(obj, 'dtype')!r}: {exc}") from None
    if dtype.kind in REFUSED_KINDS:
        raise ProtocolError(f"arrays of dtype {dtype} are refused; send numeric or bool arrays")
    data = _field(obj, "data")
    if _field(obj, "__npgeneric__") is not None:
        return dtype.type(data)
    shape = tuple(int(n) for n in _field(obj, "shape") or ())
    if not isinstance(data, bytes) or any(n < 0 for n in shape):
        raise ProtocolError("an array map needs bytes 'data' and a non-negative 'shape'")
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise ProtocolError(
            f"an array of dtype {dtype} and shape {list(shape)} needs {expected} bytes of data, got {len(data)}"
        )
    return np.frombuffer(data, dtype=dtype).reshape(shape)


def pack(message: Any) -> bytes:
    """Encode a message (maps, lists, scalars, strings, numpy arrays or torch tensors)."""
    return msgpack.packb(message, default=_encode, use_bin_type=True)


def unpack(data: bytes) -> Any:
    """Decode a message; arrays come back as read-only numpy arrays over the message bytes."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ProtocolError(f"expected a binary msgpack frame, got {type(data).__name__}")
    try:
        return msgpack.unpackb(data, object_hook=_decode, raw=False, strict_map_key=False)
    except ProtocolError:
        raise
    except Exception as exc:  # msgpack raises several unrelated types for bad bytes
        raise ProtocolError(f"the message is not valid msgpack ({type(exc).__name__}: {exc})") from None
