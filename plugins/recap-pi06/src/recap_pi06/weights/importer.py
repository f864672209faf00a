"""Fill a pi06 policy from a public checkpoint: shapes inferred from the tensors, every key accounted for.

``import_policy`` builds the policy from the tensor shapes (head counts from the directory's ``config.json`` or the
preset), then loads tensor by tensor, shard by shard. It refuses, naming the keys, a checkpoint with keys of no
known layout, a tensor the model has no place for, a wrong shape or a missing tensor; it names every skipped key
and every parameter recap initialises itself (tokenizers, statistics, new vocabulary rows).
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import attrs
import torch
from torch import nn

from recap.data.spec import RobotSpec
from recap.data.stats import NormStats
from recap.errors import ConfigError
from recap_pi06.config import Pi06Config
from recap_pi06.policy import Pi06Policy
from recap_pi06.text_tokenizer import read_tokenizer_file
from recap_pi06.weights.gemma3 import CombinedCheckpoint, gemma3_config, gemma3_target_of, is_gemma3
from recap_pi06.weights.layouts import SKIP, TIED_HEAD, skip_reason, target_of
from recap_pi06.weights.reader import CheckpointFiles

#: parameters no public checkpoint carries: recap fits or computes them (reported as initialised by recap)
RECAP_OWN = ("trunk.norm.", "trunk.text.", "fast.", "trunk.env_proj.")
#: the parts a checkpoint may bring (most specific first): a part it brings at all must come whole
#: a policy or value-network config
C = TypeVar("C")
PARTS = ("trunk.vision.project.", "trunk.vision.", "trunk.decoder.", "expert.")
EMBED = "trunk.decoder.embed.weight"


@attrs.frozen
class ImportReport:
    """What an import did, key by key."""

    loaded: dict[str, str]  # checkpoint key -> pi06 parameter
    skipped: dict[str, str]  # checkpoint key -> why it is not loaded
    initialised: list[str]  # pi06 parameters not in the checkpoint (recap's own, or parts the layout lacks)
    embedding_rows: tuple[int, int]  # (rows from the checkpoint, rows of the table)

    def lines(self) -> list[str]:
        out = [f"loaded {len(self.loaded)} tensors"]
        out += [f"skipped {k}: {why}" for k, why in self.skipped.items()]
        out += [f"initialised by recap (not in the checkpoint): {name}" for name in self.initialised]
        rows, total = self.embedding_rows
        if total > rows:
            out.append(
                f"embedding: {rows} rows from the checkpoint, {total - rows} new rows (recap's special tokens, "
                "state bins, FAST tokens)"
            )
        return out


def _mapping(files: CheckpointFiles) -> tuple[dict[str, str], dict[str, str]]:
    """(checkpoint key -> pi06 parameter, skipped key -> reason); refuses keys of no known layout."""
    mapping, skipped, heads, unknown = {}, {}, [], []
    layout = gemma3_target_of if is_gemma3(files.names()) else target_of
    for key in files.names():
        target = layout(key)
        if target is None:
            unknown.append(key)
        elif target == SKIP:
            skipped[key] = skip_reason(key)
        elif target == TIED_HEAD:
            heads.append(key)
        else:
            mapping[key] = target
    if unknown:
        raise ConfigError(
            f"{len(unknown)} checkpoint keys are of no layout recap knows, e.g. {unknown[:8]}; recap reads pi0 / "
            "pi0.5 (openpi, LeRobot), PaliGemma, SigLIP and transformers PI0 checkpoints"
        )
    for key in heads:
        if EMBED in mapping.values():
            skipped[key] = "the output head, tied to the embedding table (loaded from the embedding)"
        else:
            mapping[key] = EMBED  # pi0 / pi0.5 store the tied embedding only as lm_head
    return mapping, skipped


def _count(shapes: dict[str, tuple[int, ...]], pattern: str) -> int:
    return len({m.group(1) for name in shapes if (m := re.fullmatch(pattern, name))})


def infer_config(files: CheckpointFiles, base: Pi06Config, text_vocab: int = 0) -> Pi06Config:
    """``base`` with every shape the checkpoint fixes read from its tensors (head sizes from ``config.json``, else
    from ``base``); ``text_vocab``, when larger than the checkpoint's vocabulary, widens the text rows."""
    mapping, _ = _mapping(files)
    shape = {target: files.shapes[key] for key, target in mapping.items()}
    meta = files.config_json()
    vlm = meta.get("vlm_config", meta)
    text, vis = vlm.get("text_config", vlm), vlm.get("vision_config", {})  # a text-only LM: top level
    config = base
    if "trunk.vision.patchify.weight" in shape:
        width, _, patch, _ = shape["trunk.vision.patchify.weight"]
        patches = shape["trunk.vision.positions"][0] if "trunk.vision.positions" in shape else 0
        config = attrs.evolve(
            config,
            vision=attrs.evolve(
                base.vision,
                flavour="siglip",
                width=width,
                patch_size=patch,
                image_size=math.isqrt(patches) * patch if patches else base.vision.image_size,
                depth=_count(shape, r"trunk\.vision\.blocks\.(\d+)\..*"),
                heads=vis.get("num_attention_heads", base.vision.heads),
                mlp_dim=shape["trunk.vision.blocks.0.fc1.weight"][0],
            ),
        )
    if "trunk.decoder.layers.0.attn.q.weight" in shape:
        head_dim = text.get("head_dim", base.backbone.head_dim)
        q_out, width = shape["trunk.decoder.layers.0.attn.q.weight"]
        if q_out < head_dim or q_out % head_dim:
            raise ConfigError(
                f"the backbone's q_proj has {q_out} outputs, not a multiple of head_dim {head_dim} (from "
                f"{'config.json' if 'head_dim' in text else 'the preset'}); put the checkpoint's config.json beside "
                "it or pick a preset with the right backbone.head_dim"
            )
        theta = text.get("rope_parameters", {}).get(
            "rope_theta", text.get("rope_theta", base.backbone.rope_theta)
        )
        config = attrs.evolve(
            config,
            backbone=attrs.evolve(
                base.backbone,
                width=width,
                depth=_count(shape, r"trunk\.decoder\.layers\.(\d+)\..*"),
                head_dim=head_dim,
                num_heads=q_out // head_dim,
                num_kv_heads=shape["trunk.decoder.layers.0.attn.k.weight"][0] // head_dim,
                mlp_dim=shape["trunk.decoder.layers.0.mlp.gate.weight"][0],
                norm_eps=text.get("rms_norm_eps", base.backbone.norm_eps),
                rope_theta=theta,
            ),
        )
    if EMBED in shape:
        config = attrs.evolve(config, text_vocab_size=max(shape[EMBED][0], text_vocab))
    if "expert.layers.0.attn.q.weight" in shape:
        conditioning = base.expert.time_conditioning
        if "expert.time_mix.0.weight" in shape:
            conditioning = "concat"
        elif "expert.time_mlp.0.weight" in shape:
            conditioning = "adarms"
        config = attrs.evolve(
            config,
            expert=attrs.evolve(
                base.expert,
                width=shape["expert.layers.0.attn.q.weight"][1],
                mlp_dim=shape["expert.layers.0.mlp.gate.weight"][0],
                time_conditioning=conditioning,
            ),
            state_input="token" if "expert.state_proj.weight" in shape else base.state_input,
            action_pad_dim=shape["expert.action_in.weight"][1],
            chunk_size=meta.get("chunk_size", base.chunk_size),
        )
    if is_gemma3(files.names()) or base.vision.projector == "gemma3":
        config = gemma3_config(files, config, base)
    return config


def load_into(
    model: Pi06Policy,
    files: CheckpointFiles,
    *,
    progress: Callable[[Iterator, int], Iterator] | None = None,
) -> ImportReport:
    """Copy the checkpoint's tensors into ``model``. Every parameter of a part (``PARTS``) the checkpoint brings
    at all must come from it (except recap's own); otherwise, and on any unexpected key or wrong shape, nothing
    is loaded and the error names every offending key."""
    mapping, skipped = _mapping(files)
    params = dict(model.named_parameters()) | dict(model.named_buffers())
    problems: list[str] = []
    seen: dict[str, str] = {}
    for key, target in mapping.items():
        if target in seen:
            problems.append(f"{key} and {seen[target]} both fill {target}")
        seen[target] = key
        if target not in params:
            problems.append(f"unexpected {key}: this model has no {target} (a pi0 key in a pi0.5 model?)")
            continue
        want, got = tuple(params[target].shape), files.shapes[key]
        rows_ok = target == EMBED and got[1:] == want[1:] and got[0] <= want[0]
        if got != want and not rows_ok:
            problems.append(f"shape of {key} is {list(got)}, {target} needs {list(want)}")
    filled = set(mapping.values())
    brought = {_part_of(t) for t in filled}
    missing = [
        name
        for name in params
        if _part_of(name) in brought and name not in filled and not name.startswith(RECAP_OWN)
    ]
    problems += [f"missing {name}: the checkpoint has no tensor for it" for name in missing]
    if problems:
        raise ConfigError("cannot import this checkpoint:\n  " + "\n  ".join(problems))
    with torch.no_grad():
        targets = {}
        for key, name in mapping.items():
            target = params[name]
            targets[key] = target[: files.shapes[key][0]] if name == EMBED else target
        files.copy_into(targets, progress)
    initialised = sorted(name for name in params if name not in filled)
    rows = files.shapes[next(k for k, t in mapping.items() if t == EMBED)][0] if EMBED in filled else 0
    return ImportReport(mapping, skipped, initialised, (rows, params[EMBED].shape[0]))


def _part_of(name: str) -> str | None:
    return next((p for p in PARTS if name.startswith(p)), None)


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype | None) -> Iterator[None]:
    """Build modules directly in ``dtype`` (peak memory: the model once, not an fp32 copy and a cast)."""
    before = torch.get_default_dtype()
    if dtype is not None:
        torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


def import_policy(
    path: str | list[str],
    base: Pi06Config,
    spec: RobotSpec,
    stats: NormStats | None,
    *,
    tokenizer: str = "",
    dtype: torch.dtype | None = None,
    progress: Callable[[Iterator, int], Iterator] | None = None,
    seed: int = 0,
) -> tuple[Pi06Policy, Pi06Config, ImportReport]:
    """Build a pi06 policy shaped like the checkpoint at ``path`` (or several read as one: a text-only language
    model and a SigLIP tower) and load it (see the module docstring)."""

    def build(config: Pi06Config) -> Pi06Policy:
        if config.action_pad_dim and spec.action_dim > config.action_pad_dim:
            raise ConfigError(
                f"the robot has {spec.action_dim} action dimensions but the checkpoint's actions are padded to "
                f"{config.action_pad_dim}; it cannot drive this robot without a new action_in_proj / "
                "action_out_proj"
            )
        return Pi06Policy(config, spec, stats)

    return import_model(
        [path] if isinstance(path, str) else path,
        base,
        build,
        tokenizer=tokenizer,
        dtype=dtype,
        progress=progress,
        seed=seed,
    )


def import_model(
    paths: list[str],
    base: C,
    build: Callable[[C], nn.Module],
    *,
    tokenizer: str = "",
    dtype: torch.dtype | None = None,
    progress: Callable[[Iterator, int], Iterator] | None = None,
    seed: int = 0,
) -> tuple[Any, C, ImportReport]:
    """``build(config)`` with ``config`` shaped like the checkpoints at ``paths`` (read as one, e.g. a text-only
    Gemma 3 and a SigLIP tower), then loaded; ``base`` is a policy or value-network config."""
    files = CombinedCheckpoint(paths)
    tokenizer = tokenizer or _find_tokenizer(files)
    text_vocab = read_tokenizer_file(tokenizer).size() if tokenizer else 0
    config = attrs.evolve(infer_config(files, base, text_vocab), text_tokenizer_path=tokenizer)
    files.fit_positions(config.vision)
    with default_dtype(dtype), torch.random.fork_rng():
        torch.manual_seed(
            seed
        )  # what the checkpoint lacks (new vocabulary rows) starts the same every import
        model = build(config)
    report = load_into(model, files, progress=progress)
    return model, config, report


def _find_tokenizer(files: CheckpointFiles) -> str:
    for name in ("tokenizer.json", "tokenizer.model"):
        if (files.root / name).exists():
            return str(files.root / name)
    return ""
