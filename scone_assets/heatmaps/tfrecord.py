"""TFRecord files of `tf.train.Example` records, written and read without TensorFlow.

Making heatmaps needs no TensorFlow, and importing it costs about 3 s and 480 MB in
every process that does. Both formats are small and fixed. A TFRecord file is a run of
frames: data length (uint64), masked CRC32C of those 8 bytes, the data, masked CRC32C of
the data. An Example is a protocol buffer, written here field by field:

    Example   { Features features = 1 }
    Features  { map<string, Feature> feature = 1 }     entries { key = 1, value = 2 }
    Feature   { BytesList = 1 | FloatList = 2 | Int64List = 3 }, each { repeated value = 1 }

Floats are float32 and numbers are packed, as TensorFlow writes them; readers accept
unpacked numbers too, as protobuf requires. Training reads the same files with tf.data,
which checks the frames and parses the records itself.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

import google_crc32c

Value = int | float | bytes
Values = Value | Sequence[Value]

_LEN, _VARINT, _I64, _I32 = 2, 0, 1, 5  # protobuf wire types
_KIND = {bytes: 1, float: 2, int: 3}  # Feature's field number per Python type
_NAMES = {1: "bytes_list", 2: "float_list", 3: "int64_list"}


class RecordError(ValueError):
    """A TFRecord file or Example that is cut short or does not match its checksums."""


# ------------------------------------------------------------------ protobuf wire format

def _varint(n: int) -> bytes:
    n &= 0xFFFF_FFFF_FFFF_FFFF  # negative int64: ten bytes of two's complement, as protobuf writes it
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | _LEN) + _varint(len(payload)) + payload


def _feature(values: Values) -> bytes:
    items = list(values) if isinstance(values, list | tuple) else [values]
    kinds = {float if isinstance(v, float) else int if isinstance(v, int) else type(v) for v in items}
    if len(kinds) != 1 or (kind := kinds.pop()) not in _KIND or any(isinstance(v, bool) for v in items):
        raise TypeError(f"a feature holds one or more values all int, all float or all bytes, not {values!r}")
    if kind is bytes:
        body = b"".join(_field(1, v) for v in items)
    elif kind is float:
        body = _field(1, struct.pack(f"<{len(items)}f", *items))
    else:
        body = _field(1, b"".join(_varint(v) for v in items))
    return _field(_KIND[kind], body)


def encode_example(features: Mapping[str, Values]) -> bytes:
    """A serialized `tf.train.Example`: each name maps to one value or a list of one
    type (int -> Int64List, float -> FloatList as float32, bytes -> BytesList)."""
    entries = b"".join(_field(1, _field(1, name.encode()) + _field(2, _feature(values)))
                       for name, values in features.items())
    return _field(1, entries)


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise RecordError("a number runs past the end of its record")
        b = buf[pos]
        n |= (b & 0x7F) << shift
        pos += 1
        if not b & 0x80:
            return n, pos
        shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of one message; a length-delimited value is its bytes."""
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, pos = _read_varint(buf, pos)
        elif wire in (_LEN, _I64, _I32):
            if wire == _LEN:
                size, pos = _read_varint(buf, pos)
            else:
                size = 8 if wire == _I64 else 4
            if pos + size > len(buf):
                raise RecordError("a field runs past the end of its record")
            value, pos = buf[pos:pos + size], pos + size
        else:
            raise RecordError(f"unknown protobuf wire type {wire}")
        yield number, wire, value


def _signed(n: int) -> int:
    return n - (1 << 64) if n >= 1 << 63 else n


def _list(kind: int, buf: bytes) -> list[Value]:
    out: list[Value] = []
    for number, wire, value in _fields(buf):
        if number != 1:
            continue
        if kind == 1 and wire == _LEN:
            out.append(bytes(value))
        elif kind == 2 and wire == _LEN:  # packed
            out += [float(x) for x in struct.unpack(f"<{len(value) // 4}f", value)]
        elif kind == 2 and wire == _I32:
            out.append(float(struct.unpack("<f", value)[0]))
        elif kind == 3 and wire == _LEN:  # packed
            pos = 0
            while pos < len(value):
                n, pos = _read_varint(value, pos)
                out.append(_signed(n))
        elif kind == 3 and wire == _VARINT:
            out.append(_signed(value))
        else:
            raise RecordError(f"a {_NAMES[kind]} value of wire type {wire}")
    return out


def decode_example(raw: bytes) -> dict[str, list[Value]]:
    """Each feature of a serialized `tf.train.Example` as a list of int, float or bytes."""
    out: dict[str, list[Value]] = {}
    for number, wire, features in _fields(raw):
        if number != 1 or wire != _LEN:
            continue
        for n_entry, w_entry, entry in _fields(features):
            if n_entry != 1 or w_entry != _LEN:
                continue
            name, values = "", []
            for n, w, v in _fields(entry):
                if n == 1 and w == _LEN:
                    name = bytes(v).decode()
                elif n == 2 and w == _LEN:
                    for kind, kw, body in _fields(v):
                        if kind in _NAMES and kw == _LEN:
                            values = _list(kind, body)
            out[name] = values  # a later entry of the same name wins, as protobuf maps merge
    return out


# ------------------------------------------------------------------ TFRecord frames

def _masked_crc(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFF_FFFF


def write_records(f: BinaryIO, records: Iterable[bytes]) -> int:
    """Frame each record onto an open binary file; returns how many."""
    n = 0
    for rec in records:
        length = struct.pack("<Q", len(rec))
        f.write(length + struct.pack("<I", _masked_crc(length)) + rec + struct.pack("<I", _masked_crc(rec)))
        n += 1
    return n


def read_records(path: Path) -> Iterator[bytes]:
    """Each record of a TFRecord file, its frame and checksums checked: a file cut short
    or altered raises RecordError naming the file and the byte where it goes wrong."""
    with open(path, "rb") as f:
        while True:
            at = f.tell()
            head = f.read(12)
            if not head:
                return
            if len(head) < 12:
                raise RecordError(f"{path}: cut short at byte {at} (a frame header of {len(head)} bytes)")
            length, crc = struct.unpack("<QI", head)
            if _masked_crc(head[:8]) != crc:
                raise RecordError(f"{path}: the length at byte {at} does not match its checksum")
            data, tail = f.read(length), f.read(4)
            if len(data) < length or len(tail) < 4:
                raise RecordError(f"{path}: cut short at byte {at} (a record of {length} bytes)")
            if _masked_crc(data) != struct.unpack("<I", tail)[0]:
                raise RecordError(f"{path}: the record at byte {at} does not match its checksum")
            yield data
