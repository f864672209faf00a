import io

from recap.rollout.progress import EpisodeProgress


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_a_line_every_period_and_one_at_the_end():
    clock, log = FakeClock(), io.StringIO()
    shown = EpisodeProgress(5, "collect-1", done=1, successes=1, stream=log, every_s=30.0, clock=clock)
    for seconds, success in ((10, True), (20, False), (50, None), (60, True)):
        clock.now = seconds
        shown.update(success)
    shown.close()
    lines = log.getvalue().splitlines()
    # a line once 30 s passed (at 50 s), and the last one; the three finished after the resume ran at 25 s each
    assert lines == [
        "[collect-1] 4/5 episodes, 2/3 successes, about 17 s left",
        "[collect-1] 5/5 episodes, 3/4 successes, done in 60 s",
    ]


def test_quiet_when_disabled():
    log = io.StringIO()
    shown = EpisodeProgress(2, "eval-0", enabled=False, stream=log)
    shown.update(True)
    shown.update(False)
    shown.close()
    assert log.getvalue() == ""


def test_a_terminal_gets_a_bar_with_successes():
    term = Terminal()
    shown = EpisodeProgress(3, "demos", stream=term)
    shown.update(True)
    shown.update(False)
    shown.close()
    out = term.getvalue()
    assert "demos" in out and "2/3" in out and "1/2 successes" in out
