"""Routing (DESIGN.md "Routing", issue #9) end to end with real agents:
`least_busy` gives a new visitor the agent with the fewest active chats, ties
to the agent idle longest (first online first); `answer_timeout` passes a
visitor whose agent has not answered its first message to another agent with
a free slot (both agents told, the visitor told, the first agent's slot
freed, every message archived once under the agent it was sent to), and
keeps it when no other agent is free until one is.

Its own server ("routing", 127.0.0.1:15239 XMPP, :15298 HTTP): least_busy,
max_sessions 3, answer_timeout 3 s, no line. The tests run in file order;
the first relies on a fresh server (no agent assigned yet)."""

import time
import uuid

import pytest

from conftest import Http
from line_common import (Desk, agent_jid, chat, check_assigned, check_notice, check_visitor,
                         client_fixtures, leave_clean, no_more_notices, parse_register,
                         post_register, refused, visitor_jid)
from sandbox import CLIENT_HOST, HELPDESK_HOST, Sandbox, wait_for
from test_archive import conversations, record_of

C2S_PORT, HTTP_PORT = 15239, 15298
MAX_SESSIONS = 3
ANSWER_TIMEOUT = 3
MARGIN = 6              # seconds past a timer the server may take to act
VISITOR_TTL = 10
AGENTS = ["agent1", "agent2", "agent3"]
AGENT_PASSWORD = "agent-secret"
PASSWORD = "visitor-pw"


@pytest.fixture(scope="module")
def routing_server():
    sandbox = Sandbox("routing", C2S_PORT, HTTP_PORT, {
        "max_sessions": MAX_SESSIONS, "routing": "least_busy",
        "answer_timeout": ANSWER_TIMEOUT, "visitor_ttl": VISITOR_TTL,
        "max_registrations_per_minute": 0})
    accounts = [(agent, HELPDESK_HOST, AGENT_PASSWORD) for agent in AGENTS]
    with sandbox.serving(accounts):
        yield sandbox


opened, login = client_fixtures(C2S_PORT, PASSWORD)


@pytest.fixture(autouse=True)
def leave_routing_server_clean(routing_server, opened):
    yield
    leave_clean(routing_server, opened, VISITOR_TTL)


class Visitors:
    """Registers visitors and logs each in at once (so that visitor_ttl never
    ends a chat behind the test's back): name -> Client."""

    def __init__(self, login):
        self.login = login
        self.tag = uuid.uuid4().hex[:6]
        self.clients = {}

    def arrive(self, label):
        """Registers `label`; returns the agent its 201 names."""
        name = f"{label}_{self.tag}"
        status, body, _ = post_register(HTTP_PORT, name, PASSWORD)
        doc = parse_register(status, body)
        assert status == 201, (label, doc)
        self.clients[label] = self.login(visitor_jid(name))
        return doc["to"]

    def leave(self, label):
        self.clients.pop(label).disconnect()

    def jid(self, label):
        return visitor_jid(f"{label}_{self.tag}")


def test_least_busy_with_ties_to_the_agent_idle_longest(routing_server, login):
    desk = Desk(routing_server)
    a1, a2, a3 = agent_jid("agent1"), agent_jid("agent2"), agent_jid("agent3")
    login(a1, AGENT_PASSWORD)   # first online: first on a tie between agents never assigned
    agent2 = login(a2, AGENT_PASSWORD)
    visitors = Visitors(login)

    assert visitors.arrive("r1") == a1      # 0/0, neither ever assigned: a1 came first
    assert visitors.arrive("r2") == a2      # 1/0
    assert visitors.arrive("r3") == a1      # 1/1: a1's last assignment (r1) is older
    visitors.leave("r1")
    desk.wait_loads({a1: 1, a2: 1})
    assert visitors.arrive("r4") == a2      # 1/1: a2's last (r2) is older than a1's (r3)
    assert visitors.arrive("r5") == a1      # 1/2
    desk.wait_loads({a1: 2, a2: 2})

    # agent2's chats end: agent1 has 2 visitors and a free slot, agent2 none.
    visitors.leave("r2")
    visitors.leave("r4")
    desk.wait_loads({a1: 2, a2: 0})
    assert visitors.arrive("r6") == a2      # 2/0
    # Round robin would now give agent1 (the head of its rotation, with a
    # free slot); the least busy is still agent2.
    assert visitors.arrive("r7") == a2      # 2/1
    assert visitors.arrive("r8") == a1      # 2/2: a1's last (r5) is older than a2's (r7)
    assert visitors.arrive("r9") == a2      # 3/2
    desk.wait_loads({a1: MAX_SESSIONS, a2: MAX_SESSIONS})
    # Capacity holds: no line on this server, so 503 (and no account).
    status, body, _ = post_register(HTTP_PORT, f"r10_{visitors.tag}", PASSWORD)
    assert parse_register(status, body) == {"status": "error", "reason": "no_agent_available"}

    # agent2 has one free slot; an agent that comes online now has all of
    # its slots free: the least busy.
    visitors.leave("r6")
    desk.wait_loads({a1: MAX_SESSIONS, a2: 2})
    login(a3, AGENT_PASSWORD)
    assert visitors.arrive("r11") == a3     # 3/2/0
    # An away agent takes nobody, however idle; back, it is the least busy.
    agent2.set_show("away")
    visitors.leave("r7")
    visitors.leave("r9")
    desk.wait_loads({a1: MAX_SESSIONS, a2: 0, a3: 1})
    assert visitors.arrive("r12") == a3     # 3/(away)/1
    agent2.set_show(None)
    assert visitors.arrive("r13") == a2     # 3/0/2
    assert routing_server.registered_users(CLIENT_HOST) == {
        f"{label}_{visitors.tag}" for label in visitors.clients}


def test_an_agent_that_does_not_answer_passes_the_visitor_on(routing_server, login):
    desk = Desk(routing_server)
    agents = {a: login(a, AGENT_PASSWORD) for a in (agent_jid("agent1"), agent_jid("agent2"))}
    visitors = Visitors(login)
    silent_jid = visitors.arrive("pv")
    other_jid = next(a for a in agents if a != silent_jid)
    silent, other = agents[silent_jid], agents[other_jid]
    visitor, vjid = visitors.clients["pv"], visitors.jid("pv")

    # The visitor's first message reaches its agent, which never answers.
    sent_at = time.monotonic()
    visitor.send(silent_jid, "hello, anyone there?")
    got = silent.receive()
    assert (got["type"], got["body"]) == ("chat", "hello, anyone there?")

    # After answer_timeout: passed on to the other agent, everyone told.
    assigned = visitor.next_notice(ANSWER_TIMEOUT + MARGIN)
    check_assigned(assigned, other_jid)
    waited = assigned.at - sent_at
    assert ANSWER_TIMEOUT - 0.5 <= waited <= ANSWER_TIMEOUT + MARGIN, waited
    passed = silent.next_notice(MARGIN)
    check_notice(passed, "passed_on", visitor=vjid, to=other_jid)
    assert vjid in passed.body and other_jid in passed.body, passed
    check_visitor(other.next_notice(MARGIN), vjid, "passed_on")

    # The visitor now chats with the new agent, and only with it.
    chat(visitor, vjid, other, other_jid, "second try")
    refused(visitor, silent_jid, silent)
    refused(silent, vjid, visitor)          # a late answer from the first agent
    # The first agent's slot is free; the new agent has the visitor.
    desk.wait_loads({silent_jid: 0, other_jid: 1})

    # The new agent answered: nothing more happens after another timeout.
    deadline = assigned.at + ANSWER_TIMEOUT + 1.5
    wait_for(lambda: time.monotonic() > deadline, ANSWER_TIMEOUT + 5,
             "another answer_timeout to pass")
    no_more_notices(visitor, silent, other)
    assert desk.loads_are({silent_jid: 0, other_jid: 1}), desk.loads()

    # Each message archived once, under the agent it was sent to or by.
    http = Http(routing_server)
    _, _, first = record_of(conversations(http, silent_jid), vjid)
    assert [(f, t, m) for _, f, t, m in first] == [(vjid, silent_jid, "hello, anyone there?")]
    _, _, second = record_of(conversations(http, other_jid), vjid)
    assert [(f, t, m) for _, f, t, m in second] == [
        (vjid, other_jid, "second try (visitor)"), (other_jid, vjid, "second try (agent)")]

    visitors.leave("pv")
    desk.wait_loads({})


def test_with_no_other_agent_free_the_visitor_stays_until_one_is(routing_server, login):
    desk = Desk(routing_server)
    a1, a2 = agent_jid("agent1"), agent_jid("agent2")
    agent1 = login(a1, AGENT_PASSWORD)
    visitors = Visitors(login)
    assert visitors.arrive("sv") == a1
    visitor, vjid = visitors.clients["sv"], visitors.jid("sv")
    sent_at = time.monotonic()
    visitor.send(a1, "is anybody in?")
    assert agent1.receive()["body"] == "is anybody in?"

    # The timer fires with nobody else online: the visitor stays.
    wait_for(lambda: time.monotonic() > sent_at + ANSWER_TIMEOUT + 1, ANSWER_TIMEOUT + 5,
             "answer_timeout to pass once")
    no_more_notices(visitor, agent1)
    assert desk.loads_are({a1: 1}), desk.loads()

    # Another agent comes: the timer, started again, passes the visitor on.
    agent2 = login(a2, AGENT_PASSWORD)
    check_assigned(visitor.next_notice(ANSWER_TIMEOUT + MARGIN), a2)
    check_notice(agent1.next_notice(MARGIN), "passed_on", visitor=vjid, to=a2)
    check_visitor(agent2.next_notice(MARGIN), vjid, "passed_on")
    chat(visitor, vjid, agent2, a2, "at last")
    desk.wait_loads({a1: 0, a2: 1})
