"""A Riak KV stand-in for tests (a test double, not a database).

Speaks Riak's Protocol Buffers wire protocol: each frame is a 4-byte
big-endian length (message code + body), a 1-byte message code and a protobuf
body, with the field numbers of basho/riak_pb's riak.proto and riak_kv.proto.
Supports RpbPingReq, RpbGetReq and RpbPutReq (return_head, return_body, and a
generated key when none is given); any other message gets an RpbErrorResp.
Undecodable input closes that connection and nothing else.

Keys behave like a bucket with allow_mult=true: a key holds siblings, each
with its own vector clock. A put with vclock V replaces every sibling whose
clock V descends (dominates or equals) and adds the new value; a put without a
vclock, or with a stale or concurrent one, adds a sibling. A get returns all
siblings and the merge of their clocks. Clocks are opaque bytes to clients;
here they are JSON, {"actor": counter}.

Usage: /usr/bin/python3 test/riak_standin.py --port PORT [--data FILE]
       [--stale-reads-until N]

Listens on 127.0.0.1 only, one thread per connection, and prints
"riak stand-in listening on 127.0.0.1:PORT" once ready (PORT 0 picks a free
port and prints it). With --data the store is loaded from FILE at start and
rewritten (temp file + rename) after every put, so a restart keeps the data.
Standard library only.
"""

import argparse
import base64
import json
import os
import socketserver
import struct
import sys
import threading
import time
import uuid

ERROR_RESP, PING_REQ, PING_RESP = 0, 1, 2
GET_REQ, GET_RESP, PUT_REQ, PUT_RESP = 9, 10, 11, 12
MAX_FRAME = 64 * 1024 * 1024
ACTOR = "standin"


# --- protobuf, just what these messages need --------------------------------

def varint(n):
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def bytes_field(tag, data):
    return varint(tag << 3 | 2) + varint(len(data)) + data


def varint_field(tag, n):
    return varint(tag << 3) + varint(n)


def parse(buf):
    """A message's fields as {tag: [value, ...]}: ints for varints, bytes
    for length-delimited fields (fixed32/64 are skipped). Raises ValueError."""
    fields, pos = {}, 0

    def read_varint():
        nonlocal pos
        n = shift = 0
        while True:
            if pos >= len(buf) or shift > 63:
                raise ValueError("bad varint")
            byte = buf[pos]
            pos += 1
            n |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return n

    while pos < len(buf):
        key = read_varint()
        tag, wire = key >> 3, key & 7
        if wire == 0:
            fields.setdefault(tag, []).append(read_varint())
            continue
        if wire == 1:
            size = 8
        elif wire == 5:
            size = 4
        elif wire == 2:
            size = read_varint()
        else:
            raise ValueError("unsupported wire type %d" % wire)
        if pos + size > len(buf):
            raise ValueError("field runs past the end")
        if wire == 2:
            fields.setdefault(tag, []).append(bytes(buf[pos:pos + size]))
        pos += size
    return fields


def field(fields, tag, kind, default=None):
    """The last value of a singular field (protobuf's rule), type-checked."""
    value = fields.get(tag, [default])[-1]
    if value is not default and not isinstance(value, kind):
        raise ValueError("field %d has the wrong wire type" % tag)
    return value


def error_resp(message, code=0):
    return ERROR_RESP, bytes_field(1, message.encode()) + varint_field(2, code)


def content_msg(sibling, with_value):
    """An RpbContent: value (required), content_type, vtag, last_mod, last_mod_usecs."""
    out = bytes_field(1, sibling["value"] if with_value else b"")
    if sibling["content_type"] is not None:
        out += bytes_field(2, sibling["content_type"])
    out += bytes_field(5, sibling["vtag"].encode())
    secs, usecs = divmod(sibling["last_mod_us"], 1_000_000)
    return out + varint_field(7, secs) + varint_field(8, usecs)


# --- vector clocks ------------------------------------------------------------

def encode_clock(clock):
    return json.dumps(clock, sort_keys=True, separators=(",", ":")).encode()


def decode_clock(data):
    try:
        clock = json.loads(data.decode())
    except ValueError:
        clock = None
    if not isinstance(clock, dict) or not all(
            isinstance(k, str) and type(v) is int and v >= 0 for k, v in clock.items()):
        raise ValueError("bad vclock")
    return clock


def descends(a, b):
    return all(a.get(actor, 0) >= n for actor, n in b.items())


def merge(clocks):
    out = {}
    for clock in clocks:
        for actor, n in clock.items():
            out[actor] = max(out.get(actor, 0), n)
    return out


# --- the store ------------------------------------------------------------------

class Store:
    """(bucket type, bucket, key) -> list of siblings, persisted as JSON."""

    def __init__(self, path, stale_reads_until=0):
        self.path, self.lock, self.objects = path, threading.Lock(), {}
        self.max_siblings = 0
        if path and os.path.exists(path):
            with open(path) as f:
                for entry in json.load(f):
                    name = tuple(base64.b64decode(entry[k]) for k in ("type", "bucket", "key"))
                    self.objects[name] = [
                        dict(s, value=base64.b64decode(s["value"]),
                             content_type=None if s["content_type"] is None
                             else base64.b64decode(s["content_type"]))
                        for s in entry["siblings"]]
        # Until `stale_reads_until` puts have been stored, gets are answered
        # from the data as it was at start: that many writers all read the
        # same vclock and their puts make siblings, whatever their timing
        # (a race on demand, immune to client timeouts and retries).
        self.stale_reads_until, self.puts = stale_reads_until, 0
        self.at_start = {name: list(siblings) for name, siblings in self.objects.items()}

    def save(self):
        if not self.path:
            return
        b64 = lambda b: base64.b64encode(b).decode()
        entries = [{"type": b64(t), "bucket": b64(b), "key": b64(k), "siblings": [
            dict(s, value=b64(s["value"]),
                 content_type=None if s["content_type"] is None else b64(s["content_type"]))
            for s in siblings]} for (t, b, k), siblings in self.objects.items()]
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(entries, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        with open(tmp, "w") as f:
            json.dump({"max_siblings": self.max_siblings}, f)
        os.replace(tmp, self.path + ".stats")

    def get(self, name):
        with self.lock:
            source = self.at_start if self.puts < self.stale_reads_until else self.objects
            return list(source.get(name, []))

    def put(self, name, context, value, content_type):
        with self.lock:
            siblings = self.objects.get(name, [])
            # The counter only grows, so a context that covers a sibling's
            # counter was read after that sibling was written.
            counter = merge([context] + [s["clock"] for s in siblings]).get(ACTOR, 0) + 1
            new = {"clock": dict(context, **{ACTOR: counter}), "value": value,
                   "content_type": content_type, "vtag": uuid.uuid4().hex[:22],
                   "last_mod_us": time.time_ns() // 1000}
            kept = [s for s in siblings if not descends(context, s["clock"])]
            self.objects[name] = kept + [new]
            self.puts += 1
            self.max_siblings = max(self.max_siblings, len(self.objects[name]))
            self.save()
            return list(self.objects[name])


# --- requests -------------------------------------------------------------------

def object_reply(code, siblings, with_values, extra=b""):
    body = b"".join(bytes_field(1, content_msg(s, with_values)) for s in siblings)
    if siblings:
        body += bytes_field(2, encode_clock(merge(s["clock"] for s in siblings)))
    return code, body + extra


def handle(store, code, body):
    """One request -> (reply code, reply body). Raises ValueError on bad input."""
    if code == PING_REQ:
        return PING_RESP, b""
    if code not in (GET_REQ, PUT_REQ):
        return error_resp("unknown message code: %d" % code)
    req = parse(body)
    bucket = field(req, 1, bytes, b"")
    key = field(req, 2, bytes)
    bucket_type = field(req, 13 if code == GET_REQ else 16, bytes, b"default")
    if not bucket:
        return error_resp("Bucket cannot be zero-length")
    if code == GET_REQ:
        if not key:
            return error_resp("Key cannot be zero-length")
        return object_reply(GET_RESP, store.get((bucket_type, bucket, key)), True)
    generated = key is None
    if generated:
        key = uuid.uuid4().hex.encode()
    if not key:
        return error_resp("Key cannot be zero-length")
    vclock = field(req, 3, bytes)
    content = parse(field(req, 4, bytes, b""))
    value = field(content, 1, bytes, b"")
    content_type = field(content, 2, bytes)
    try:
        context = decode_clock(vclock) if vclock else {}
    except ValueError as e:
        return error_resp(str(e))
    siblings = store.put((bucket_type, bucket, key), context, value, content_type)
    key_field = bytes_field(3, key) if generated else b""
    if field(req, 7, int, 0):  # return_body
        return object_reply(PUT_RESP, siblings, True, key_field)
    if field(req, 11, int, 0):  # return_head
        return object_reply(PUT_RESP, siblings, False, key_field)
    return PUT_RESP, key_field


class Handler(socketserver.BaseRequestHandler):
    def recv_exactly(self, n):
        data = bytearray()
        while len(data) < n:
            chunk = self.request.recv(min(n - len(data), 1 << 16))
            if not chunk:
                return None
            data += chunk
        return bytes(data)

    def handle(self):
        while True:
            header = self.recv_exactly(4)
            if header is None:
                return
            (length,) = struct.unpack(">I", header)
            if not 1 <= length <= MAX_FRAME:
                return
            frame = self.recv_exactly(length)
            if frame is None:
                return
            try:
                code, body = handle(self.server.store, frame[0], frame[1:])
            except (ValueError, KeyError, TypeError):
                return  # bad input: close this connection only
            self.request.sendall(struct.pack(">IB", len(body) + 1, code) + body)


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data", help="file to keep the data in across restarts "
                        "(and, in FILE.stats, the most siblings one key has had)")
    parser.add_argument("--stale-reads-until", type=int, default=0, metavar="N",
                        help="answer gets from the data as it was at start until N "
                        "puts have been stored (makes N writers race)")
    args = parser.parse_args()
    server = Server(("127.0.0.1", args.port), Handler)
    server.store = Store(args.data, args.stale_reads_until)
    print("riak stand-in listening on 127.0.0.1:%d" % server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
