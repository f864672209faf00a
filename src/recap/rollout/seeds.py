"""Episode seeds: training (demonstrations, collections) and evaluation live in disjoint ranges.

A backend resets episode ``seed`` to one initial state (the simulator draws the object poses from
``np.random.RandomState(seed)``, so seeds are 32-bit). The range is split in two halves:

- training seeds ``[0, EVAL_SEED_BASE)``: run seed ``r`` owns the block ``[r * RUN_STRIDE, (r + 1) * RUN_STRIDE)``;
  its demonstrations are episodes ``0 ..`` of the block and collection ``k`` episodes ``k * STAGE_STRIDE ..``;
- evaluation seeds ``[EVAL_SEED_BASE, SEED_LIMIT)``: evaluation episode ``i`` is ``EVAL_SEED_BASE + i`` whatever
  the run seed, so every run (and ``recap evaluate``) is scored on the same initial states, none of which any
  demonstration or collection ever saw.
"""

from __future__ import annotations

from recap.errors import ConfigError

SEED_LIMIT = 2**32
EVAL_SEED_BASE = 2**31
STAGE_STRIDE = 100_000  # episodes one stage (demonstrations or one collection) may hold
MAX_ITERATIONS = 20
RUN_STRIDE = STAGE_STRIDE * (MAX_ITERATIONS + 1)
MAX_RUN_SEED = EVAL_SEED_BASE // RUN_STRIDE - 1


def training_seeds(run_seed: int, iteration: int, episodes: int) -> list[int]:
    """Seeds of the demonstrations (``iteration`` 0) or of collection ``iteration`` of run ``run_seed``."""
    check_training_plan(run_seed, iteration, episodes)
    first = run_seed * RUN_STRIDE + iteration * STAGE_STRIDE
    return list(range(first, first + episodes))


def evaluation_seeds(episodes: int, first: int = 0) -> list[int]:
    """Seeds of evaluation episodes ``first .. first + episodes - 1`` (the same for every run)."""
    if first < 0 or episodes < 1 or EVAL_SEED_BASE + first + episodes > SEED_LIMIT:
        raise ConfigError(
            f"evaluation episodes {first}..{first + episodes - 1} do not fit the evaluation seed range "
            f"(episode indices 0..{SEED_LIMIT - EVAL_SEED_BASE - 1}); use fewer episodes or a smaller first index"
        )
    return list(range(EVAL_SEED_BASE + first, EVAL_SEED_BASE + first + episodes))


def is_evaluation_seed(seed: int) -> bool:
    return EVAL_SEED_BASE <= seed < SEED_LIMIT


def check_training_plan(run_seed: int, iterations: int, episodes_per_stage: int) -> None:
    """Refuse a run whose training seeds would leave its own block (and so meet another run's or evaluation's)."""
    if not 0 <= run_seed <= MAX_RUN_SEED:
        raise ConfigError(
            f"seed {run_seed} is outside 0..{MAX_RUN_SEED}: each run seed owns a block of {RUN_STRIDE} training "
            "episode seeds below the evaluation seeds; choose a seed in that range"
        )
    if not 0 <= iterations <= MAX_ITERATIONS:
        raise ConfigError(
            f"{iterations} iterations: a run's seed block holds demonstrations and at most {MAX_ITERATIONS} "
            "collections; run at most that many iterations"
        )
    if not 0 <= episodes_per_stage <= STAGE_STRIDE:
        raise ConfigError(
            f"{episodes_per_stage} episodes in one stage: each stage has {STAGE_STRIDE} episode seeds; "
            "use fewer demonstrations or episodes per iteration"
        )


def check_training_seeds(first: int, episodes: int) -> None:
    """Refuse recording episodes on evaluation seeds (``recap collect --seed``)."""
    if first < 0 or first + episodes > EVAL_SEED_BASE:
        raise ConfigError(
            f"seeds {first}..{first + episodes - 1} reach the evaluation seeds (from {EVAL_SEED_BASE}): recorded "
            f"episodes must use seeds 0..{EVAL_SEED_BASE - 1} so evaluation never scores a training episode"
        )
