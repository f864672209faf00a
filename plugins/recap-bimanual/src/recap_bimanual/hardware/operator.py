"""Operator inputs: takeover triggers (key, foot pedal, gamepad, scripted) and end-of-episode labelling keys.

Every input source turns what the operator does into :class:`Event` values; the :class:`OperatorConsole` folds
them into state the robot and the teleoperator read: ``takeover`` (the leader arms drive the followers),
``outcome`` (success / failure / discard, which ends the episode) and ``estop``.
Sources: :class:`KeyboardInput` (the terminal), :class:`EvdevInput` (any Linux input device: USB foot pedals
are HID keyboards), :class:`JoystickInput` (a gamepad on the Linux joystick API), :class:`ScriptedInput` (tests).
Pedal and gamepad takeover are hold-to-engage: pressed = the operator drives, released = the policy resumes.
"""

from __future__ import annotations

import enum
import os
import select
import struct
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from recap.errors import ConfigError


class Event(enum.StrEnum):
    TOGGLE_TAKEOVER = "toggle_takeover"
    ENGAGE = "engage"
    RELEASE = "release"
    SUCCESS = "success"
    FAILURE = "failure"
    DISCARD = "discard"
    ESTOP = "estop"


OUTCOME_EVENTS = {Event.SUCCESS: "success", Event.FAILURE: "failure", Event.DISCARD: "discard"}
DEFAULT_KEYS: dict[str, Event] = {
    " ": Event.TOGGLE_TAKEOVER,
    "s": Event.SUCCESS,
    "f": Event.FAILURE,
    "d": Event.DISCARD,
    "x": Event.ESTOP,
}


class InputSource(Protocol):
    def poll(self) -> list[Event]:
        """Events since the last poll (never blocks)."""
        ...

    def close(self) -> None: ...


class ScriptedInput:
    """Events at given poll counts: ``{poll_index: [events]}`` (poll 0 is the first poll of the episode)."""

    def __init__(self, schedule: Mapping[int, Sequence[Event | str]]) -> None:
        self.schedule = {int(k): [Event(e) for e in v] for k, v in schedule.items()}
        self.polls = 0

    def poll(self) -> list[Event]:
        events = self.schedule.get(self.polls, [])
        self.polls += 1
        return list(events)

    def close(self) -> None:
        pass


class KeyboardInput:
    """Single keys from the controlling terminal (cbreak mode, restored on close)."""

    def __init__(self, keymap: Mapping[str, Event] = DEFAULT_KEYS, stream=None) -> None:
        self.keymap = dict(keymap)
        self.stream = stream or sys.stdin
        self.fd = self.stream.fileno()
        self._saved = None
        if os.isatty(self.fd):
            import termios
            import tty

            self._saved = termios.tcgetattr(self.fd)
            tty.setcbreak(self.fd)

    def poll(self) -> list[Event]:
        events = []
        while select.select([self.fd], [], [], 0)[0]:
            data = os.read(self.fd, 64)
            if not data:
                break
            events += [self.keymap[ch] for ch in data.decode(errors="ignore").lower() if ch in self.keymap]
        return events

    def close(self) -> None:
        if self._saved is not None:
            import termios

            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
            self._saved = None


# struct input_event on 64-bit Linux: timeval (2 x long), type (u16), code (u16), value (s32)
_EVDEV = struct.Struct("llHHi")
_EV_KEY = 1
# struct js_event: time (u32), value (s16), type (u8), number (u8)
_JS = struct.Struct("IhBB")
_JS_BUTTON = 0x01


class _DeviceInput:
    def __init__(self, path: str) -> None:
        try:
            self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as exc:
            raise ConfigError(
                f"cannot open input device {path}: {exc}. Check the path (ls /dev/input/by-id) and "
                "that your user is in the 'input' group"
            ) from None
        self._pending = b""

    def _records(self, size: int) -> Iterable[bytes]:
        try:
            while True:
                chunk = os.read(self.fd, 4096)
                if not chunk:
                    break
                self._pending += chunk
        except BlockingIOError:
            pass
        n = len(self._pending) // size
        records = [self._pending[i * size : (i + 1) * size] for i in range(n)]
        self._pending = self._pending[n * size :]
        return records

    def close(self) -> None:
        os.close(self.fd)


class EvdevInput(_DeviceInput):
    """A Linux input device (``/dev/input/event*``): a foot pedal or a keyboard.

    ``hold_codes``: key codes that engage takeover while held (a pedal, e.g. 30 = KEY_A for pedals that
    send 'a'); ``codes``: key codes -> events on press.
    """

    def __init__(
        self, path: str, *, hold_codes: Iterable[int] = (), codes: Mapping[int, Event] | None = None
    ) -> None:
        super().__init__(path)
        self.hold_codes = set(hold_codes)
        self.codes = dict(codes or {})

    def poll(self) -> list[Event]:
        events = []
        for rec in self._records(_EVDEV.size):
            _, _, ev_type, code, value = _EVDEV.unpack(rec)
            if ev_type != _EV_KEY or value == 2:  # 2 = autorepeat
                continue
            if code in self.hold_codes:
                events.append(Event.ENGAGE if value == 1 else Event.RELEASE)
            elif value == 1 and code in self.codes:
                events.append(self.codes[code])
        return events


class JoystickInput(_DeviceInput):
    """A gamepad (``/dev/input/js*``): ``hold_button`` engages takeover while held; ``buttons`` -> events."""

    def __init__(
        self,
        path: str = "/dev/input/js0",
        *,
        hold_button: int = 5,
        buttons: Mapping[int, Event] | None = None,
    ) -> None:
        super().__init__(path)
        self.hold_button = hold_button
        self.buttons = dict(buttons or {0: Event.SUCCESS, 1: Event.FAILURE, 2: Event.DISCARD, 8: Event.ESTOP})

    def poll(self) -> list[Event]:
        events = []
        for rec in self._records(_JS.size):
            _, value, ev_type, number = _JS.unpack(rec)
            if not ev_type & _JS_BUTTON or ev_type & 0x80:  # 0x80: synthetic initial-state event
                continue
            if number == self.hold_button:
                events.append(Event.ENGAGE if value else Event.RELEASE)
            elif value and number in self.buttons:
                events.append(self.buttons[number])
        return events


class OperatorConsole:
    """The operator's state, folded from every source's events at each ``update``."""

    def __init__(self, sources: Iterable[InputSource] = ()) -> None:
        self.sources = list(sources)
        self.takeover = False
        self.outcome: str | None = None
        self.estop = False

    def reset(self) -> None:
        """A new episode: no takeover, no outcome (an e-stop stays until ``clear_estop``)."""
        self.takeover = False
        self.outcome = None
        for s in self.sources:
            if isinstance(s, ScriptedInput):
                s.polls = 0

    def update(self) -> None:
        for source in self.sources:
            for event in source.poll():
                self.apply(event)

    def apply(self, event: Event) -> None:
        if event is Event.TOGGLE_TAKEOVER:
            self.takeover = not self.takeover
        elif event is Event.ENGAGE:
            self.takeover = True
        elif event is Event.RELEASE:
            self.takeover = False
        elif event is Event.ESTOP:
            self.estop = True
        elif event in OUTCOME_EVENTS and self.outcome is None:
            self.outcome = OUTCOME_EVENTS[event]

    def clear_estop(self) -> None:
        self.estop = False

    def close(self) -> None:
        for s in self.sources:
            s.close()


def make_source(spec: str) -> InputSource:
    """An input source from a config string: ``keyboard``, ``pedal:<event device>[:<key code>]``,
    ``gamepad:<js device>[:<hold button>]``."""
    kind, _, rest = spec.partition(":")
    if kind == "keyboard":
        return KeyboardInput()
    if kind == "pedal" and rest:
        path, _, code = rest.partition(":")
        return EvdevInput(path, hold_codes=(int(code) if code else 30,))
    if kind == "gamepad":
        path, _, button = rest.partition(":")
        return JoystickInput(path or "/dev/input/js0", hold_button=int(button) if button else 5)
    raise ConfigError(
        f"unknown operator input {spec!r}; use 'keyboard', 'pedal:/dev/input/by-id/<pedal>-event-kbd' "
        "or 'gamepad:/dev/input/js0'"
    )
