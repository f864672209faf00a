"""Protocol 2.0 framing of the emulator, checked against the SDK's own CRC and stuffing."""

import dynamixel_sdk as sdk
import numpy as np
from recap_bimanual.emulator import protocol as p


def test_crc_matches_sdk_table():
    rng = np.random.default_rng(0)
    ph = sdk.PacketHandler(2.0)
    for n in (1, 7, 64, 300):
        data = bytes(rng.integers(0, 256, n, dtype=np.uint8))
        assert p.crc16(data) == ph.updateCRC(0, list(data), n)


def test_known_ping_packet():
    # e-manual example: ping id 1 -> FF FF FD 00 01 03 00 01 19 4E
    assert p.encode(1, p.INST_PING) == bytes.fromhex("FFFFFD0001030001194E")


def test_stuffing_roundtrip_and_sdk_agreement():
    body = bytes([p.INST_WRITE, 0x14, 0x00, 0xFF, 0xFF, 0xFD, 0x00])
    stuffed = p.stuff(body)
    assert stuffed == bytes([p.INST_WRITE, 0x14, 0x00, 0xFF, 0xFF, 0xFD, 0xFD, 0x00])
    assert p.unstuff(stuffed) == body
    ph = sdk.PacketHandler(2.0)
    packet = [0xFF, 0xFF, 0xFD, 0x00, 1, len(body) + 2, 0, *body, 0, 0]
    sdk_stuffed = ph.addStuffing(packet)
    assert bytes(sdk_stuffed[7:-2]) == stuffed


def test_take_packet_skips_garbage_and_waits_for_partial():
    pkt = p.encode(3, p.INST_READ, bytes([132, 0, 4, 0]))
    buf = bytearray(b"\x00\x13\xff" + pkt[:5])
    assert p.take_packet(buf) is None
    buf += pkt[5:]
    got = p.take_packet(buf)
    assert got == p.Packet(3, p.INST_READ, bytes([132, 0, 4, 0]), True)
    assert buf == bytearray()
    bad = bytearray(pkt[:-1] + bytes([pkt[-1] ^ 1]))
    assert p.take_packet(bad).crc_ok is False
