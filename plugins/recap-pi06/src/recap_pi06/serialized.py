"""A module whose state is a serialised blob kept as a ``uint8`` buffer, so safetensors checkpoints carry
tokenizers. Loading a state dict replaces the buffer (whatever its size) and re-parses it."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class SerializedState(nn.Module):
    """Subclasses implement :meth:`_parse` (bytes -> live state) and call :meth:`_store` after a change."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("blob", torch.zeros(0, dtype=torch.uint8))

    def _store(self, data: bytes) -> None:
        self.blob = torch.frombuffer(bytearray(data), dtype=torch.uint8).clone().to(self.blob.device)

    def _parse(self, data: bytes) -> None:
        """Rebuild the live object (a tokenizer) from its serialised bytes; each subclass parses its own format."""
        raise NotImplementedError  # abstract

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        key = prefix + "blob"
        if key not in state_dict:
            missing_keys.append(key)
            return
        tensor = state_dict[key]
        if tensor.dtype != torch.uint8 or tensor.ndim != 1:
            error_msgs.append(f"{key}: expected a 1-D uint8 tensor, got {tensor.dtype} {tuple(tensor.shape)}")
            return
        data = bytes(tensor.detach().cpu().numpy().tobytes())
        try:
            self._parse(data)
        except Exception as exc:  # report through load_state_dict's error list, naming the key
            error_msgs.append(f"{key}: could not parse the stored tokenizer: {exc}")
            return
        self._store(data)
