#!/usr/bin/env python3
"""A small read-only NBD server for the `pullback probe` tests, correct except for the one misbehaviour asked for.

It speaks the fixed newstyle handshake (NO_ZEROES, EXPORT_NAME, ABORT, LIST, INFO, GO, STRUCTURED_REPLY,
LIST_META_CONTEXT and SET_META_CONTEXT for base:allocation; any other option gets NBD_REP_ERR_UNSUP, a missing export
NBD_REP_ERR_UNKNOWN) and, in transmission, reads and block status with simple or structured replies, refusing writes
(EPERM) and requests outside the export (EINVAL). Standard library only.

The export (16 MiB by default) is random data except for two 1 MiB ranges reported as zero: an allocated one (ZERO) at
4 MiB and a hole (HOLE|ZERO) at 8 MiB. It advertises block sizes 1 / 4 KiB / 4 MiB.

Misbehaviours (--misbehave):
  cover        block status extents (without REQ_ONE) run past the end of the export
  zero         the range at 4 MiB is reported ZERO but reads as data
  connections  each connection reads different data past the first MiB
  blocksize    reads longer than 2 MiB are refused with EINVAL, though 4 MiB is the advertised maximum

Usage: misbehaving-nbd-server.py --socket PATH [--export NAME] [--size BYTES] [--misbehave WHAT]
"""

import argparse
import itertools
import os
import random
import socket
import socketserver
import struct
import sys
import threading

MIB = 1 << 20

# Handshake
NBDMAGIC = 0x4E42444D41474943
IHAVEOPT = 0x49484156454F5054
REPLY_MAGIC = 0x3E889045565A9
FLAG_FIXED_NEWSTYLE = 1
FLAG_NO_ZEROES = 2
OPT_EXPORT_NAME, OPT_ABORT, OPT_LIST, OPT_INFO, OPT_GO = 1, 2, 3, 6, 7
OPT_STRUCTURED_REPLY, OPT_LIST_META_CONTEXT, OPT_SET_META_CONTEXT = 8, 9, 10
REP_ACK, REP_SERVER, REP_INFO, REP_META_CONTEXT = 1, 2, 3, 4
REP_ERR_UNSUP, REP_ERR_INVALID, REP_ERR_UNKNOWN = 0x80000001, 0x80000003, 0x80000006
INFO_EXPORT, INFO_NAME, INFO_BLOCK_SIZE = 0, 1, 3

# Transmission
REQUEST_MAGIC = 0x25609513
SIMPLE_REPLY_MAGIC = 0x67446698
STRUCTURED_REPLY_MAGIC = 0x668E33EF
CMD_READ, CMD_WRITE, CMD_DISC, CMD_FLUSH, CMD_TRIM, CMD_CACHE, CMD_WRITE_ZEROES, CMD_BLOCK_STATUS = range(8)
CMD_FLAG_REQ_ONE = 8
TRANSMISSION_FLAGS = 1 | 2  # HAS_FLAGS | READ_ONLY
CHUNK_NONE, CHUNK_OFFSET_DATA, CHUNK_OFFSET_HOLE, CHUNK_BLOCK_STATUS, CHUNK_ERROR = 0, 1, 2, 5, 32769
CHUNK_FLAG_DONE = 1
EPERM, EINVAL = 1, 22
STATE_HOLE, STATE_ZERO = 1, 2

BASE_ALLOCATION = "base:allocation"
CONTEXT_ID = 1
MIN_BLOCK, PREFERRED_BLOCK, MAX_BLOCK = 1, 4096, 4 * MIB
LARGEST_READ = 32 * MIB


class Export:
    """The export's bytes and its base:allocation map, as (start, end, flags) ranges in order."""

    def __init__(self, name, size, misbehaviour):
        self.name = name
        self.size = size
        self.misbehaviour = misbehaviour
        zero = (4 * MIB, 5 * MIB)
        hole = (8 * MIB, 9 * MIB)
        self.data = bytearray(random.Random(25).randbytes(size))
        self.ranges = []
        start = 0
        for (low, high), flags in ((zero, STATE_ZERO), (hole, STATE_HOLE | STATE_ZERO)):
            if high > size:
                continue
            self.ranges.append((start, low, 0))
            self.ranges.append((low, high, flags))
            if misbehaviour != "zero" or flags != STATE_ZERO:
                self.data[low:high] = bytes(high - low)
            start = high
        self.ranges.append((start, size, 0))
        self.ranges = [r for r in self.ranges if r[0] < r[1]]

    def read(self, offset, length, connection):
        data = bytes(self.data[offset : offset + length])
        if self.misbehaviour != "connections" or offset + length <= MIB:
            return data
        # Past the first MiB, every byte of a data range is flipped by a value of this connection's own.
        table = bytes(b ^ (connection % 255 + 1) for b in range(256))
        pieces = []
        for start, end, flags in self.ranges:
            low, high = max(start, offset, MIB), min(end, offset + length)
            if low < high and flags == 0:
                pieces.append((low - offset, high - offset))
        out = bytearray(data)
        for low, high in pieces:
            out[low:high] = out[low:high].translate(table)
        return bytes(out)

    def extents(self, offset, length, req_one):
        """base:allocation from offset: to the request's end (one extent with REQ_ONE)."""
        end = offset + length
        entries = []
        for start, stop, flags in self.ranges:
            low, high = max(start, offset), min(stop, end)
            if low < high:
                entries.append([high - low, flags])
        if req_one:
            return entries[:1]
        if self.misbehaviour == "cover":
            entries[-1][0] += self.size - end + MIB
        return entries


class Handler(socketserver.BaseRequestHandler):
    counter = itertools.count(1)
    counter_lock = threading.Lock()

    def setup(self):
        with Handler.counter_lock:
            self.connection_number = next(Handler.counter)
        self.export = self.server.export
        self.structured = False
        self.contexts = []

    # I/O

    def receive(self, count):
        data = bytearray()
        while len(data) < count:
            piece = self.request.recv(count - len(data))
            if not piece:
                raise ConnectionError("the client went away")
            data += piece
        return bytes(data)

    def send(self, *parts):
        self.request.sendall(b"".join(parts))

    def option_reply(self, option, reply, data=b""):
        self.send(struct.pack(">QIII", REPLY_MAGIC, option, reply, len(data)), data)

    # Handshake

    def handle(self):
        try:
            self.send(struct.pack(">QQH", NBDMAGIC, IHAVEOPT, FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES))
            (client_flags,) = struct.unpack(">I", self.receive(4))
            if client_flags & ~(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES):
                return
            self.no_zeroes = bool(client_flags & FLAG_NO_ZEROES)
            if self.negotiate():
                self.transmission()
        except (ConnectionError, OSError):
            pass

    def negotiate(self):
        """Answers options until the client picks the export (True) or leaves (False)."""
        while True:
            magic, option, length = struct.unpack(">QII", self.receive(16))
            if magic != IHAVEOPT or length > 64 * 1024:
                return False
            data = self.receive(length)
            if option == OPT_EXPORT_NAME:
                if data.decode("utf-8", "replace") != self.export.name:
                    return False
                self.send(struct.pack(">QH", self.export.size, TRANSMISSION_FLAGS))
                if not self.no_zeroes:
                    self.send(bytes(124))
                return True
            if option == OPT_ABORT:
                self.option_reply(option, REP_ACK)
                return False
            if option in (OPT_INFO, OPT_GO):
                if self.info(option, data) and option == OPT_GO:
                    return True
            elif option == OPT_LIST:
                self.list(option, data)
            elif option == OPT_STRUCTURED_REPLY:
                if data:
                    self.option_reply(option, REP_ERR_INVALID)
                else:
                    self.structured = True
                    self.option_reply(option, REP_ACK)
            elif option in (OPT_LIST_META_CONTEXT, OPT_SET_META_CONTEXT):
                self.meta_context(option, data)
            else:
                self.option_reply(option, REP_ERR_UNSUP)

    def list(self, option, data):
        if data:
            self.option_reply(option, REP_ERR_INVALID)
            return
        name = self.export.name.encode()
        self.option_reply(option, REP_SERVER, struct.pack(">I", len(name)) + name)
        self.option_reply(option, REP_ACK)

    def info(self, option, data):
        """NBD_OPT_INFO or NBD_OPT_GO; True when it succeeded."""
        try:
            (name_length,) = struct.unpack_from(">I", data)
            name = data[4 : 4 + name_length].decode("utf-8")
            (count,) = struct.unpack_from(">H", data, 4 + name_length)
            requests = struct.unpack_from(">%dH" % count, data, 6 + name_length)
            if len(data) != 6 + name_length + 2 * count:
                raise ValueError
        except (struct.error, UnicodeDecodeError, ValueError):
            self.option_reply(option, REP_ERR_INVALID)
            return False
        if name != self.export.name:
            self.option_reply(option, REP_ERR_UNKNOWN, b"no such export")
            return False
        self.option_reply(option, REP_INFO, struct.pack(">HQH", INFO_EXPORT, self.export.size, TRANSMISSION_FLAGS))
        if INFO_NAME in requests:
            self.option_reply(option, REP_INFO, struct.pack(">H", INFO_NAME) + name.encode())
        if INFO_BLOCK_SIZE in requests:
            self.option_reply(
                option, REP_INFO, struct.pack(">HIII", INFO_BLOCK_SIZE, MIN_BLOCK, PREFERRED_BLOCK, MAX_BLOCK)
            )
        self.option_reply(option, REP_ACK)
        return True

    def meta_context(self, option, data):
        if not self.structured:
            self.option_reply(option, REP_ERR_INVALID, b"structured replies first")
            return
        try:
            (name_length,) = struct.unpack_from(">I", data)
            name = data[4 : 4 + name_length].decode("utf-8")
            (count,) = struct.unpack_from(">I", data, 4 + name_length)
            position = 8 + name_length
            queries = []
            for _ in range(count):
                (query_length,) = struct.unpack_from(">I", data, position)
                queries.append(data[position + 4 : position + 4 + query_length].decode("utf-8"))
                position += 4 + query_length
            if position != len(data):
                raise ValueError
        except (struct.error, UnicodeDecodeError, ValueError):
            self.option_reply(option, REP_ERR_INVALID)
            return
        if name != self.export.name:
            self.option_reply(option, REP_ERR_UNKNOWN, b"no such export")
            return
        if option == OPT_LIST_META_CONTEXT and not queries:
            matched = True
        else:
            matched = any(query in ("base:", BASE_ALLOCATION) for query in queries)
        if option == OPT_SET_META_CONTEXT:
            self.contexts = [BASE_ALLOCATION] if matched else []
        if matched:
            context_id = CONTEXT_ID if option == OPT_SET_META_CONTEXT else 0
            self.option_reply(option, REP_META_CONTEXT, struct.pack(">I", context_id) + BASE_ALLOCATION.encode())
        self.option_reply(option, REP_ACK)

    # Transmission

    def transmission(self):
        while True:
            magic, flags, command, cookie, offset, length = struct.unpack(">IHHQQI", self.receive(28))
            if magic != REQUEST_MAGIC:
                return
            if command == CMD_DISC:
                return
            if command == CMD_WRITE:
                if length > LARGEST_READ:
                    return
                self.receive(length)
                self.error(cookie, EPERM, "the export is read-only")
            elif command in (CMD_TRIM, CMD_WRITE_ZEROES):
                self.error(cookie, EPERM, "the export is read-only")
            elif command == CMD_READ:
                self.read(cookie, offset, length)
            elif command == CMD_BLOCK_STATUS:
                self.block_status(cookie, flags, offset, length)
            else:
                self.error(cookie, EINVAL, "command not supported")

    def chunk(self, cookie, kind, payload, done=False):
        flags = CHUNK_FLAG_DONE if done else 0
        self.send(struct.pack(">IHHQI", STRUCTURED_REPLY_MAGIC, flags, kind, cookie, len(payload)), payload)

    def error(self, cookie, code, message):
        if self.structured:
            text = message.encode()
            self.chunk(cookie, CHUNK_ERROR, struct.pack(">IH", code, len(text)) + text, done=True)
        else:
            self.send(struct.pack(">IIQ", SIMPLE_REPLY_MAGIC, code, cookie))

    def read(self, cookie, offset, length):
        if offset + length > self.export.size or length > LARGEST_READ:
            self.error(cookie, EINVAL, "read outside the export")
            return
        if self.export.misbehaviour == "blocksize" and length > 2 * MIB:
            self.error(cookie, EINVAL, "read longer than 2 MiB")
            return
        data = self.export.read(offset, length, self.connection_number)
        if not self.structured:
            self.send(struct.pack(">IIQ", SIMPLE_REPLY_MAGIC, 0, cookie), data)
            return
        # Holes as NBD_REPLY_TYPE_OFFSET_HOLE, the rest as data, then an empty chunk that ends the reply.
        for start, end, flags in self.export.ranges:
            low, high = max(start, offset), min(end, offset + length)
            if low >= high:
                continue
            if flags & STATE_HOLE:
                self.chunk(cookie, CHUNK_OFFSET_HOLE, struct.pack(">QI", low, high - low))
            else:
                self.chunk(cookie, CHUNK_OFFSET_DATA, struct.pack(">Q", low) + data[low - offset : high - offset])
        self.chunk(cookie, CHUNK_NONE, b"", done=True)

    def block_status(self, cookie, flags, offset, length):
        if not self.structured or not self.contexts:
            self.error(cookie, EINVAL, "no meta context was set")
            return
        if length == 0 or offset + length > self.export.size:
            self.error(cookie, EINVAL, "block status outside the export")
            return
        entries = self.export.extents(offset, length, bool(flags & CMD_FLAG_REQ_ONE))
        payload = struct.pack(">I", CONTEXT_ID) + b"".join(struct.pack(">II", n, f) for n, f in entries)
        self.chunk(cookie, CHUNK_BLOCK_STATUS, payload)
        self.chunk(cookie, CHUNK_NONE, b"", done=True)


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def main():
    parser = argparse.ArgumentParser(description="A read-only NBD server with one misbehaviour, for tests.")
    parser.add_argument("--socket", required=True, help="the unix socket to listen on")
    parser.add_argument("--export", default="", help="the export's name")
    parser.add_argument("--size", type=int, default=16 * MIB, help="the export's size in bytes")
    parser.add_argument("--misbehave", choices=["cover", "zero", "connections", "blocksize"])
    arguments = parser.parse_args()
    if os.path.exists(arguments.socket):
        os.unlink(arguments.socket)
    server = Server(arguments.socket, Handler)
    server.export = Export(arguments.export, arguments.size, arguments.misbehave)
    print("listening on", arguments.socket, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        os.unlink(arguments.socket)


if __name__ == "__main__":
    sys.exit(main())
