"""The ALOHA-style bimanual hardware driver over Dynamixel Protocol 2.0 (docs/hardware.md).

Layers, bottom up: ``control_table`` (register addresses, models), ``bus`` (a port with retries and fault
accounting on dynamixel_sdk), ``arms`` / ``calibration`` (the arms as data, ticks <-> radians),
``arm_driver`` (one arm: configure, read, write, stop safely), ``cameras``, ``safety`` (rate limit, watchdog,
loop clock, exit guards), ``operator`` (takeover and labelling inputs), ``robot`` (the ``aloha-hw``
RobotBackend), ``teleop`` (the ``leader-arms`` Teleoperator) and ``session`` (recording episodes).
"""
