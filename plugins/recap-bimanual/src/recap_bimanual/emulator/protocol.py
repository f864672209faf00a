"""Dynamixel Protocol 2.0 framing, written from the published packet format (not from the SDK).

Instruction packet: ``FF FF FD 00 | ID | LEN_L LEN_H | INST | PARAMS... | CRC_L CRC_H`` where LEN counts
INST + PARAMS + CRC. Status packet: the same with INST = 0x55 followed by an ERROR byte.
CRC-16 is the polynomial x^16 + x^15 + x^2 + 1 (0x8005), MSB first, initial value 0, computed over every byte
from the first header byte to the last parameter byte (after stuffing).
Byte stuffing: inside INST..PARAMS every ``FF FF FD`` gets an extra ``FD`` so the header never appears in a
body; LEN counts the stuffed body.
"""

from __future__ import annotations

import attrs

HEADER = b"\xff\xff\xfd\x00"
BROADCAST_ID = 0xFE

INST_PING = 0x01
INST_READ = 0x02
INST_WRITE = 0x03
INST_REBOOT = 0x08
INST_STATUS = 0x55
INST_SYNC_READ = 0x82
INST_SYNC_WRITE = 0x83

# Status-packet ERROR byte: bit 7 is the hardware alert, the low bits an error number.
ERR_RESULT_FAIL = 0x01
ERR_INSTRUCTION = 0x02
ERR_CRC = 0x03
ERR_DATA_RANGE = 0x04
ERR_DATA_LENGTH = 0x05
ERR_DATA_LIMIT = 0x06
ERR_ACCESS = 0x07
ERR_ALERT = 0x80


def _make_crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x8005) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return table


_CRC_TABLE = _make_crc_table()


def crc16(data: bytes | bytearray) -> int:
    """CRC-16/BUYPASS (poly 0x8005, init 0, no reflection), the Protocol 2.0 checksum."""
    crc = 0
    for b in data:
        crc = ((crc << 8) ^ _CRC_TABLE[((crc >> 8) ^ b) & 0xFF]) & 0xFFFF
    return crc


def stuff(body: bytes) -> bytes:
    """Insert ``FD`` after every ``FF FF FD`` in the body (instruction/status byte and parameters)."""
    out = bytearray()
    for b in body:
        out.append(b)
        if b == 0xFD and len(out) >= 3 and out[-3] == 0xFF and out[-2] == 0xFF:
            out.append(0xFD)
    return bytes(out)


def unstuff(body: bytes) -> bytes:
    """Remove the ``FD`` that :func:`stuff` inserted (an unstuffed ``FF FF FD x`` is passed through: the
    Python SDK 3.x/4.x sends bodies unstuffed because its ``addStuffing`` result is discarded when the length
    changes, and real motors accept that as long as LEN is right)."""
    out = bytearray()
    i = 0
    while i < len(body):
        out.append(body[i])
        stuffed = i + 1 < len(body) and body[i + 1] == 0xFD
        if stuffed and body[i] == 0xFD and len(out) >= 3 and out[-3] == 0xFF and out[-2] == 0xFF:
            i += 1  # skip the stuffed FD
        i += 1
    return bytes(out)


def encode(dxl_id: int, inst: int, params: bytes = b"") -> bytes:
    """A full packet: header, id, length, stuffed body, CRC."""
    body = stuff(bytes([inst]) + params)
    length = len(body) + 2
    head = HEADER + bytes([dxl_id, length & 0xFF, length >> 8])
    crc = crc16(head + body)
    return head + body + bytes([crc & 0xFF, crc >> 8])


def status(dxl_id: int, error: int, params: bytes = b"") -> bytes:
    """A status packet (INST 0x55) from ``dxl_id`` with the ERROR byte and parameters."""
    return encode(dxl_id, INST_STATUS, bytes([error]) + params)


@attrs.frozen
class Packet:
    """A decoded packet: id, instruction, unstuffed parameters, and whether the CRC matched."""

    dxl_id: int
    inst: int
    params: bytes
    crc_ok: bool


def take_packet(buf: bytearray) -> Packet | None:
    """Remove and return the first complete packet in ``buf`` (garbage before a header is dropped).

    Returns None when no complete packet is buffered yet; bytes of a partial packet stay in ``buf``.
    """
    while True:
        start = buf.find(HEADER)
        if start < 0:
            # keep a possible partial header at the end
            del buf[: max(0, len(buf) - 3)]
            return None
        if start:
            del buf[:start]
        if len(buf) < 7:
            return None
        length = buf[5] | (buf[6] << 8)
        if length < 3 or length > 1024:
            del buf[:1]  # not a real header: resynchronise on the next one
            continue
        total = 7 + length
        if len(buf) < total:
            return None
        raw = bytes(buf[:total])
        del buf[:total]
        crc_ok = crc16(raw[:-2]) == (raw[-2] | (raw[-1] << 8))
        body = unstuff(raw[7:-2])
        return Packet(dxl_id=raw[4], inst=body[0], params=body[1:], crc_ok=crc_ok)
