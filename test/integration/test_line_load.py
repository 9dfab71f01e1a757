"""The waiting line under concurrency: 500 registrations at once against K = 3
agents x max_sessions 2 with max_waiting 20. Exactly K x max_sessions 201s,
exactly max_waiting 202s (positions 1..20, each once: nobody leaves during the
burst), every other answer 503 line_full and no account for it. Then the
chats end in waves, all of a wave at once: each wave's freed slots go to the
head of the line (FIFO), every waiting visitor is told its new position and
then its agent, chats with it (checked from the agent's side), and ends; each
agent hears of its visitors from the line in line order, although the
sessions that freed their slots ended at once.
No agent's load ever exceeds max_sessions (sampled with ejabberdctl
clicktochat_status all along), every visitor is served or refused, and no
account is left at the end.

Its own server ("lineload", 127.0.0.1:15237 XMPP, :15296 HTTP)."""

import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor

import pytest

from line_common import (XML_PROLOG, Desk, agent_jid, non_increasing, parse_line,
                         parse_loads, parse_register, post_register, visitor_jid)
from sandbox import CLIENT_HOST, HELPDESK_HOST, Sandbox, wait_for
from xmpp_client import Client

C2S_PORT, HTTP_PORT = 15237, 15296
MAX_SESSIONS = 2
MAX_WAITING = 20
AGENTS = ["agent1", "agent2", "agent3"]   # K = 3
AGENT_PASSWORD = "agent-secret"
REGISTRATIONS = 500
WORKERS = 50
REQUEST_TIMEOUT = 60     # seconds for one HTTP request
BURST_DEADLINE = 120     # seconds for the whole burst
LOGIN_WORKERS = 8
NOTICE_DEADLINE = 20
LINE_FULL = (f"{XML_PROLOG}<register><status>error</status>"
             "<reason>line_full</reason></register>")
CAPACITY = len(AGENTS) * MAX_SESSIONS


@pytest.fixture(scope="module")
def load_server():
    sandbox = Sandbox("lineload", C2S_PORT, HTTP_PORT, {
        "max_sessions": MAX_SESSIONS, "max_waiting": MAX_WAITING, "visitor_ttl": 600,
        "max_registrations_per_minute": 0}, http_backlog=256)
    with sandbox.serving_with_control([(agent, HELPDESK_HOST, AGENT_PASSWORD)
                                       for agent in AGENTS]) as served:
        yield served


def password(name):
    return f"pw-{name}"


def register(i):
    name = f"ll_{i:04d}"
    status, body, _ = post_register(HTTP_PORT, name, password(name), timeout=REQUEST_TIMEOUT)
    return name, status, body


def burst(count):
    started = time.monotonic()
    with ThreadPoolExecutor(WORKERS) as pool:
        futures = [pool.submit(register, i) for i in range(count)]
        results = [future.result(timeout=max(1, started + BURST_DEADLINE - time.monotonic()))
                   for future in futures]
    return results, time.monotonic() - started


class LoadWatch:
    """Samples `ejabberdctl clicktochat_status` in a thread until stopped:
    every sample's loads and waiting count."""

    def __init__(self, server):
        self.desk = Desk(server)
        self.samples = []
        self.errors = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stopping.is_set():
            try:
                status = self.desk.status()
                self.samples.append((parse_loads(status), int(status.get("waiting", "0"))))
            except Exception as error:  # reported by the test, not lost in a thread
                self.errors.append(error)
            self.stopping.wait(0.2)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join(60)


def test_a_burst_against_a_full_desk_fills_the_line_and_drains_it_in_order(load_server):
    server, control = load_server
    desk = Desk(server)
    agents = {agent_jid(a): Client(agent_jid(a), AGENT_PASSWORD, C2S_PORT) for a in AGENTS}
    visitors = {}   # name -> Client
    try:
        results, elapsed = burst(REGISTRATIONS)
        print(f"{REGISTRATIONS} registrations, {WORKERS} at a time, in {elapsed:.1f} s")

        statuses = Counter(status for _, status, _ in results)
        assert statuses == {201: CAPACITY, 202: MAX_WAITING,
                            503: REGISTRATIONS - CAPACITY - MAX_WAITING}, statuses
        assert all(body == LINE_FULL for _, status, body in results if status == 503)
        docs = {name: parse_register(status, body) for name, status, body in results
                if status in (201, 202)}
        assigned = {name: doc["to"] for name, doc in docs.items() if doc["status"] == "ok"}
        assert Counter(assigned.values()) == {a: MAX_SESSIONS for a in agents}
        position = {name: doc["position"] for name, doc in docs.items()
                    if doc["status"] == "waiting"}
        assert sorted(position.values()) == list(range(1, MAX_WAITING + 1))
        # A fresh server, no chat ended yet: no estimate anywhere.
        assert not any("estimated_wait" in doc for doc in docs.values())
        assert all(docs[n]["from"] == visitor_jid(n) for n in docs)
        # Exactly the accounts answered 201 or 202: none for a refusal.
        assert control.registered_users() == set(docs)
        status = desk.status()
        assert status["waiting"] == str(MAX_WAITING)
        assert parse_loads(status) == {a: MAX_SESSIONS for a in agents}
        line = [jid for _, jid, _ in parse_line(server.ctl("clicktochat_line", CLIENT_HOST))]
        assert line == [visitor_jid(n) for n in sorted(position, key=position.get)]

        # Everyone logs in; each waiting visitor is told its position.
        def log_in(name):
            visitors[name] = Client(visitor_jid(name), password(name), C2S_PORT)
        with ThreadPoolExecutor(LOGIN_WORKERS) as pool:
            list(pool.map(log_in, sorted(docs), timeout=120))
        for name, p in position.items():
            notice = visitors[name].next_notice(NOTICE_DEADLINE)
            assert (notice.kind, notice.type, notice.position) == ("waiting", "headline", p), notice

        waiting = sorted(position, key=position.get)   # head first
        serving = dict(assigned)                        # name -> agent, chatting now
        served = []
        taken = 0                                       # waiting visitors assigned so far
        from_line = defaultdict(list)                   # agent -> visitors it was told of
        with LoadWatch(server) as watch:
            while serving:
                # Each visitor being served writes to its agent; each agent
                # gets exactly its visitors' messages.
                for name, agent in serving.items():
                    visitors[name].send(agent, f"hello from {name}")
                for agent, client in agents.items():
                    expected = {visitor_jid(n) for n, a in serving.items() if a == agent}
                    senders = set()
                    for _ in expected:
                        message = client.receive()
                        assert message["type"] == "chat", message
                        senders.add(str(message["from"].bare))
                        assert message["body"] == f"hello from {message['from'].user}"
                    client.barrier()
                    assert client.pending_messages() == 0 and senders == expected, agent
                assert sum(desk.loads().values()) == len(serving)

                # The whole wave ends at once.
                with ThreadPoolExecutor(len(serving)) as pool:
                    list(pool.map(lambda n: visitors[n].disconnect(), serving, timeout=60))
                served.extend(serving)
                wave, waiting = waiting[:CAPACITY], waiting[CAPACITY:]
                taken += len(wave)
                serving = {}
                # The freed slots go to the head of the line, and only to it.
                for name in wave:
                    notice = visitors[name].expect_notice("assigned", NOTICE_DEADLINE)
                    assert notice.type == "headline" and notice.agent in agents, notice
                    serving[name] = notice.agent
                    from_line[notice.agent].append(visitor_jid(name))
                # The others moved up by the wave's length.
                for name in waiting:
                    expected = position[name] - taken
                    wait_for(lambda: (visitors[name].notice_history("waiting")[-1].position
                                      == expected), NOTICE_DEADLINE,
                             f"{name} to be told it is number {expected}", interval=0.05)
                    assert visitors[name].notice_history("assigned") == []
                assert all(n <= MAX_SESSIONS for n in Counter(serving.values()).values())
                # Each agent was told of exactly the visitors it got from the line.
                for agent, client in agents.items():
                    def told(client=client):
                        return [n.jid for n in client.notice_history("visitor")]
                    wait_for(lambda: told() == from_line[agent], NOTICE_DEADLINE,
                             f"{agent} to be told of {from_line[agent]} from the line, in order",
                             interval=0.05, seen=told)
                wait_for(lambda: (control.registered_users()
                                  == set(waiting) | set(serving)), 30,
                         "the served visitors' accounts to go")
                assert desk.line() == [visitor_jid(n) for n in waiting]

        assert not watch.errors, watch.errors
        assert watch.samples, "no clicktochat_status sample was taken"
        for loads, in_line in watch.samples:
            assert all(n <= MAX_SESSIONS for n in loads.values()), loads
            assert in_line <= MAX_WAITING
        print(f"{len(watch.samples)} load samples, max loads "
              f"{max(max(l.values(), default=0) for l, _ in watch.samples)}")

        # Every visitor was served, in FIFO order for the line; every other
        # one was refused; nothing is left.
        assert set(served) == set(docs)
        for name in position:
            positions = [n.position for n in visitors[name].notice_history("waiting")]
            assert non_increasing(positions), (name, positions)
            assert len(visitors[name].notice_history("assigned")) == 1
        order = sorted(position, key=lambda n: visitors[n].notice_history("assigned")[0].at)
        waves = [order[i:i + CAPACITY] for i in range(0, len(order), CAPACITY)]
        by_position = sorted(position, key=position.get)
        assert [set(w) for w in waves] == [set(by_position[i:i + CAPACITY])
                                           for i in range(0, len(by_position), CAPACITY)]
        wait_for(lambda: not control.registered_users(), 30, "every visitor account to go")
        desk.wait_idle()
    finally:
        for client in [*visitors.values(), *agents.values()]:
            client.disconnect()
