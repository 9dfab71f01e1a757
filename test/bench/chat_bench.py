"""The server's CPU per chat message with the archive on and off, in one
run: N visitor <-> agent pairs exchange messages over c2s, in both
directions, and the phases alternate on, off, bystanders, off, on,
bystanders... on the same server and the same connections.

- on: what an operator runs: each message between a visitor and its agent
  goes through the guard and the capture, and to the archive (the NIF's
  channel, then its writer thread, a thread of the same beam process: its
  CPU is in /proc/<beam>/stat; every phase ends with archive_sync, so the
  writer's work for the phase's messages is inside the phase).
- off: the same, with the instance's archive set to `undefined` for the
  phase (the module has no option to turn the archive off: the bench
  republishes its instance, clicktochat_instance:publish/1, with
  archive = undefined, which clicktochat_capture:record/4 already treats
  as "nothing to archive", and puts the original back after). The guard and
  capture still look the assignment up and extract the text.
- bystanders: pairs of ordinary accounts of the same two vhosts (no
  assignment: the hooks look up, find nothing and let the message through):
  ejabberd's own cost of a message on this configuration, for scale.

The load driver is this one Python thread over raw sockets: every client
logs in with SASL PLAIN over plain TCP (the c2s listener of the stock
configuration with STARTTLS offered, not required: `starttls_required`
removed), then only sends pre-encoded stanzas, in batches, keeping at most
WINDOW messages in flight per direction of each pair, and counts the
bodies it receives (bytes.count). Its own CPU is measured and reported.
Debian's stock configuration otherwise, but for the c2s shaper (3000 B/s
for `all` in stock, which would cap the bench): c2s_shaper none. Visitors'
passwords plain (log-in speed only); N agents with max_sessions 1, so each
visitor has its own agent (round robin).

    /usr/bin/python3 test/bench/chat_bench.py [pairs] [seconds per phase] [rounds]

writes _build/bench/chat.json. Ports 15307-15308.
"""

import base64
import json
import re
import selectors
import socket
import sys
import time
import urllib.request

from benchlib import (BenchSandbox, Control, REPO, cpu_seconds, plain_for_client_host,
                      self_cpu, thread_cpu_seconds, write_json)
from sandbox import CLIENT_HOST, HELPDESK_HOST

PAIRS = int(sys.argv[1]) if len(sys.argv) > 1 else 40
SECONDS = float(sys.argv[2]) if len(sys.argv) > 2 else 5
ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 3
WINDOW = 64           # messages in flight per direction of a pair
BATCH = 32            # messages per send() at most
DRAIN_S = 15          # after a phase, time allowed for what is in flight
TEXT = "Hello, I have a question about my order number 12345, can you help?"
MARK = b"<body>bm "
PASSWORD = "pw"


# --- a bare XMPP client on a raw socket ------------------------------------

class Raw:
    """A logged-in c2s stream (SASL PLAIN over TCP, resource bound);
    afterwards only bytes in and out."""

    def __init__(self, port, user, host, presence):
        self.jid = f"{user}@{host}/bench"
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""
        self.open_stream(host)
        self.read_until(b"</stream:features>")
        token = base64.b64encode(f"\0{user}\0{PASSWORD}".encode()).decode()
        self.sock.sendall(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
                          f"{token}</auth>".encode())
        if b"<success" not in self.read_until(b"<success", b"<failure"):
            raise PermissionError(f"{user}@{host}: authentication failed")
        self.buffer = b""
        self.open_stream(host)
        self.read_until(b"</stream:features>")
        self.sock.sendall(b"<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:"
                          b"xmpp-bind'><resource>bench</resource></bind></iq>")
        self.read_until(b"</iq>")
        if presence:
            self.sock.sendall(b"<presence/>")
        self.barrier(host)
        self.sock.setblocking(False)
        self.out = b""           # bytes not yet accepted by the kernel
        self.tail = b""          # the end of the last read (a mark cut in two)
        self.received = 0

    def open_stream(self, host):
        self.sock.sendall(f"<?xml version='1.0'?><stream:stream to='{host}' "
                          "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
                          "version='1.0'>".encode())

    def read_until(self, *marks):
        deadline = time.monotonic() + 20
        while not any(m in self.buffer for m in marks):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.jid}: waiting for {marks}: {self.buffer[-300:]!r}")
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError(f"{self.jid}: closed: {self.buffer[-300:]!r}")
            self.buffer += data
        found = self.buffer
        self.buffer = b""
        return found

    def barrier(self, host):
        """Everything sent before has been handled (the server answers in order)."""
        self.sock.sendall(f"<iq type='get' id='barrier' to='{host}'>"
                          "<ping xmlns='urn:xmpp:ping'/></iq>".encode())
        self.read_until(b"id='barrier'")

    def pump_in(self):
        try:
            data = self.sock.recv(262144)
        except BlockingIOError:
            return
        if not data:
            raise ConnectionError(f"{self.jid}: closed by the server")
        chunk = self.tail + data
        self.received += chunk.count(MARK)
        # Keep the bytes a mark cut in two could start in (never a whole mark).
        self.tail = chunk[-(len(MARK) - 1):]

    def pump_out(self):
        if self.out:
            try:
                sent = self.sock.send(self.out)
                self.out = self.out[sent:]
            except BlockingIOError:
                pass

    def close(self):
        try:
            self.sock.setblocking(True)
            self.sock.sendall(b"</stream:stream>")
            self.sock.close()
        except OSError:
            pass


class Pair:
    """Two logged-in streams that message each other: a message from one
    to the other is pre-encoded once."""

    def __init__(self, a, b):
        self.a, self.b = a, b
        self.a_to_b = message(b.jid)
        self.b_to_a = message(a.jid)
        self.reset()

    def reset(self):
        self.sent_ab = self.sent_ba = 0
        self.base_b, self.base_a = self.b.received, self.a.received

    def delivered(self):
        return (self.b.received - self.base_b) + (self.a.received - self.base_a)

    def refill(self, sending):
        """Tops each direction up to WINDOW messages in flight."""
        for frm, to, stanza, attr, base in ((self.a, self.b, self.a_to_b, "sent_ab", "base_b"),
                                            (self.b, self.a, self.b_to_a, "sent_ba", "base_a")):
            in_flight = getattr(self, attr) - (to.received - getattr(self, base))
            if sending and in_flight < WINDOW // 2 and len(frm.out) < 65536:
                n = min(BATCH, WINDOW - in_flight)
                frm.out += stanza * n
                setattr(self, attr, getattr(self, attr) + n)
            frm.pump_out()

    def in_flight(self):
        return (self.sent_ab - (self.b.received - self.base_b)) + \
            (self.sent_ba - (self.a.received - self.base_a))


def message(to):
    return (f"<message to='{to}' type='chat'><body>bm {TEXT}</body></message>").encode()


# --- the bench ------------------------------------------------------------------

def register_visitor(server, name):
    request = urllib.request.Request(
        server.url("/clicktochat/register"), method="POST",
        data=json.dumps({"username": name, "password": PASSWORD}).encode(),
        headers={"Content-Type": "application/json", "Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.loads(response.read())
    return answer


def instance_archive_index():
    """The position of `archive` in the #instance{} tuple, from the header."""
    header = (REPO / "erlang_src" / "clicktochat.hrl").read_text()
    body = re.search(r"-record\(instance,\s*\{(.*?)\}\)\.", header, re.S).group(1)
    body = re.sub(r"%[^\n]*", "", body)
    fields = [re.match(r"\s*(\w+)", f).group(1) for f in body.split(",")
              if re.match(r"\s*(\w+)\s*(::|=|$)", f)]
    return fields.index("archive") + 2      # element 1 is the record's name


def set_archive(control, on, index):
    """Republishes the instance with its archive (on) or undefined (off);
    the archive is kept in a persistent_term of the node meanwhile."""
    control.eval(f"""
        rpc:call(Node, erlang, apply, [fun() ->
            I = clicktochat_instance:of_client_host(<<"{CLIENT_HOST}">>),
            Archive = case persistent_term:get(clicktochat_bench_archive, undefined) of
                          undefined -> A = element({index}, I), true = is_reference(A),
                                       persistent_term:put(clicktochat_bench_archive, A), A;
                          A -> A
                      end,
            clicktochat_instance:publish(setelement({index}, I,
                                         case {str(on).lower()} of true -> Archive;
                                                                    false -> undefined end))
        end, []])""")


def archive_sync(control):
    return control.eval("""
        rpc:call(Node, erlang, apply, [fun() ->
            case persistent_term:get(clicktochat_bench_archive, undefined) of
                undefined -> ok;
                A -> clicktochat_nif:archive_sync(A, 30000)
            end end, []], 40000)""")


def archive_status(control, client_host):
    return control.eval(f"""
        rpc:call(Node, erlang, apply, [fun() ->
            A = persistent_term:get(clicktochat_bench_archive),
            clicktochat_nif:archive_status(A) end, []])""")


def run_phase(server, control, pairs, selector, seconds):
    pid = server.pid()
    for pair in pairs:
        pair.reset()
    owner = {}
    for pair in pairs:
        owner[pair.a] = owner[pair.b] = pair
    threads0 = thread_cpu_seconds(pid)
    cpu0, driver0, t0 = cpu_seconds(pid), self_cpu(), time.monotonic()
    end = t0 + seconds
    drain_end = end + DRAIN_S
    for pair in pairs:
        pair.refill(True)
    # Only the pairs that received something are topped up (and those with
    # bytes the kernel did not take yet): the driver does no work per idle pair.
    backlog = set()
    while True:
        now = time.monotonic()
        sending = now < end
        touched = set(backlog)
        for key, _ in selector.select(timeout=0.005):
            key.data.pump_in()
            if key.data in owner:
                touched.add(owner[key.data])
        backlog.clear()
        for pair in touched:
            pair.refill(sending)
            if pair.a.out or pair.b.out:
                backlog.add(pair)
        if not sending:
            if all(p.in_flight() == 0 for p in pairs):
                break
            if now > drain_end:
                raise TimeoutError(f"{sum(p.in_flight() for p in pairs)} messages still in "
                                   f"flight {DRAIN_S} s after the phase")
    t1 = time.monotonic()
    driver1 = self_cpu()
    synced = archive_sync(control)
    cpu1, t2 = cpu_seconds(pid), time.monotonic()
    threads1 = thread_cpu_seconds(pid)
    messages = sum(p.delivered() for p in pairs)
    # Where the server's CPU went, by thread kind (schedulers, dirty
    # schedulers, the archive's writer thread...), us per message.
    by_thread = {name: (threads1[name] - threads0.get(name, 0)) / messages * 1e6
                 for name in threads1 if threads1[name] - threads0.get(name, 0) > 0}
    return {"messages": messages, "seconds": t1 - t0, "messages_per_s": messages / (t1 - t0),
            "server_cpu_s": cpu1 - cpu0,
            "server_cpu_us_per_message": (cpu1 - cpu0) / messages * 1e6,
            "server_cores_busy": (cpu1 - cpu0) / (t2 - t0),
            "driver_cpu_s": driver1 - driver0,
            "driver_cpu_us_per_message": (driver1 - driver0) / messages * 1e6,
            "driver_cores_busy": (driver1 - driver0) / (t1 - t0),
            "archive_sync": synced,
            "server_cpu_us_per_message_by_thread": dict(sorted(by_thread.items(),
                                                               key=lambda kv: -kv[1]))}


def main():
    def edit(config):
        plain_for_client_host(config)
        c2s = config["listen"][0]
        c2s.pop("starttls_required", None)
        c2s["starttls"] = True
        config["shaper_rules"]["c2s_shaper"] = "none"

    server = BenchSandbox("bench_chat", 15307, 15308,
                          {"max_sessions": 1, "visitor_ttl": 3600,
                           "max_registrations_per_minute": 0, "max_visitors": 100000},
                          stock_config=True, edit=edit)
    index = instance_archive_index()
    print(f"chat messages, {PAIRS} pairs, window {WINDOW}, {SECONDS:g} s phases, "
          f"{ROUNDS} rounds", flush=True)
    streams, phases = [], []
    selector = selectors.DefaultSelector()
    with server.serving():
        control = Control(server)
        try:
            names = [f"agent{i}" for i in range(PAIRS)] + [f"helper{i}" for i in range(PAIRS)]
            control.eval(f"""[ok = rpc:call(Node, ejabberd_auth, try_register,
                                             [U, <<"{HELPDESK_HOST}">>, <<"{PASSWORD}">>])
                              || U <- [{', '.join(f'<<"{n}">>' for n in names)}]]""")
            control.eval(f"""[ok = rpc:call(Node, ejabberd_auth, try_register,
                                             [U, <<"{CLIENT_HOST}">>, <<"{PASSWORD}">>])
                              || U <- [{', '.join(f'<<"bystander{i}">>' for i in range(PAIRS))}]]""")
            agents = {}
            for i in range(PAIRS):
                raw = Raw(server.c2s_port, f"agent{i}", HELPDESK_HOST, presence=True)
                agents[raw.jid.split("/")[0]] = raw
                streams.append(raw)
            visitor_pairs = []
            for i in range(PAIRS):
                answer = register_visitor(server, f"visitor{i}")
                visitor = Raw(server.c2s_port, f"visitor{i}", CLIENT_HOST, presence=False)
                streams.append(visitor)
                visitor_pairs.append(Pair(visitor, agents[answer["to"]]))
            bystander_pairs = []
            for i in range(PAIRS):
                a = Raw(server.c2s_port, f"bystander{i}", CLIENT_HOST, presence=False)
                b = Raw(server.c2s_port, f"helper{i}", HELPDESK_HOST, presence=False)
                streams += [a, b]
                bystander_pairs.append(Pair(a, b))
            for raw in streams:
                selector.register(raw.sock, selectors.EVENT_READ, raw)
            # Warm-up, not counted.
            set_archive(control, True, index)
            run_phase(server, control, visitor_pairs, selector, 1)
            run_phase(server, control, bystander_pairs, selector, 1)
            archived0 = archive_status(control, CLIENT_HOST)
            for round_ in range(ROUNDS):
                # on before off, then off before on: a drift of the
                # machine's speed through the run weighs on both alike.
                order = ("on", "off") if round_ % 2 == 0 else ("off", "on")
                for mode in (*order, "bystanders"):
                    set_archive(control, mode != "off", index)
                    print(f"  {mode} starts", file=sys.stderr, flush=True)
                    phase = run_phase(server, control,
                                      bystander_pairs if mode == "bystanders" else visitor_pairs,
                                      selector, SECONDS)
                    phase["mode"] = mode
                    phases.append(phase)
                    print(f"  {mode:10} {phase['messages_per_s']:7.0f} msg/s  server "
                          f"{phase['server_cpu_us_per_message']:6.1f} us/msg "
                          f"({phase['server_cores_busy']:.2f} cores)  driver "
                          f"{phase['driver_cpu_us_per_message']:5.1f} us/msg "
                          f"({phase['driver_cores_busy']:.2f} cores); threads: "
                          + ", ".join(f"{k} {v:.0f}" for k, v in list(
                              phase["server_cpu_us_per_message_by_thread"].items())[:4]),
                          flush=True)
            set_archive(control, True, index)
            archived1 = archive_status(control, CLIENT_HOST)
        finally:
            for raw in streams:
                raw.close()
            control.close()

    def mean(mode, key):
        values = [p[key] for p in phases if p["mode"] == mode]
        return sum(values) / len(values)
    modes = {mode: {key: mean(mode, key) for key in
                    ("messages_per_s", "server_cpu_us_per_message", "server_cores_busy",
                     "driver_cpu_us_per_message", "driver_cores_busy")}
             for mode in ("on", "off", "bystanders")}
    for mode in modes:
        mine = [p["server_cpu_us_per_message_by_thread"] for p in phases if p["mode"] == mode]
        names = {n for m in mine for n in m}
        modes[mode]["server_cpu_us_per_message_by_thread"] = dict(sorted(
            ((n, sum(m.get(n, 0) for m in mine) / len(mine)) for n in names),
            key=lambda kv: -kv[1]))
    ratio = modes["on"]["server_cpu_us_per_message"] / modes["off"]["server_cpu_us_per_message"]
    on = [p for p in phases if p["mode"] == "on"]
    off = [p for p in phases if p["mode"] == "off"]
    paired = sorted(a["server_cpu_us_per_message"] / b["server_cpu_us_per_message"]
                    for a, b in zip(on, off))
    print(f"  server CPU per message, archive on / off: {ratio:.3f}x "
          f"(goal <= 1.15); on / bystanders: "
          f"{modes['on']['server_cpu_us_per_message'] / modes['bystanders']['server_cpu_us_per_message']:.3f}x",
          flush=True)
    write_json("chat", {
        "description": "server CPU per chat message (visitor <-> agent over c2s), "
                       "archive on vs off, and ordinary accounts for scale",
        "pairs": PAIRS, "window": WINDOW, "seconds": SECONDS, "rounds": ROUNDS,
        "message_bytes": len(message(f"agent0@{HELPDESK_HOST}/bench")),
        "transport": "c2s over plain TCP (STARTTLS offered, not used), SASL PLAIN",
        "phases": phases, "modes": modes,
        "ratios": {"cpu_on_over_off": ratio, "cpu_on_over_off_paired": paired,
                   "cpu_on_over_bystanders": modes["on"]["server_cpu_us_per_message"]
                   / modes["bystanders"]["server_cpu_us_per_message"],
                   "cpu_off_over_bystanders": modes["off"]["server_cpu_us_per_message"]
                   / modes["bystanders"]["server_cpu_us_per_message"]},
        "goal": {"cpu_on_over_off_max": 1.15, "met": ratio <= 1.15},
        "archive_status_before": archived0, "archive_status_after": archived1,
    })


main()
