"""The aloha-hw 50 Hz control loop against emulated arms: loop rate, jitter, bus time and bytes per tick.

Two follower arms are emulated on pseudo-terminals, each in its own process (so the emulator does not share
the driver's GIL), three synthetic cameras run at 30 fps, and a sine-wave actor drives every joint through
``recap.rollout.run_episode`` for ``--seconds``. The same episode is then run with the SDK's stock PortHandler
(busy-polling reads, 34 ms reply timeout) as the baseline, and the ratios are printed.

Wire budget: a byte on the Dynamixel bus is 10 bits (start + 8 data + stop), so one bus carries baud / 10
bytes per second, i.e. baud / (10 * fps) bytes per tick. Each arm has its own bus (its own USB adapter).
Per arm and tick the driver sends one SYNC WRITE (14 + 5 * 7 = 49 bytes) and one SYNC READ (14 + 9 = 23 bytes)
and receives 9 status packets of 11 + 4 bytes (135 bytes): 207 bytes.

    python benchmarks/driver_loop.py --seconds 10
"""

from __future__ import annotations

import argparse
import math
import os

import dynamixel_sdk as sdk
import torch
from recap_bimanual.emulator.process import EmulatorProcess
from recap_bimanual.hardware.operator import OperatorConsole
from recap_bimanual.hardware.robot import AlohaHardware, AlohaHardwareConfig, CameraConfig

from recap.rollout import run_episode

CAMERAS = ("cam_high", "cam_left_wrist", "cam_right_wrist")
EXPECTED_BYTES_PER_ARM = (14 + 5 * 7) + (14 + 9) + 9 * (11 + 4)


class Wave:
    def reset(self, task, seed):
        self.t = 0

    def act(self, obs):
        self.t += 1
        s = math.sin(2 * math.pi * self.t / 100)
        arm = [0.3 * s, 0.2 * s, 0.2 * s, 0.1 * s, 0.2 * s, 0.3 * s, 0.5 + 0.4 * s]
        return torch.tensor(arm + arm)


def run(args: argparse.Namespace, stock_port: bool, rt: int) -> dict:
    ticks = int(args.seconds * args.fps)
    with (
        EmulatorProcess("vx300s", realtime_priority=rt) as left,
        EmulatorProcess("vx300s", realtime_priority=rt) as right,
    ):
        config = AlohaHardwareConfig(
            left_port=left.port,
            right_port=right.port,
            baud=args.baud,
            fps=args.fps,
            latency_ms=args.latency_ms,
            cameras=tuple(CameraConfig(c, "synthetic", fps=30) for c in CAMERAS),
            image_height=args.height,
            image_width=args.width,
            operator_inputs=(),
            time_limit=ticks,
            realtime_priority=rt,
        )
        robot = AlohaHardware(config, console=OperatorConsole())
        if stock_port:
            for arm in robot.arms.values():
                arm.bus.port = sdk.PortHandler(arm.bus.port.port_name)
        with robot:

            def moved() -> int:
                return sum(
                    getattr(a.bus.port, "bytes_tx", 0) + getattr(a.bus.port, "bytes_rx", 0)
                    for a in robot.arms.values()
                )

            setup_bytes = moved()
            record = run_episode(robot, Wave(), task="wave", time_limit=ticks)
            stats = robot.loop_stats()
            stats["bytes_total"] = moved() - setup_bytes
            steps = robot.steps
        stats.update(ticks=record.length, fault=record.fault, steps=steps)
    return stats


def report(name: str, stats: dict, args: argparse.Namespace) -> None:
    budget = args.baud / 10 / args.fps
    per_arm = stats["bytes_total"] / max(stats["steps"], 1) / 2
    print(f"[{name}]")
    print(f"  loop rate          {stats['rate_hz']:.2f} Hz (target {args.fps})")
    print(
        f"  jitter (tick late) p50 {stats['jitter_p50_ms']:.3f} ms  p90 {stats['jitter_p90_ms']:.3f} ms  "
        f"p99 {stats['jitter_p99_ms']:.3f} ms  max {stats['jitter_max_ms']:.3f} ms  overruns {stats['overruns']}"
    )
    print(
        f"  bus time per tick  p50 {stats['bus_p50_ms']:.2f} ms  p99 {stats['bus_p99_ms']:.2f} ms (2 arms, write + read)"
    )
    if per_arm:
        print(
            f"  bytes per tick     {per_arm:.0f} per bus (expected {EXPECTED_BYTES_PER_ARM}; the reset adds a "
            f"little); wire limit {budget:.0f} at {args.baud} baud -> {100 * EXPECTED_BYTES_PER_ARM / budget:.1f}% "
            f"of the wire, {EXPECTED_BYTES_PER_ARM * 10 / args.baud * 1e3:.2f} ms of wire time per tick"
        )
    print(
        f"  transient faults recovered {stats['recovered_total']} {stats['recovered']}; "
        f"fault: {stats['fault'] or 'none'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--fps", type=int, default=50)
    parser.add_argument("--baud", type=int, default=1_000_000)
    parser.add_argument("--latency-ms", type=float, default=1.0, help="the USB adapter latency timer")
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--realtime-priority", type=int, default=50, help="SCHED_FIFO run too (0: skip)")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}, cpus: {os.cpu_count()}")
    print(
        f"episode: {args.seconds:g} s at {args.fps} Hz, {args.height}x{args.width} x3 synthetic cameras, "
        "two emulated ViperX arms in their own processes"
    )
    base = run(args, stock_port=True, rt=0)
    report("baseline: stock dynamixel_sdk PortHandler (busy-poll, 34 ms reply timeout)", base, args)
    ours = run(args, stock_port=False, rt=0)
    report("aloha-hw: LowLatencyPort (blocking 0.5 ms reads, 4 ms reply timeout)", ours, args)
    print(
        f"ratio aloha-hw / baseline: jitter p99 {ours['jitter_p99_ms'] / max(base['jitter_p99_ms'], 1e-9):.2f}, "
        f"bus p50 {ours['bus_p50_ms'] / base['bus_p50_ms']:.2f}, bus p99 {ours['bus_p99_ms'] / base['bus_p99_ms']:.2f}"
    )
    if args.realtime_priority:
        try:
            rt = run(args, stock_port=False, rt=args.realtime_priority)
        except Exception as exc:  # noqa: BLE001 - e.g. no permission for SCHED_FIFO
            print(f"[aloha-hw + SCHED_FIFO] skipped: {exc}")
        else:
            report(f"aloha-hw + SCHED_FIFO {args.realtime_priority} (driver and emulators)", rt, args)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
