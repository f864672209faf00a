"""Registration, config round trip, and the full-size presets' parameter counts on the meta device."""

import attrs
import pytest
import torch
from recap_pi06.config import PI06_TINY, PRESET_TARGETS, Pi06Config, Pi06ValueConfig
from recap_pi06.params import build_on_meta, part_counts
from recap_pi06.policy import Pi06Policy
from recap_pi06.value import Pi06ValueNetwork

from recap import config as recap_config
from recap.config import PolicyConfig
from recap.plugins import load_registry


@pytest.fixture(scope="module")
def registry():
    reg = load_registry(extra_plugins=["recap_pi06.plugin"], entrypoints=False)
    assert not reg.failures, reg.failures
    return reg


def test_registered_names(registry, spec, stats):
    assert registry.get("policy", "pi06").config is Pi06Config
    assert registry.get("value_network", "pi06-value").config is Pi06ValueConfig
    for name in ("pi06-tiny", "pi06-small", "pi06"):
        assert isinstance(registry.get("preset", name).factory, Pi06Config)
    for name in ("pi06-value-tiny", "pi06-value-small", "pi06-value"):
        assert isinstance(registry.get("preset", name).factory, Pi06ValueConfig)
    policy = registry.get("policy", "pi06").build(PI06_TINY, spec, stats)
    assert isinstance(policy, Pi06Policy) and policy.chunk_size == 10 and policy.action_dim == 3
    value_config = registry.get("preset", "pi06-value-tiny").factory
    net = registry.get("value_network", "pi06-value").build(value_config, spec, 7, stats)
    assert isinstance(net, Pi06ValueNetwork)


def test_config_round_trips_through_toml(registry):
    text = recap_config.dumps(PI06_TINY, "toml", registry)
    assert 'name = "pi06"' in text
    assert recap_config.loads(text, PolicyConfig, "toml", registry) == PI06_TINY


@pytest.mark.parametrize(("name", "targets"), sorted(PRESET_TARGETS.items()))
def test_full_size_parameter_counts_on_meta(name, targets):
    model = build_on_meta(name)
    assert next(model.parameters()).device == torch.device("meta")
    counts = part_counts(model)
    print(name, {k: f"{v / 1e6:.1f}M" for k, v in counts.items()})
    for part, target in targets.items():
        assert abs(counts[part] / target - 1) < 0.05, (
            f"{name} {part}: {counts[part]:,} vs target {target:,.0f}"
        )


def test_text_tokenizer_from_a_local_file(spec, stats, tiny_batch, tmp_path):
    from recap_pi06.text_tokenizer import train_byte_bpe

    path = tmp_path / "tokenizer.json"
    train_byte_bpe(["Task: pick up the cube. State:"] * 20, 290).save(str(path))
    policy = Pi06Policy(attrs.evolve(PI06_TINY, text_tokenizer_path=str(path)), spec, stats)
    before = policy.trunk.text.encode(["Task: pick up the cube. State:"])
    assert len(before[0]) < 10, "the file's merges are used"
    policy.fit_to_data(tiny_batch)
    assert policy.trunk.text.encode(["Task: pick up the cube. State:"]) == before, (
        "a loaded tokenizer is kept"
    )
    with pytest.raises(ValueError, match="text_tokenizer_path"):
        Pi06Policy(attrs.evolve(PI06_TINY, text_tokenizer_path=str(tmp_path / "missing.json")), spec, stats)
    big = tmp_path / "big.json"
    train_byte_bpe([" ".join(f"word{i} thing{i * 7}" for i in range(400))], 400).save(str(big))
    with pytest.raises(ValueError, match="raise text_vocab_size"):
        Pi06Policy(attrs.evolve(PI06_TINY, text_tokenizer_path=str(big)), spec, stats)
