"""Between openpi's observation layout and recap's keys.

openpi's ALOHA clients send (nested maps are read flattened with "/")::

    images/cam_high, images/cam_low, images/cam_left_wrist, images/cam_right_wrist   uint8 [3, H, W]
    state                                                                             float [14]
    prompt                                                                            str

which become ``observation.images.<camera>`` (uint8 [H, W, 3]), ``observation.state`` and the task text. The
adapter is configurable: openpi camera names can map to other recap camera names, images may arrive
channels-last, field names can change, and fields a client sends that the policy does not take can be ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np
import torch
from tensordict import TensorDict

from recap.data import keys
from recap.data.spec import RobotSpec
from recap.deploy.codec import ProtocolError

IMAGES = "images/"


@attrs.frozen
class ObservationAdapter:
    """openpi request fields <-> recap observation keys.

    Attributes:
        cameras: openpi camera name -> recap camera name, for names that differ (others map to themselves).
        state_field, env_state_field, prompt_field: the openpi field names of the state, the privileged
            object state (simulation only) and the task prompt.
        channels_first: images arrive [3, H, W] (openpi) rather than [H, W, 3].
        ignore: fields (or prefixes ending in "/") dropped without complaint, e.g. cameras the policy lacks.
    """

    cameras: Mapping[str, str] = attrs.field(factory=dict, converter=dict)
    state_field: str = "state"
    env_state_field: str = "environment_state"
    prompt_field: str = "prompt"
    channels_first: bool = True
    ignore: tuple[str, ...] = attrs.field(default=(), converter=tuple)

    def camera_fields(self, spec: RobotSpec) -> dict[str, str]:
        """openpi image field -> recap camera, for every camera of ``spec``."""
        ours_to_theirs = {ours: theirs for theirs, ours in self.cameras.items()}
        return {IMAGES + ours_to_theirs.get(c, c): c for c in spec.camera_names}

    def _ignored(self, field: str) -> bool:
        return any(field == i or (i.endswith("/") and field.startswith(i)) for i in self.ignore)

    def to_observation(
        self, fields: Mapping[str, Any], spec: RobotSpec, required_cameras: tuple[str, ...]
    ) -> tuple[TensorDict, str]:
        """(unbatched observation, prompt) from flattened request fields; errors name the offending field."""
        known = self.camera_fields(spec)
        expected = [self.state_field, self.prompt_field, *known]
        if spec.env_state_dim:
            expected.append(self.env_state_field)
        unknown = [f for f in fields if f not in expected and not self._ignored(f)]
        if unknown:
            raise ProtocolError(
                f"unknown field {unknown[0]!r}; this policy takes {expected} (and optional recap/* fields). "
                "Map other camera names with the adapter's cameras setting or list the field in its ignore setting"
            )
        prompt = fields.get(self.prompt_field)
        if not isinstance(prompt, str):
            raise ProtocolError(
                f"field {self.prompt_field!r}: expected the task prompt as a string, got {prompt!r}"
            )
        obs: dict[str, torch.Tensor] = {
            keys.STATE: _vector(fields, self.state_field, spec.state_dim),
        }
        if spec.env_state_dim:
            obs[keys.ENV_STATE] = _vector(fields, self.env_state_field, spec.env_state_dim)
        for field, camera in known.items():
            if field in fields:
                obs[keys.image_key(camera)] = self._image(fields[field], field, spec, camera)
            elif camera in required_cameras:
                raise ProtocolError(f"field {field!r} is missing: the policy needs camera {camera!r}")
        return TensorDict(obs, batch_size=[]), prompt

    def _image(self, value: Any, field: str, spec: RobotSpec, camera: str) -> torch.Tensor:
        cam = spec.camera(camera)
        shape = (3, cam.height, cam.width) if self.channels_first else (cam.height, cam.width, 3)
        if not isinstance(value, np.ndarray) or value.dtype != np.uint8 or value.shape != shape:
            raise ProtocolError(
                f"field {field!r}: expected a uint8 array of shape {list(shape)}, got {_describe(value)}"
            )
        image = torch.from_numpy(value.copy())
        return image.permute(1, 2, 0).contiguous() if self.channels_first else image

    def to_request(self, obs: TensorDict, prompt: str, spec: RobotSpec) -> dict[str, Any]:
        """The openpi request (nested ``images`` map) for one unbatched recap observation."""
        images = {}
        for field, camera in self.camera_fields(spec).items():
            key = keys.image_key(camera)
            if key in obs:
                frame = obs.get(key).cpu()
                images[field[len(IMAGES) :]] = (
                    frame.permute(2, 0, 1) if self.channels_first else frame
                ).numpy()
        request: dict[str, Any] = {
            self.state_field: obs.get(keys.STATE).float().cpu().numpy(),
            self.prompt_field: prompt,
        }
        if images:
            request["images"] = images
        if spec.env_state_dim and keys.ENV_STATE in obs:
            request[self.env_state_field] = obs.get(keys.ENV_STATE).float().cpu().numpy()
        return request


def flatten(message: Any) -> dict[str, Any]:
    """Nested maps -> one map with "/"-joined keys; the message must be a map with string keys."""
    if not isinstance(message, Mapping):
        raise ProtocolError(
            f"a request must be a msgpack map of observation fields, got {type(message).__name__}"
        )
    out: dict[str, Any] = {}
    for key, value in message.items():
        if not isinstance(key, str):
            raise ProtocolError(f"field names must be strings, got {key!r}")
        if isinstance(value, Mapping):
            out.update({f"{key}/{k}": v for k, v in flatten(value).items()})
        else:
            out[key] = value
    return out


def _vector(fields: Mapping[str, Any], field: str, dim: int) -> torch.Tensor:
    value = fields.get(field)
    if value is None:
        raise ProtocolError(f"field {field!r} is missing: expected a float array of shape [{dim}]")
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiu" or value.shape != (dim,):
        raise ProtocolError(
            f"field {field!r}: expected a float array of shape [{dim}], got {_describe(value)}"
        )
    return torch.from_numpy(value.astype(np.float32))


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.dtype} array of shape {list(value.shape)}"
    return type(value).__name__
