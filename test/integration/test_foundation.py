"""clicktochat inside a real ejabberd 23.01: the seed's API, the rotation, the
visitor lifecycle, module reload and hostile requests, driven by real HTTP
requests and real XMPP clients (Debian's /usr/bin/python3, slixmpp, pytest).

The suite's server has max_sessions 2 and visitor_ttl 8 s (conftest.py)."""

import json
import re
import subprocess
import threading
from collections import Counter

from conftest import (BYSTANDER, CLIENT_HOST, HELPDESK_HOST, MAX_SESSIONS,
                      VISITOR_TTL, agent_jid, connect_agents, visitor_name)
from sandbox import wait_for

XML_PROLOG = "<?xml version='1.0'?>"


def assigned_agent(status, body):
    """The agent a 201 register response names."""
    assert status == 201, body
    match = re.fullmatch(re.escape(XML_PROLOG) + r"<register><status>ok</status>"
                         r"<from>([^<]+)</from><to>([^<]+)</to></register>", body)
    assert match, body
    return match.group(2)


def register_agent(http, username=None):
    status, _, body = http.register(username or visitor_name())
    return assigned_agent(status, body)


def assert_error(response, status, root, reason):
    got_status, headers, body = response
    assert (got_status, body) == (
        status, f"{XML_PROLOG}<{root}><status>error</status><reason>{reason}</reason></{root}>")
    assert headers["Content-Type"].startswith("text/xml")


def curl(*args):
    """The seed README's own curl command lines."""
    # Bytes, not text: text mode would turn the CRLFs that end the head into LFs.
    out = subprocess.run(["curl", "-s", "-i", *args], capture_output=True,
                         timeout=30, check=True).stdout.decode()
    head, _, body = out.partition("\r\n\r\n")
    status = int(head.split()[1])
    headers = dict(line.split(": ", 1) for line in head.split("\r\n")[1:])
    return status, headers, body


def test_seed_curl_examples(server, connect):
    agent = connect(agent_jid("agent1"))
    status, headers, body = curl(
        "-H", "Accept: text/xml", "-X", "POST", "-d",
        "<?xml version='1.0'?><registration><username>my_client</username>"
        "<password>123</password></registration>",
        server.url("/clicktochat/register"))
    assert (status, body) == (201, (
        "<?xml version='1.0'?><register><status>ok</status>"
        f"<from>my_client@{CLIENT_HOST}</from><to>agent1@{HELPDESK_HOST}</to></register>"))
    assert headers["Content-Type"].startswith("text/xml")
    assert "my_client" in server.registered_users()

    status, headers, body = curl("-X", "GET", server.url("/clicktochat/list"))
    assert (status, body) == (200, (
        "<?xml version='1.0'?><connected_users>"
        f"<username>agent1@{HELPDESK_HOST}</username></connected_users>"))
    assert headers["Content-Type"].startswith("text/xml")

    # The seed's visitor logs in and says hello; its agent gets it.
    visitor = connect(f"my_client@{CLIENT_HOST}", "123")
    visitor.send(agent_jid("agent1"), "hello from the website")
    assert agent.receive()["body"] == "hello from the website"


def test_round_robin_in_the_seed_queue_order_then_503(server, http, connect):
    connect_agents(connect, ["agent1", "agent2", "agent3"])
    picks = [register_agent(http) for _ in range(3 * MAX_SESSIONS)]
    assert picks == [agent_jid(a) for a in ["agent1", "agent2", "agent3"] * MAX_SESSIONS]

    before = server.registered_users()
    refused = visitor_name("refused")
    assert_error(http.register(refused), 503, "register", "no_agent_available")
    assert server.registered_users() == before, "a 503 must leave no account behind"


def test_registrations_are_spread_fairly(server, http, connect):
    agents = ["agent1", "agent2", "agent3", "agent4"]
    connect_agents(connect, agents)
    registrations = len(agents) * MAX_SESSIONS - 1
    counts = Counter(register_agent(http) for _ in range(registrations))
    low, high = registrations // len(agents), -(-registrations // len(agents))
    assert set(counts) == {agent_jid(a) for a in agents}
    assert all(low <= n <= high for n in counts.values()), counts


def register_at_once(http, names):
    """One registration per name, each from its own thread, all let go at
    once; their responses."""
    results = []
    lock = threading.Lock()
    start = threading.Barrier(len(names))

    def register(name):
        start.wait(30)
        response = http.register(name)
        with lock:
            results.append(response)

    threads = [threading.Thread(target=register, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_concurrent_registrations_never_exceed_max_sessions(server, http, connect):
    connect_agents(connect, ["agent1", "agent2"])
    results = register_at_once(http, [visitor_name("burst") for _ in range(16)])
    assert len(results) == 16
    created = [assigned_agent(s, b) for s, _, b in results if s == 201]
    refused = [b for s, _, b in results if s == 503]
    assert Counter(created) == {agent_jid("agent1"): MAX_SESSIONS,
                                agent_jid("agent2"): MAX_SESSIONS}
    assert len(refused) == 16 - 2 * MAX_SESSIONS
    assert len(server.registered_users() - {BYSTANDER}) == 2 * MAX_SESSIONS


def test_one_name_registered_at_once_many_times_gets_one_account_and_leaks_no_slot(
        server, http, connect):
    """Without a line the desk is asked before the name is claimed: every
    loser of a same-name race must give its slot back."""
    connect_agents(connect, ["agent1", "agent2"])
    name = visitor_name("twin")
    results = register_at_once(http, [name] * 8)
    assert len(results) == 8
    statuses = Counter(status for status, _, _ in results)
    assert statuses[201] == 1, results
    # The others lost the race to the name (or, while racing enters held
    # every slot for a moment, found none free).
    for status, _, body in results:
        if status != 201:
            assert (status, body) in {
                (400, f"{XML_PROLOG}<register><status>error</status><reason>exists"
                      "</reason></register>"),
                (503, f"{XML_PROLOG}<register><status>error</status><reason>"
                      "no_agent_available</reason></register>")}, (status, body)
    assert server.registered_users() - {BYSTANDER} == {name}
    # Every slot but the winner's is free again.
    others = Counter(register_agent(http) for _ in range(2 * MAX_SESSIONS - 1))
    assert sum(others.values()) == 2 * MAX_SESSIONS - 1
    assert_error(http.register(visitor_name()), 503, "register", "no_agent_available")


def test_away_agent_is_skipped_and_comes_back(server, http, connect):
    agent1, agent2, agent3 = connect_agents(connect, ["agent1", "agent2", "agent3"])
    agent2.set_show("away")
    agent3.set_show("dnd")
    assert register_agent(http) == agent_jid("agent1")
    assert register_agent(http) == agent_jid("agent1")
    assert_error(http.register(visitor_name()), 503, "register", "no_agent_available")

    agent2.set_show(None)   # back: joins the tail
    agent3.set_show("chat")  # back: joins behind agent2
    assert register_agent(http) == agent_jid("agent2")
    assert register_agent(http) == agent_jid("agent3")
    agent2.set_show("xa")    # away again, with a slot free: skipped
    assert register_agent(http) == agent_jid("agent3")
    assert_error(http.register(visitor_name()), 503, "register", "no_agent_available")


def test_visitor_chats_with_its_agent_and_logout_removes_it(server, http, connect):
    agent = connect(agent_jid("agent1"))
    name = visitor_name()
    assert register_agent(http, name) == agent_jid("agent1")
    for _ in range(MAX_SESSIONS - 1):
        register_agent(http)
    assert_error(http.register(visitor_name()), 503, "register", "no_agent_available")

    visitor_jid = f"{name}@{CLIENT_HOST}"
    visitor = connect(visitor_jid, "visitor-secret")
    visitor.send(agent_jid("agent1"), "my order has not arrived")
    message = agent.receive()
    assert (str(message["from"].bare), message["body"]) == (visitor_jid, "my order has not arrived")
    agent.send(visitor_jid, "let me check that for you")
    message = visitor.receive()
    assert (str(message["from"].bare), message["body"]) == (
        agent_jid("agent1"), "let me check that for you")

    visitor.disconnect()
    wait_for(lambda: name not in server.registered_users(), 20,
             "the visitor's account to be removed after logout")
    # Its slot is free again: the agent takes one more visitor, then is full.
    assert register_agent(http) == agent_jid("agent1")
    assert_error(http.register(visitor_name()), 503, "register", "no_agent_available")


def test_visitor_with_two_sessions_ends_with_the_last(server, http, connect):
    connect(agent_jid("agent1"))
    name = visitor_name()
    register_agent(http, name)
    first = connect(f"{name}@{CLIENT_HOST}/one", "visitor-secret")
    second = connect(f"{name}@{CLIENT_HOST}/two", "visitor-secret")
    first.disconnect()
    wait_for(lambda: f"{name}@{CLIENT_HOST}/one" not in server.connected_users(), 20,
             "the first session to close")
    assert name in server.registered_users()
    second.disconnect()
    wait_for(lambda: name not in server.registered_users(), 20,
             "the account to go with the last session")


def test_list_shows_the_connected_agents_and_nobody_else(server, http, connect):
    empty = (200, f"{XML_PROLOG}<connected_users></connected_users>")
    status, _, body = http.request("GET", "/clicktochat/list")
    assert (status, body) == empty

    connect_agents(connect, ["agent2", "agent1"])
    connect(agent_jid("agent3"), show="away")  # away is still connected
    connect(f"{BYSTANDER}@{CLIENT_HOST}", "bystander-secret")
    name = visitor_name()
    register_agent(http, name)
    connect(f"{name}@{CLIENT_HOST}", "visitor-secret")
    status, headers, body = http.request("GET", "/clicktochat/list")
    assert (status, body) == (200, XML_PROLOG + "<connected_users>" + "".join(
        f"<username>{agent_jid(a)}</username>" for a in ["agent1", "agent2", "agent3"])
        + "</connected_users>")
    assert headers["Content-Type"].startswith("text/xml")
    assert_error(http.request("GET", "/clicktochat/list?agent=x"),
                 400, "connected_users", "unexpected_parameters")


def test_visitor_that_never_logs_in_is_removed_after_visitor_ttl(server, http, connect):
    connect(agent_jid("agent1"))
    idle, active = visitor_name("idle"), visitor_name("active")
    register_agent(http, idle)
    register_agent(http, active)
    visitor = connect(f"{active}@{CLIENT_HOST}", "visitor-secret")
    assert_error(http.register(visitor_name()), 503, "register", "no_agent_available")

    wait_for(lambda: idle not in server.registered_users(), VISITOR_TTL + 20,
             "the idle visitor to be removed after visitor_ttl")
    # Registered at the same moment, the logged-in visitor stays.
    assert active in server.registered_users()
    visitor.send(agent_jid("agent1"), "still here")
    # The idle visitor's slot is free again.
    assert register_agent(http) == agent_jid("agent1")


def test_module_reload_keeps_the_rotation(server, http, connect):
    agent1, _, _ = connect_agents(connect, ["agent1", "agent2", "agent3"])
    first, second = visitor_name(), visitor_name()
    assert register_agent(http, first) == agent_jid("agent1")
    assert register_agent(http, second) == agent_jid("agent2")
    visitor = connect(f"{first}@{CLIENT_HOST}", "visitor-secret")
    visitor.send(agent_jid("agent1"), "before the reload")

    try:
        server.reload(visitor_ttl=VISITOR_TTL + 1)
        # Every agent is still in the rotation and keeps its visitors: with
        # two slots each, agent3 takes two more, agent1 and agent2 one each.
        remaining = Counter(register_agent(http) for _ in range(3 * MAX_SESSIONS - 2))
        assert remaining == {agent_jid("agent1"): 1, agent_jid("agent2"): 1,
                             agent_jid("agent3"): 2}
        assert_error(http.register(visitor_name()), 503, "register", "no_agent_available")
        # The conversation in flight goes on in the same archive record.
        visitor.send(agent_jid("agent1"), "after the reload")
        assert [m["body"] for m in (agent1.receive(), agent1.receive())] == [
            "before the reload", "after the reload"]
        status, _, body = http.request("GET", "/clicktochat/conversations/" + agent_jid("agent1"))
        assert status == 200
        record = re.search(f"<user>{first}@{CLIENT_HOST}</user><conversation>(.*?)</conversation>",
                           body).group(1)
        assert re.findall(r"msg\^([^|]*)\|", record) == ["before the reload", "after the reload"]
        # A visitor from before the reload still ends properly.
        visitor.disconnect()
        wait_for(lambda: first not in server.registered_users(), 20,
                 "the pre-reload visitor's account to be removed")
        assert register_agent(http) == agent_jid("agent1")
    finally:
        server.reload(visitor_ttl=VISITOR_TTL)


def registration(username, password="p"):
    return (f"<?xml version='1.0'?><registration><username>{username}</username>"
            f"<password>{password}</password></registration>")


BAD_REGISTRATIONS = [
    ("not xml at all", "bad_xml"),
    ("<registration><username>u</username>", "bad_xml"),
    ("<registration><password>p</password></registration>", "missing_username"),
    ("<registration><username>u</username></registration>", "missing_password"),
    (registration(""), "empty_username"),
    (registration("u", ""), "empty_password"),
    (registration("a@b"), "invalid_username"),
    (registration("a/b"), "invalid_username"),
    (registration("a\\b"), "invalid_username"),
    (registration('a"b'), "invalid_username"),
    (registration("a b"), "invalid_username"),
    # Private use: passes the XML checks, refused by ejabberd's nodeprep.
    (registration("a\ue000b"), "invalid_username"),
    (registration("u" * 256), "username_too_long"),
    (registration("u", "p" * 1024), "password_too_long"),
    ("<?xml version='1.0'?><!DOCTYPE r [<!ENTITY a 'aaaaaaaaaa'><!ENTITY b '&a;&a;&a;&a;'>]>"
     "<registration><username>&b;</username><password>p</password></registration>",
     "dtd_forbidden"),
    (registration("&xxe;"), "unknown_entity"),
    (registration("u") + "<registration/>", "unexpected_element"),
    (registration(BYSTANDER), "exists"),
]


def test_bad_requests_get_a_clear_error_and_change_nothing(server, http, connect):
    connect(agent_jid("agent1"))
    before = server.registered_users()
    for body, reason in BAD_REGISTRATIONS:
        assert_error(http.request("POST", "/clicktochat/register", body), 400, "register", reason)
    assert_error(http.request("POST", "/clicktochat/register", b"\xff\xfe<registration/>"),
                 400, "register", "invalid_utf8")
    assert_error(http.request("POST", "/clicktochat/register", registration("u", "p" * 9000)),
                 413, "register", "too_large")
    status, headers, body = http.request("GET", "/clicktochat/register")
    assert_error((status, headers, body), 405, "register", "method_not_allowed")
    assert headers["Allow"] == "POST"
    assert_error(http.request("POST", "/clicktochat/list", "x"),
                 405, "connected_users", "method_not_allowed")
    assert_error(http.request("GET", "/clicktochat/nothing"), 404, "error", "not_found")

    assert server.registered_users() == before
    # The bystander whose name was tried is untouched and can still log in.
    connect(f"{BYSTANDER}@{CLIENT_HOST}", "bystander-secret")
    # No slot leaked: agent1 still takes exactly max_sessions visitors.
    for _ in range(MAX_SESSIONS):
        assert register_agent(http) == agent_jid("agent1")
    assert_error(http.request("POST", "/clicktochat/register", registration(visitor_name())),
                 503, "register", "no_agent_available")


def test_agent_with_two_resources_counts_once(server, http, connect):
    connect(f"{agent_jid('agent1')}/desk")
    phone = connect(f"{agent_jid('agent1')}/phone")
    connect(agent_jid("agent2"))
    assert register_agent(http) == agent_jid("agent1")
    assert register_agent(http) == agent_jid("agent2")
    phone.set_show("away")  # the desk resource keeps agent1 available
    assert register_agent(http) == agent_jid("agent1")


def test_json_alongside_xml(server, http, connect):
    connect(agent_jid("agent1"))
    name = visitor_name("json")
    status, headers, body = http.request(
        "POST", "/clicktochat/register", json.dumps({"username": name, "password": "p|w"}),
        {"Content-Type": "application/json"})
    assert (status, json.loads(body)) == (201, {
        "status": "ok", "from": f"{name}@{CLIENT_HOST}", "to": agent_jid("agent1")})
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    # The account works with the password sent in JSON.
    connect(f"{name}@{CLIENT_HOST}", "p|w").disconnect()

    status, headers, body = http.request("GET", "/clicktochat/list",
                                         headers={"Accept": "application/json"})
    assert (status, json.loads(body)) == (200, {"connected_users": [agent_jid("agent1")]})
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    # Errors follow the client's format; the original project's clients get XML.
    status, _, body = http.request("GET", "/clicktochat/nothing",
                                   headers={"Accept": "application/json"})
    assert (status, json.loads(body)) == (404, {"status": "error", "reason": "not_found"})
    status, _, body = http.request("GET", "/clicktochat/list", headers={"Accept": "text/xml"})
    assert body.startswith("<?xml version='1.0'?><connected_users>")
