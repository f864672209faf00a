"""The report's multi-seed section: the measured spread is shown with its command, a spread measured on another
preset is called out as such, and no shipped measurement is said plainly (never a made-up number)."""

from __future__ import annotations

from recap.loop.seed_spread import spread_section

SPREAD = {
    "preset": "smoke",
    "overrides": [],
    "iterations": 2,
    "seeds": [0, 1, 2],
    "command": "python benchmarks/seeds.py --preset {preset} --iterations 2 --seed N (N = 0, 1, 2), then ...",
    "machine": "x86_64",
    "date": "2026-11-29",
    "stages": [
        {
            "stage": "eval-0",
            "label": "SFT",
            "metrics": {
                "success_rate": [0.25, 0.1, 0.4],
                "throughput_per_hour": [120.0, 50.0, 190.0],
                "failure_rate": [0.75, 0.6, 0.9],
                "mean_time_to_success_s": [6.5, None, None],
                "late_failure_rate": None,
            },
        }
    ],
}


def test_a_spread_of_another_preset_is_named_as_such_with_the_command_for_this_one():
    text = "\n".join(spread_section(SPREAD, "demo"))
    assert "| SFT | 25% [10%, 40%] | 120 [50, 190] | 75% [60%, 90%] | 6.50 | - |" in text
    assert "measured on the `smoke` preset, not on this run's `demo` settings" in text
    assert "python benchmarks/seeds.py --preset demo --iterations 2" in text
    assert "seeds 0, 1, 2" in text


def test_a_spread_of_the_same_preset_gives_its_regenerating_command():
    text = "\n".join(spread_section(SPREAD, "smoke"))
    assert "not on this run" not in text and "Regenerate: `python benchmarks/seeds.py --preset smoke" in text


def test_a_spread_shrunk_by_overrides_is_not_taken_for_the_preset_itself():
    shrunk = {
        **SPREAD,
        "preset": "demo",
        "overrides": ["--collect.eval-episodes", "4"],
        "command": "python benchmarks/seeds.py --preset {preset} --seed N -- --collect.eval-episodes 4 (N = 0, 1)",
    }
    text = "\n".join(spread_section(shrunk, "demo"))
    assert "measured on the `demo` preset with `--collect.eval-episodes 4`, not on this run's" in text
    assert "    python benchmarks/seeds.py --preset demo --seed N (N = 0, 1)" in text


def test_no_measurement_shipped_shows_no_number():
    text = "\n".join(spread_section(None, "demo"))
    assert "No multi-seed measurement" in text and not any(c.isdigit() for c in text)
