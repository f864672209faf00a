"""recap-bimanual's hooks: what this plugin registers with recap.

Simulated twin: backend ``aloha-sim``, demonstrator ``scripted``, teleoperator ``scripted-expert``.
Hardware: backend ``aloha-hw`` (recap_bimanual.hardware), teleoperator ``leader-arms``.
"""

from __future__ import annotations

from recap.plugins import hookimpl


@hookimpl
def register_backends(register):
    from recap_bimanual.sim.backend import AlohaSimBackend, AlohaSimConfig

    register("aloha-sim", AlohaSimBackend, config=AlohaSimConfig)

    from recap_bimanual.hardware.robot import AlohaHardware, AlohaHardwareConfig

    register("aloha-hw", AlohaHardware, config=AlohaHardwareConfig)


@hookimpl
def register_demonstrators(register):
    from recap_bimanual.sim.demonstrator import ScriptedDemonstrator, ScriptedDemonstratorConfig

    register("scripted", ScriptedDemonstrator, config=ScriptedDemonstratorConfig)


@hookimpl
def register_teleoperators(register):
    from recap_bimanual.sim.expert import ScriptedExpert, ScriptedExpertConfig

    register("scripted-expert", ScriptedExpert, config=ScriptedExpertConfig)

    from recap_bimanual.hardware.teleop import LeaderArmsConfig, LeaderArmsTeleoperator

    register("leader-arms", LeaderArmsTeleoperator.for_backend, config=LeaderArmsConfig)
