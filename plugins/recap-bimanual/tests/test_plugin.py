from recap_bimanual.sim.backend import AlohaSimBackend, AlohaSimConfig

from recap.plugins import load_registry


def test_plugin_registers_the_sim_parts():
    registry = load_registry(extra_plugins=["recap_bimanual.plugin"], entrypoints=False)
    assert not registry.failures
    assert registry.get("backend", "aloha-sim").config is AlohaSimConfig
    assert registry.get("demonstrator", "scripted").config.__name__ == "ScriptedDemonstratorConfig"
    assert registry.get("teleoperator", "scripted-expert").config.__name__ == "ScriptedExpertConfig"
    backend = registry.get("backend", "aloha-sim").build(AlohaSimConfig(cameras=()))
    with backend:
        assert isinstance(backend, AlohaSimBackend)
        demo = registry.get("demonstrator", "scripted").build(None, backend)
        expert = registry.get("teleoperator", "scripted-expert").build(None, backend)
        obs = backend.reset("transfer_cube", 0)
        demo.reset("transfer_cube", 0)
        expert.reset("transfer_cube", 0)
        assert demo.act(obs).shape == (14,) and expert.poll(obs) is None
