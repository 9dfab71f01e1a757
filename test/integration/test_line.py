"""The waiting line (DESIGN.md "Waiting line", issue #9) end to end: 202 with
the visitor's position past the agents' capacity, 503 line_full past
max_waiting, XMPP headline notices (waiting, assigned, visitor) in FIFO
order, a waiting visitor that leaves or never logs in leaving the line, the
line in GET /clicktochat/status and ejabberdctl; and the default
(max_waiting 0) answering 503 no_agent_available as before.

Its own server ("line", 127.0.0.1:15236 XMPP, :15295 HTTP): 2 agents x
max_sessions 2, max_waiting 3, visitor_ttl 10 s, round robin. The tests run in
file order on it; the first one relies on a fresh server (no chat has ended
yet, so no wait estimate exists)."""

import time
import uuid

import pytest

from conftest import Http, agent_jid as shared_agent_jid, visitor_name
from line_common import (XML_PROLOG, Desk, agent_jid, chat, check_assigned, check_notice,
                         check_visitor, check_waiting, client_fixtures, estimate_bounds,
                         get_status, leave_clean,
                         no_more_notices, non_increasing, parse_line, parse_register,
                         post_register, refused, visitor_jid)
from sandbox import CLIENT_HOST, HELPDESK_HOST, Sandbox, wait_for
from test_foundation import assert_error

C2S_PORT, HTTP_PORT = 15236, 15295
MAX_SESSIONS = 2
MAX_WAITING = 3
VISITOR_TTL = 10
AGENTS = ["agent1", "agent2"]
AGENT_PASSWORD = "agent-secret"
PASSWORD = "visitor-pw"
SLOTS = len(AGENTS) * MAX_SESSIONS
NOTICE_DEADLINE = 15   # seconds for a notice the server owes after an event


@pytest.fixture(scope="module")
def line_server():
    sandbox = Sandbox("line", C2S_PORT, HTTP_PORT, {
        "max_sessions": MAX_SESSIONS, "max_waiting": MAX_WAITING,
        "visitor_ttl": VISITOR_TTL, "max_registrations_per_minute": 0})
    accounts = [(agent, HELPDESK_HOST, AGENT_PASSWORD) for agent in AGENTS]
    with sandbox.serving(accounts):
        yield sandbox


opened, login = client_fixtures(C2S_PORT, PASSWORD)


@pytest.fixture(autouse=True)
def leave_line_server_clean(request):
    """A test of the line server leaves it as it found it: no session, no
    visitor account, no load, nobody waiting."""
    if "line_server" not in request.fixturenames:
        yield
        return
    server = request.getfixturevalue("line_server")
    opened = request.getfixturevalue("opened")
    yield
    leave_clean(server, opened, VISITOR_TTL)


def names(prefix, count):
    tag = uuid.uuid4().hex[:6]
    return [f"{prefix}{i}_{tag}" for i in range(1, count + 1)]


def register(name, json_body=False):
    status, body, at = post_register(HTTP_PORT, name, PASSWORD, json_body=json_body)
    return status, parse_register(status, body), at


def test_the_line_fills_drains_in_order_and_tells_everyone(line_server, login):
    desk = Desk(line_server)
    agent1, agent2 = (login(agent_jid(a), AGENT_PASSWORD) for a in AGENTS)
    a1, a2 = agent_jid("agent1"), agent_jid("agent2")
    # A free slot: the estimate for a newcomer is 0.
    assert get_status(HTTP_PORT) == {"agents_available": 2, "free_slots": SLOTS,
                                     "waiting": 0, "estimated_wait": 0}

    # 4 x 201: every slot taken, round robin.
    v = names("lv", 4)
    started = {}
    given = []
    for name in v:
        started[name] = time.monotonic()
        status, doc, _ = register(name)
        assert status == 201 and doc["from"] == visitor_jid(name), doc
        given.append(doc["to"])
    assert given == [a1, a2, a1, a2]
    # Full and no chat has ended: the estimate is unknown, left out.
    assert get_status(HTTP_PORT) == {"agents_available": 2, "free_slots": 0, "waiting": 0}

    # Then 202 with positions 1, 2, 3 (XML, JSON, XML), no estimate yet.
    w = names("lw", 3)
    registered_at = {}
    status, body, registered_at[w[0]] = post_register(HTTP_PORT, w[0], PASSWORD)
    assert (status, body) == (202, f"{XML_PROLOG}<register><status>waiting</status>"
                                   f"<from>{visitor_jid(w[0])}</from><position>1</position>"
                                   "</register>")
    status, doc, registered_at[w[1]] = register(w[1], json_body=True)
    assert (status, doc) == (202, {"status": "waiting", "from": visitor_jid(w[1]),
                                   "position": 2})
    status, doc, registered_at[w[2]] = register(w[2])
    assert (status, doc) == (202, {"status": "waiting", "from": visitor_jid(w[2]),
                                   "position": 3})

    # Past max_waiting: 503 line_full, and no account for it.
    full = visitor_name("lfull")
    assert_error(Http(line_server).register(full, PASSWORD), 503, "register", "line_full")

    # Everyone logs in (well within visitor_ttl); the assigned visitors get
    # no notice, the waiting ones their position (no estimate yet).
    logged_in = {}
    visitors = {}
    for name in v:
        visitors[name] = login(visitor_jid(name))
        logged_in[name] = time.monotonic()   # the server had the session by then
    waiters = {}
    for position, name in enumerate(w, 1):
        waiters[name] = login(visitor_jid(name))
        check_waiting(waiters[name].next_notice(NOTICE_DEADLINE), position)
    no_more_notices(*visitors.values(), agent1, agent2)
    assert line_server.registered_users(CLIENT_HOST) == set(v) | set(w)

    # The line, over HTTP (XML and JSON) and ejabberdctl.
    assert get_status(HTTP_PORT) == {"agents_available": 2, "free_slots": 0, "waiting": 3}
    assert get_status(HTTP_PORT, json_form=True) == {"agents_available": 2, "free_slots": 0,
                                                     "waiting": 3}
    status = desk.status()
    assert (status["waiting"], status["estimated_wait"]) == ("3", "unknown")
    entries = parse_line(line_server.ctl("clicktochat_line", CLIENT_HOST))
    assert [jid for _, jid, _ in entries] == [visitor_jid(n) for n in w]
    waited = [s for _, _, s in entries]
    assert non_increasing(waited), entries
    assert waited[0] <= time.monotonic() - registered_at[w[0]] + 1, entries

    # A waiting visitor talks to nobody but its server: not to an agent, and
    # no agent to it.
    refused(waiters[w[0]], a1, agent1)
    refused(agent2, visitor_jid(w[1]), waiters[w[1]])

    # v1 (agent1's) chats then ends: w1, the head, gets agent1; w2 and w3
    # move up, now with an estimate measured from v1's chat.
    chat(visitors[v[0]], visitor_jid(v[0]), agent1, a1, "first")
    ended_at = time.monotonic()
    visitors[v[0]].disconnect()
    assigned = waiters[w[0]].next_notice(NOTICE_DEADLINE)
    check_assigned(assigned, a1)
    # v1's chat lasted at least from its login to its logout, at most from
    # before its registration to w1's assignment (whatever the server
    # counts from: the assignment or the login).
    d1 = (ended_at - logged_in[v[0]], assigned.at - started[v[0]])
    check_visitor(agent1.next_notice(NOTICE_DEADLINE), visitor_jid(w[0]), "from_line")
    check_waiting(waiters[w[1]].next_notice(NOTICE_DEADLINE), 1, estimate_bounds(1, [d1], SLOTS))
    check_waiting(waiters[w[2]].next_notice(NOTICE_DEADLINE), 2, estimate_bounds(2, [d1], SLOTS))
    chat(waiters[w[0]], visitor_jid(w[0]), agent1, a1, "from the line")
    assert desk.line() == [visitor_jid(w[1]), visitor_jid(w[2])]
    now = get_status(HTTP_PORT)
    low, high = estimate_bounds(3, [d1], SLOTS)
    assert now["waiting"] == 2 and low <= now["estimated_wait"] <= high, (now, d1)
    assert desk.status()["estimated_wait"] == str(now["estimated_wait"])

    # A newcomer: position 3, with an estimate now.
    w4 = names("lw4_", 1)[0]
    status, doc, registered_at[w4] = register(w4)
    assert status == 202 and doc["position"] == 3, doc
    low, high = estimate_bounds(3, [d1], SLOTS)
    assert low <= doc["estimated_wait"] <= high, (doc, d1)
    waiters[w4] = login(visitor_jid(w4))
    check_waiting(waiters[w4].next_notice(NOTICE_DEADLINE), 3, (low, high))

    # w3, in the middle, logs out: it leaves the line (and loses its
    # account), w4 moves up, w2 (ahead of it) is not told anything.
    waiters[w[2]].disconnect()
    check_waiting(waiters[w4].next_notice(NOTICE_DEADLINE), 2, estimate_bounds(2, [d1], SLOTS))
    wait_for(lambda: w[2] not in line_server.registered_users(CLIENT_HOST), 30,
             "the waiting visitor that left to lose its account")
    assert desk.line() == [visitor_jid(w[1]), visitor_jid(w4)]
    no_more_notices(waiters[w[1]])

    # v2 (agent2's) ends: w2 gets agent2, w4 is next.
    visitors[v[1]].disconnect()
    check_assigned(waiters[w[1]].next_notice(NOTICE_DEADLINE), a2)
    check_visitor(agent2.next_notice(NOTICE_DEADLINE), visitor_jid(w[1]), "from_line")
    moved = waiters[w4].next_notice(NOTICE_DEADLINE)
    check_notice(moved, "waiting", **moved.attrs)
    assert moved.position == 1 and moved.estimated_wait is not None, moved
    chat(waiters[w[1]], visitor_jid(w[1]), agent2, a2, "second from the line")
    refused(waiters[w4], a2, agent2)

    # v3 (agent1's) ends: w4 gets agent1; the line is empty, no slot free.
    visitors[v[2]].disconnect()
    check_assigned(waiters[w4].next_notice(NOTICE_DEADLINE), a1)
    check_visitor(agent1.next_notice(NOTICE_DEADLINE), visitor_jid(w4), "from_line")
    chat(waiters[w4], visitor_jid(w4), agent1, a1, "last from the line")
    assert desk.line() == []
    now = get_status(HTTP_PORT)
    assert (now["free_slots"], now["waiting"]) == (0, 0) and now["estimated_wait"] >= 1, now
    assert desk.loads_are({a1: 2, a2: 2}), desk.loads()

    # Over the whole run: positions never went up, each waiter that was
    # served got exactly one assignment, last; FIFO (w1, w2, w4).
    for name, client in waiters.items():
        positions = [n.position for n in client.notice_history("waiting")]
        assert non_increasing(positions), (name, positions)
    assert [n.position for n in waiters[w[1]].notice_history("waiting")] == [2, 1]
    assert [n.position for n in waiters[w4].notice_history("waiting")] == [3, 2, 1]
    for name in (w[0], w[1], w4):
        history = waiters[name].notice_history()
        assert [n.kind for n in history].count("assigned") == 1 and history[-1].kind == "assigned"
    assert waiters[w[2]].notice_history("assigned") == []
    order = sorted((waiters[n].notice_history("assigned")[0].at, n) for n in (w[0], w[1], w4))
    assert [n for _, n in order] == [w[0], w[1], w4]
    assert [n.jid for n in agent1.notice_history("visitor")] == [visitor_jid(w[0]), visitor_jid(w4)]
    assert [n.jid for n in agent2.notice_history("visitor")] == [visitor_jid(w[1])]
    no_more_notices(visitors[v[3]])

    # Everyone leaves: every slot free again, the estimate for a newcomer 0.
    for client in [*visitors.values(), *waiters.values()]:
        client.disconnect()
    wait_for(lambda: get_status(HTTP_PORT) == {"agents_available": 2, "free_slots": SLOTS,
                                               "waiting": 0, "estimated_wait": 0},
             30, "every slot to be free again")


def test_a_waiting_visitor_that_never_logs_in_leaves_the_line(line_server, login):
    desk = Desk(line_server)
    agent1 = login(agent_jid("agent1"), AGENT_PASSWORD)
    a1 = agent_jid("agent1")
    busy = names("tv", 2)
    for name in busy:
        status, doc, _ = register(name)
        assert status == 201 and doc["to"] == a1, doc
    busy_clients = [login(visitor_jid(name)) for name in busy]
    absent, present = names("tw", 2)
    status, doc, absent_at = register(absent)
    assert status == 202 and doc["position"] == 1, doc
    status, doc, _ = register(present)
    assert status == 202 and doc["position"] == 2, doc
    waiter = login(visitor_jid(present))
    assert waiter.next_notice(NOTICE_DEADLINE).position == 2
    assert desk.line() == [visitor_jid(absent), visitor_jid(present)]

    # visitor_ttl passes for the absent one: it leaves the line and its
    # account goes; the one behind moves up; nobody gets a slot.
    moved = waiter.next_notice(VISITOR_TTL + 20)
    check_notice(moved, "waiting", **moved.attrs)
    assert moved.position == 1
    assert moved.at - absent_at >= VISITOR_TTL - 1, "left the line before visitor_ttl"
    wait_for(lambda: absent not in line_server.registered_users(CLIENT_HOST), 30,
             "the absent waiting visitor's account to be removed")
    assert desk.line() == [visitor_jid(present)]
    assert desk.loads_are({a1: 2}), desk.loads()
    assert get_status(HTTP_PORT)["waiting"] == 1

    # And the line still works: the next free slot is the present one's.
    busy_clients[0].disconnect()
    check_assigned(waiter.next_notice(NOTICE_DEADLINE), a1)
    check_visitor(agent1.next_notice(NOTICE_DEADLINE), visitor_jid(present), "from_line")
    chat(waiter, visitor_jid(present), agent1, a1, "after the absent one")


def test_a_visitor_assigned_before_it_logs_in_is_told_on_login(line_server, login):
    desk = Desk(line_server)
    agent2 = login(agent_jid("agent2"), AGENT_PASSWORD)
    a2 = agent_jid("agent2")
    busy = names("bv", 2)
    for name in busy:
        assert register(name)[0] == 201
    first = login(visitor_jid(busy[0]))
    login(visitor_jid(busy[1]))
    late = names("bw", 1)[0]
    status, doc, _ = register(late)
    assert status == 202 and doc["position"] == 1, doc

    # A slot frees while it has not logged in yet: it is assigned anyway.
    first.disconnect()
    check_visitor(agent2.next_notice(NOTICE_DEADLINE), visitor_jid(late), "from_line")
    assert desk.line() == []
    desk.wait_loads({a2: 2})

    # On login it is told once: assigned, no waiting notice.
    visitor = login(visitor_jid(late))
    check_assigned(visitor.next_notice(NOTICE_DEADLINE), a2)
    no_more_notices(visitor)
    assert visitor.notice_history("waiting") == []
    chat(visitor, visitor_jid(late), agent2, a2, "told on login")


def test_without_a_line_a_busy_desk_still_answers_503(server, http, connect):
    """The shared server (conftest: max_waiting left at its default, 0):
    exactly today's behaviour."""
    agent = connect(shared_agent_jid("agent1"))
    for _ in range(2):
        status, _, body = http.register(visitor_name("noline"))
        assert status == 201, body
    before = server.registered_users()
    refused_name = visitor_name("noline")
    assert_error(http.register(refused_name), 503, "register", "no_agent_available")
    assert server.registered_users() == before, "a 503 must leave no account behind"
    # JSON alike.
    status, _, body = http.request(
        "POST", "/clicktochat/register",
        f'{{"username": "{visitor_name("noline")}", "password": "p"}}',
        {"Content-Type": "application/json", "Accept": "application/json"})
    assert (status, parse_register(status, body)) == (
        503, {"status": "error", "reason": "no_agent_available"})
    assert server.registered_users() == before
    # No line: nobody waits, nothing is listed, no notice is sent.
    assert get_status(server.http_port)["waiting"] == 0
    assert server.ctl("clicktochat_line", CLIENT_HOST).strip() == ""
    assert Desk(server).status().get("waiting") == "0"
    no_more_notices(agent)
