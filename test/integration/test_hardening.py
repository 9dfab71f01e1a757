"""Throw-away visitor accounts are no spam relay, and registrations are
rate limited per client address (with X-Forwarded-For honoured only from
trusted proxies). Real ejabberd, real clients, real HTTP."""

import http.client

import pytest

from conftest import AGENT_PASSWORD, BYSTANDER, CLIENT_HOST, HELPDESK_HOST, agent_jid, visitor_name
from sandbox import Sandbox
from xmpp_client import Client

REGISTER_PASSWORD = "visitor-secret"


def test_a_visitor_talks_to_its_agent_and_nobody_else(server, http, connect):
    agent1 = connect(agent_jid("agent1"))
    agent2 = connect(agent_jid("agent2"))
    agent2.set_show("away")  # so that the visitor surely gets agent1
    bystander = connect(f"{BYSTANDER}@{CLIENT_HOST}", "bystander-secret")
    name = visitor_name()
    assert http.register(name)[0] == 201
    visitor_jid = f"{name}@{CLIENT_HOST}"
    visitor = connect(visitor_jid, REGISTER_PASSWORD)

    # Its agent, both ways.
    visitor.send(agent_jid("agent1"), "hello agent")
    assert agent1.receive()["body"] == "hello agent"
    agent1.send(visitor_jid, "hello visitor")
    assert visitor.receive()["body"] == "hello visitor"
    # Its server: a ping is answered.
    assert visitor.iq(CLIENT_HOST, "get", "<ping xmlns='urn:xmpp:ping'/>") == ("result", None)

    # Anyone else: refused with not-allowed, and nothing arrives.
    for other, client in [(agent_jid("agent2"), agent2), (f"{BYSTANDER}@{CLIENT_HOST}", bystander)]:
        visitor.send(other, "buy cheap pills")
        bounce = visitor.receive()
        assert (bounce["type"], bounce["error"]["condition"], str(bounce["from"].bare)) == (
            "error", "not-allowed", other)
        client.barrier()
        assert client.pending_messages() == 0, f"{other} got the visitor's message"
    # Subscriptions to others and joining rooms are refused.
    visitor.send_presence(f"{BYSTANDER}@{CLIENT_HOST}", "subscribe")
    assert visitor.presence_error() == (f"{BYSTANDER}@{CLIENT_HOST}", "not-allowed")
    visitor.send_presence(f"room@conference.{CLIENT_HOST}/{name}")
    assert visitor.presence_error() == (f"room@conference.{CLIENT_HOST}/{name}", "not-allowed")
    # IQs to other users, and account management, are refused.
    assert visitor.iq(f"{BYSTANDER}@{CLIENT_HOST}", "get",
                      "<query xmlns='jabber:iq:version'/>") == ("error", "not-allowed")
    assert visitor.iq(CLIENT_HOST, "set",
                      f"<query xmlns='jabber:iq:register'><username>{name}</username>"
                      "<password>changed</password></query>") == ("error", "not-allowed")
    assert visitor.iq(CLIENT_HOST, "set",
                      "<query xmlns='jabber:iq:register'><remove/></query>") == (
        "error", "not-allowed")

    # Others cannot reach the visitor either.
    bystander.send(visitor_jid, "hi stranger")
    bounce = bystander.receive()
    assert (bounce["type"], bounce["error"]["condition"]) == ("error", "not-allowed")
    visitor.barrier()
    assert visitor.pending_messages() == 0

    # The password was not changed: the visitor logs in again with it.
    again = connect(f"{visitor_jid}/second", REGISTER_PASSWORD)
    again.send(agent_jid("agent1"), "still me")
    assert agent1.receive()["body"] == "still me"


RATE_C2S, RATE_HTTP = 15229, 15288
PER_MINUTE = 5
MAX_VISITORS = 2


@pytest.fixture(scope="module")
def limited_server():
    # trusted_proxies is ejabberd's own (global) option: ejabberd_http
    # resolves X-Forwarded-For with it before the module sees the request.
    sandbox = Sandbox("limited", RATE_C2S, RATE_HTTP, {
        "max_registrations_per_minute": PER_MINUTE,
        "max_visitors": MAX_VISITORS, "max_sessions": 10},
        global_options={"trusted_proxies": '["127.0.0.1"]'})
    with sandbox.serving([("agent1", HELPDESK_HOST, AGENT_PASSWORD)]):
        yield sandbox


def post_register(source, headers=None):
    """A registration attempt from a given loopback source address."""
    connection = http.client.HTTPConnection("127.0.0.1", RATE_HTTP, timeout=30,
                                            source_address=(source, 0))
    body = ("<?xml version='1.0'?><registration><username>" + visitor_name() +
            "</username><password>p</password></registration>")
    connection.request("POST", "/clicktochat/register", body, headers or {})
    response = connection.getresponse()
    result = response.status, response.getheader("Retry-After"), response.read().decode()
    connection.close()
    return result


def test_registrations_are_rate_limited_per_client_address(limited_server):
    # No agent is online: allowed attempts get 503, and are counted all the same.
    forwarded = {"X-Forwarded-For": "203.0.113.7"}
    for _ in range(PER_MINUTE):
        assert post_register("127.0.0.1", forwarded)[0] == 503
    status, retry_after, body = post_register("127.0.0.1", forwarded)
    assert (status, body) == (429, "<?xml version='1.0'?><register><status>error</status>"
                                   "<reason>rate_limited</reason></register>")
    assert int(retry_after) >= 1
    # 127.0.0.1 is a trusted proxy: another forwarded client has its own allowance.
    assert post_register("127.0.0.1", {"X-Forwarded-For": "203.0.113.8"})[0] == 503
    # A chain: the nearest untrusted address is the client.
    assert post_register("127.0.0.1",
                         {"X-Forwarded-For": "203.0.113.7, 127.0.0.1"})[0] == 429
    assert limited_server.registered_users() == set()


def test_forwarded_for_from_an_untrusted_peer_is_ignored(limited_server):
    # 127.0.0.2 is not a trusted proxy: its header is ignored, it is the client.
    for i in range(PER_MINUTE):
        assert post_register("127.0.0.2", {"X-Forwarded-For": f"198.51.100.{i}"})[0] == 503
    assert post_register("127.0.0.2", {"X-Forwarded-For": "198.51.100.99"})[0] == 429
    assert post_register("127.0.0.2")[0] == 429


def test_live_visitors_are_capped(limited_server):
    agent = Client(agent_jid("agent1"), AGENT_PASSWORD, RATE_C2S)
    try:
        # Each from its own forwarded address, to stay clear of the rate limit.
        results = [post_register("127.0.0.1", {"X-Forwarded-For": f"192.0.2.{i}"})
                   for i in range(MAX_VISITORS + 1)]
        assert [status for status, _, _ in results] == [201] * MAX_VISITORS + [503]
        assert results[-1][2] == ("<?xml version='1.0'?><register><status>error</status>"
                                  "<reason>too_many_visitors</reason></register>")
        assert len(limited_server.registered_users()) == MAX_VISITORS
    finally:
        agent.disconnect()
