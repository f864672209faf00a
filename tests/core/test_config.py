import attrs
import pytest

from recap import config
from recap.builtins.labeler import RecapLabelerConfig
from recap.config import ExtractorConfig, LabelerConfig
from recap.errors import ConfigError
from recap.plugins import load_registry, module_plugin


@attrs.frozen
class AWRLike(ExtractorConfig):
    beta: float = 1.0
    w_max: float = 20.0


@attrs.frozen
class Run:
    steps: int = 10
    labeler: LabelerConfig = attrs.field(factory=RecapLabelerConfig)
    extractor: ExtractorConfig = attrs.field(factory=AWRLike)
    tags: tuple[str, ...] = ()


@pytest.fixture
def reg():
    def register_extractors(register):
        register("awr-like", lambda c: c, config=AWRLike)

    return load_registry([module_plugin("t", register_extractors=register_extractors)], entrypoints=False)


@pytest.mark.parametrize("fmt", ["toml", "json"])
def test_round_trip_with_tagged_plugin_fields(reg, fmt):
    run = Run(steps=3, extractor=AWRLike(beta=0.5), tags=("a",))
    text = config.dumps(run, fmt, reg)
    assert 'name = "awr-like"' in text or '"name": "awr-like"' in text
    assert config.loads(text, Run, fmt, reg) == run


def test_file_round_trip(reg, tmp_path):
    run = Run(labeler=RecapLabelerConfig(per_task_fraction={"fold": 0.1}))
    path = config.dump(run, tmp_path / "run.toml", reg)
    assert config.load(path, Run, reg) == run


def test_unknown_key_names_field_and_allowed(reg):
    with pytest.raises(ConfigError) as err:
        config.from_dict(Run, {"extractor": {"name": "awr-like", "betta": 2.0}}, reg)
    msg = str(err.value)
    assert "betta" in msg and "'beta'" in msg and "Did you mean" in msg


def test_wrong_type_names_field(reg):
    with pytest.raises(ConfigError, match="steps"):
        config.from_dict(Run, {"steps": "many"}, reg)


def test_unknown_plugin_name_lists_known(reg):
    with pytest.raises(Exception, match="awr-like"):
        config.from_dict(Run, {"extractor": {"name": "awr-lik"}}, reg)


def test_bad_suffix(reg):
    with pytest.raises(ConfigError, match=".toml or .json"):
        config.dump(Run(), "run.yaml", reg)
