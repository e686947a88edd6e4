#!/usr/bin/env python3
"""Independent reader of TensorBoard event files, to cross-check the C++
writer (util/tfevents.cpp) without TensorFlow or protobuf: standard library
only, CRC-32C and protobuf decoding written out here.

Format: TFRecord records, each
  uint64 LE length, uint32 LE masked crc32c(length bytes),
  data (a tensorflow.Event protobuf), uint32 LE masked crc32c(data).
Event: 1 wall_time double, 2 step int64, 5 summary; Summary: 1 repeated
Value; Value: 1 tag string, 2 simple_value float. Other fields are skipped.

Usage: read_tfevents.py FILE
Prints one JSON line per scalar: {"tag", "step", "value", "wall_time"}.
Exits 1 with a message on a CRC mismatch, truncation or bad protobuf.
"""
import json
import struct
import sys


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked_crc32c(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


class FormatError(Exception):
    pass


def _varint(buf, pos, end):
    value = 0
    for shift in range(0, 64, 7):
        if pos >= end:
            raise FormatError("truncated protobuf varint")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value & 0xFFFFFFFFFFFFFFFF, pos
    raise FormatError("protobuf varint longer than 10 bytes")


def _fields(buf, pos, end):
    """Yields (field, wire, value) for each field of buf[pos:end]. value is an
    int for varints, bytes for fixed and length-delimited fields, None for
    (skipped) groups."""
    while pos < end:
        key, pos = _varint(buf, pos, end)
        field, wire = key >> 3, key & 7
        if field == 0:
            raise FormatError("invalid protobuf field number")
        if wire == 0:
            value, pos = _varint(buf, pos, end)
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            if end - pos < size:
                raise FormatError("truncated fixed-width protobuf field")
            value, pos = bytes(buf[pos:pos + size]), pos + size
        elif wire == 2:
            size, pos = _varint(buf, pos, end)
            if size > end - pos:
                raise FormatError("protobuf length runs past its message")
            value, pos = bytes(buf[pos:pos + size]), pos + size
        elif wire == 3:
            pos = _skip_group(buf, pos, end, field, 0)
            value = None
        else:
            raise FormatError("unexpected protobuf wire type %d" % wire)
        yield field, wire, value


def _skip_group(buf, pos, end, group, depth):
    if depth >= 64:
        raise FormatError("protobuf groups nested too deeply")
    while True:
        key, pos = _varint(buf, pos, end)
        field, wire = key >> 3, key & 7
        if wire == 4:
            if field != group:
                raise FormatError("mismatched protobuf group end")
            return pos
        if wire == 0:
            _, pos = _varint(buf, pos, end)
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
            if pos > end:
                raise FormatError("truncated fixed-width protobuf field")
        elif wire == 2:
            size, pos = _varint(buf, pos, end)
            pos += size
            if pos > end:
                raise FormatError("protobuf length runs past its message")
        elif wire == 3:
            pos = _skip_group(buf, pos, end, field, depth + 1)
        else:
            raise FormatError("unexpected protobuf wire type %d" % wire)


def _decode_event(data):
    wall_time, step, values = 0.0, 0, []
    for field, wire, value in _fields(data, 0, len(data)):
        if field == 1 and wire == 1:
            (wall_time,) = struct.unpack("<d", value)
        elif field == 2 and wire == 0:
            step = value - (1 << 64) if value >= 1 << 63 else value
        elif field == 5 and wire == 2:
            for f, w, v in _fields(value, 0, len(value)):
                if f != 1 or w != 2:
                    continue
                tag, simple = "", None
                for vf, vw, vv in _fields(v, 0, len(v)):
                    if vf == 1 and vw == 2:
                        tag = vv.decode("utf-8", errors="replace")
                    elif vf == 2 and vw == 5:
                        (simple,) = struct.unpack("<f", vv)
                if simple is not None:
                    values.append((tag, simple))
    return [{"tag": t, "step": step, "value": v, "wall_time": wall_time} for t, v in values]


def read_scalars(path):
    with open(path, "rb") as f:
        buf = f.read()
    scalars, offset = [], 0
    while offset < len(buf):
        try:
            if len(buf) - offset < 12:
                raise FormatError("truncated record header")
            header = buf[offset:offset + 8]
            if struct.unpack_from("<I", buf, offset + 8)[0] != masked_crc32c(header):
                raise FormatError("record length CRC mismatch")
            (length,) = struct.unpack("<Q", header)
            if len(buf) - offset - 12 < length + 4:
                raise FormatError("truncated record")
            data = buf[offset + 12:offset + 12 + length]
            if struct.unpack_from("<I", buf, offset + 12 + length)[0] != masked_crc32c(data):
                raise FormatError("record data CRC mismatch")
            scalars.extend(_decode_event(data))
        except FormatError as e:
            raise FormatError("%s: %s at byte offset %d" % (path, e, offset))
        offset += 12 + length + 4
    return scalars


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: read_tfevents.py FILE\n")
        return 2
    try:
        scalars = read_scalars(argv[1])
    except (OSError, FormatError) as e:
        sys.stderr.write("read_tfevents.py: %s\n" % e)
        return 1
    for s in scalars:
        print(json.dumps(s))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
