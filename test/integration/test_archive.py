"""The conversation archive with the embedded store (the default): every
message between a visitor and its agent is recorded once, in the seed's
entry format, readable over HTTP and ejabberdctl, and survives kill -9."""

import re
import urllib.parse

import pytest

from conftest import (AGENT_PASSWORD, BYSTANDER, CLIENT_HOST, HELPDESK_HOST, Http, agent_jid,
                      agent_and_visitor, visitor_name)
from sandbox import Sandbox, wait_for
from xmpp_client import Client

HOSTILE_TEXT = "pipes | carets ^ percent %25 %7C <b>&amp;</b> \"quotes'\nnew line ünïcødé 🎧"
ENTRY = re.compile(r"\|current_time\^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)"
                   r"\|from\^([^|]*)\|to\^([^|]*)\|msg\^([^|]*)\|")


def unescape(value):
    """DESIGN.md's escaping, reversed: %7C -> |, %5E -> ^, %25 -> %."""
    return re.sub(r"%(25|7C|5E)", lambda m: {"25": "%", "7C": "|", "5E": "^"}[m.group(1)], value)


def xml_unescape(text):
    text = re.sub(r"&#(\d+);", lambda m: chr(int(m.group(1))), text)
    return (text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"')
            .replace("&apos;", "'").replace("&amp;", "&"))


def conversations(http, agent):
    status, headers, body = http.request(
        "GET", "/clicktochat/conversations/" + urllib.parse.quote(agent))
    assert status == 200, body
    assert headers["Content-Type"].startswith("text/xml")
    return parse_conversations(body)


def parse_conversations(body):
    """[(start, user, [(time, from, to, msg), ...]), ...] from the XML."""
    records = []
    for start, user, conversation in re.findall(
            r"<record><current_time>([^<]*)</current_time><user>([^<]*)</user>"
            r"<conversation>(.*?)</conversation></record>", body, re.S):
        entries = []
        for entry in re.findall(r"<entry>(.*?)</entry>", conversation, re.S):
            match = ENTRY.fullmatch(xml_unescape(entry))
            assert match, entry
            time, sender, receiver, msg = match.groups()
            entries.append((time, unescape(sender), unescape(receiver), unescape(msg)))
        records.append((start, xml_unescape(user), entries))
    return records


def record_of(records, visitor_jid):
    mine = [r for r in records if r[1] == visitor_jid]
    assert len(mine) == 1, records
    return mine[0]


def test_conversation_is_recorded_once_in_the_seed_format(server, http, connect):
    agent = connect(agent_jid("agent1"))
    name = visitor_name()
    status, _, _ = http.register(name)
    assert status == 201
    visitor_jid = f"{name}@{CLIENT_HOST}"
    visitor = connect(visitor_jid, "visitor-secret")
    bystander = connect(f"{BYSTANDER}@{CLIENT_HOST}", "bystander-secret")

    said = [(visitor_jid, agent_jid("agent1"), "hello, I need help"),
            (agent_jid("agent1"), visitor_jid, "sure, what is it?"),
            (visitor_jid, agent_jid("agent1"), HOSTILE_TEXT),
            (agent_jid("agent1"), visitor_jid, HOSTILE_TEXT[::-1])]
    for sender, receiver, text in said:
        client = visitor if sender == visitor_jid else agent
        peer = agent if sender == visitor_jid else visitor
        client.send(receiver, text)
        assert peer.receive()["body"] == text
    # Not between the visitor and its agent: not archived.
    agent.send(f"{BYSTANDER}@{CLIENT_HOST}", "agent to bystander")
    bystander.send(agent_jid("agent1"), "bystander to agent")
    agent.receive()

    start, user, entries = record_of(conversations(http, agent_jid("agent1")), visitor_jid)
    assert [(f, t, m) for _, f, t, m in entries] == said
    times = [t for t, _, _, _ in entries]
    assert times == sorted(times) and start <= times[0]

    # ejabberdctl gives the same archive.
    printed = server.ctl("clicktochat_conversations", agent_jid("agent1"))
    assert record_of(parse_conversations(printed), visitor_jid) == (start, user, entries)

    # After the visitor leaves, its conversation stays archived.
    visitor.disconnect()
    wait_for(lambda: name not in server.registered_users(), 20, "the visitor to be removed")
    assert record_of(conversations(http, agent_jid("agent1")), visitor_jid)[2] == entries


def test_conversations_endpoint_errors(server, http):
    status, _, body = http.request("GET", "/clicktochat/conversations/nobody@" + HELPDESK_HOST)
    assert (status, body) == (404, "<?xml version='1.0'?><conversations><status>error</status>"
                                   "<reason>unknown_agent</reason></conversations>")
    status, _, _ = http.request("GET", "/clicktochat/conversations/" + BYSTANDER + "@" + CLIENT_HOST)
    assert status == 404
    status, _, _ = http.request("GET", "/clicktochat/conversations/not%20a%20jid@@")
    assert status == 404
    status, headers, _ = http.request("POST", "/clicktochat/conversations/" + agent_jid("agent1"), "x")
    assert (status, headers["Allow"]) == (405, "GET")
    # An agent with an account but no conversation yet: an empty archive.
    status, _, body = http.request("GET", "/clicktochat/conversations/" + agent_jid("agent4"))
    assert (status, body) == (200, "<?xml version='1.0'?><conversations "
                                   f"agent=\"{agent_jid('agent4')}\"></conversations>")


def test_conversations_access_rule_is_enforced(server, http):
    path = "/clicktochat/conversations/" + agent_jid("agent1")
    assert http.request("GET", path)[0] == 200  # default: loopback may read
    try:
        server.reload(conversations_access="clicktochat_nobody")  # deny: all
        status, _, body = http.request("GET", path)
        assert (status, body) == (403, "<?xml version='1.0'?><conversations><status>error"
                                       "</status><reason>forbidden</reason></conversations>")
    finally:
        server.reload(conversations_access=None)
    assert http.request("GET", path)[0] == 200


@pytest.fixture
def crash_server():
    sandbox = Sandbox("crash", 15225, 15283, {"max_sessions": 2})
    with sandbox.serving([("agent1", HELPDESK_HOST, AGENT_PASSWORD)]):
        yield sandbox


def test_kill_9_loses_nothing_acknowledged(crash_server):
    http = Http(crash_server)
    agent, visitor = agent_and_visitor(crash_server, "crash_visitor", "123")
    visitor_jid = f"crash_visitor@{CLIENT_HOST}"
    for i in range(20):
        visitor.send(agent_jid("agent1"), f"message {i}")
        agent.send(visitor_jid, f"answer {i}")
    # A read syncs: everything sent so far is acknowledged (committed).
    before = conversations(http, agent_jid("agent1"))
    assert len(record_of(before, visitor_jid)[2]) == 40

    crash_server.kill()
    crash_server.start(fresh=False)
    assert conversations(http, agent_jid("agent1")) == before


def test_an_ejabberd_restart_keeps_the_rotation_and_the_conversation(crash_server):
    http = Http(crash_server)
    agent, visitor = agent_and_visitor(crash_server, "restart_visitor", "123")
    visitor_jid = f"restart_visitor@{CLIENT_HOST}"
    visitor.send(agent_jid("agent1"), "before the restart")
    assert agent.receive()["body"] == "before the restart"

    crash_server.stop()   # graceful: every session is closed on the way down
    crash_server.start(fresh=False)
    # The visitor was not leaving: its account is still there.
    assert "restart_visitor" in crash_server.registered_users()
    agent = Client(agent_jid("agent1"), AGENT_PASSWORD, crash_server.c2s_port)
    visitor = Client(visitor_jid, "123", crash_server.c2s_port)
    visitor.send(agent_jid("agent1"), "after the restart")
    assert agent.receive()["body"] == "after the restart"
    # The same conversation record goes on.
    _, _, entries = record_of(conversations(http, agent_jid("agent1")), visitor_jid)
    assert [m for _, _, _, m in entries] == ["before the restart", "after the restart"]
    # agent1 still counts that visitor: one slot of two is left.
    assert http.register("second_visitor", "123")[0] == 201
    assert http.register("third_visitor", "123")[0] == 503
    # When the visitor leaves now, it ends as usual.
    visitor.disconnect()
    wait_for(lambda: "restart_visitor" not in crash_server.registered_users(), 30,
             "the visitor's account to be removed after it leaves")
    agent.disconnect()
