"""PPO-style policy extraction for flow policies (DPPO/FPO ratios, SPO trust region), as the pi*0.6 baseline."""

from recap_ppo.extractor import PPO, PPOConfig, spo_objective

__all__ = ["PPO", "PPOConfig", "spo_objective"]
