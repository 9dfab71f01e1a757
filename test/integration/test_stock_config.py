"""clicktochat in ejabberd as operators run it: Debian's stock ejabberd.yml
(read now from /etc/ejabberd, see sandbox.stock_yml_config) with our vhosts,
our module and one HTTP listener, on 127.0.0.1:15232 (c2s, STARTTLS
required, SCRAM passwords) and 127.0.0.1:15291 (HTTP: /clicktochat, /ws,
/bosh). Roster, offline storage, stream management, carbons, privacy,
blocking, fail2ban and the c2s shaper are all on. Agents use slixmpp over
STARTTLS; visitors also come over WebSocket and BOSH (xmpp_transports).

This file's `server`, `connect` fixtures replace conftest's, so that
conftest's `http`, `clients`, `control` and `leave_server_clean` serve this
sandbox."""

import subprocess
import time

import pytest
import yaml

from conftest import (AGENT_PASSWORD, BYSTANDER, CLIENT_HOST, HELPDESK_HOST, agent_jid,
                      visitor_name)
from sandbox import STOCK_CONFIG, Sandbox, wait_for
from test_accounts import assert_scram_record
from test_archive import conversations, record_of
from test_archive_riak import archive_status
from test_foundation import XML_PROLOG, assert_error, assigned_agent
from xmpp_client import Client
from xmpp_transports import BoshClient, TcpClient, TcpTransport, WebSocketClient

C2S_PORT = 15232
HTTP_PORT = 15291
MAX_SESSIONS = 2
VISITOR_TTL = 8
# Stream management: the resume timeout a visitor asks for (<enable max=.../>);
# the stock resume_timeout (300 s) stays as it is for everyone else.
RESUME_SECONDS = 6
PASSWORD = "visitor-secret"
AGENT1 = agent_jid("agent1")


@pytest.fixture(scope="module")
def server():
    sandbox = Sandbox("stock", C2S_PORT, HTTP_PORT,
                      {"max_sessions": MAX_SESSIONS, "visitor_ttl": VISITOR_TTL},
                      stock_config=True)
    accounts = [(agent, HELPDESK_HOST, AGENT_PASSWORD) for agent in ("agent1", "agent2")]
    with sandbox.serving(accounts + [(BYSTANDER, CLIENT_HOST, "bystander-secret")]):
        yield sandbox


@pytest.fixture
def connect(clients):
    """connect(jid, password=AGENT_PASSWORD, transport="slixmpp") -> a logged-in
    client: slixmpp over STARTTLS, or ours over "tcp" (STARTTLS, stream
    management), "ws" or "bosh"."""
    def connect(jid, password=AGENT_PASSWORD, transport="slixmpp", **kwargs):
        if transport == "slixmpp":
            client = Client(jid, password, C2S_PORT, starttls=True, **kwargs)
        elif transport == "tcp":
            client = TcpClient(jid, password, C2S_PORT)
        elif transport == "ws":
            client = WebSocketClient(jid, password, f"ws://127.0.0.1:{HTTP_PORT}/ws")
        else:
            client = BoshClient(jid, password, f"http://127.0.0.1:{HTTP_PORT}/bosh")
        clients.append(client)
        return client
    return connect


def connection_types(server):
    """{full JID: ejabberd's connection type (c2s_tls, websocket, http_bind...)}."""
    lines = server.ctl("connected_users_info").splitlines()
    return {fields[0]: fields[1] for fields in (line.split("\t") for line in lines) if fields[0]}


def load_of(server, agent):
    loads = archive_status(server)["loads"].split()
    return dict(entry.split("=") for entry in loads).get(agent)


def offline_count(server, user, host=CLIENT_HOST):
    return int(server.ctl("get_offline_count", user, host))


def visitor_leaves(control, name):
    wait_for(lambda: name not in control.registered_users(), 30,
             f"visitor {name}'s account to be removed")


def drop_to_pending(server, client):
    """Drops a client's connection without closing its stream; returns once
    ejabberd holds its session for resumption."""
    pending = f"Closing c2s connection for {client.jid}: "
    before = server.count_in_log(pending)
    client.drop()
    wait_for(lambda: server.count_in_log(pending) > before, 10,
             f"ejabberd to hold {client.jid}'s session for resumption")


def register(http, name):
    """Registers a visitor; the agent it was given."""
    status, _, body = http.register(name, PASSWORD)
    return assigned_agent(status, body)


def test_the_sandbox_is_debians_stock_configuration(server):
    stock = yaml.safe_load(STOCK_CONFIG.read_text())
    ours = yaml.safe_load(server.config_file.read_text())
    assert set(ours["modules"]) == set(stock["modules"]) | {"mod_clicktochat"}
    assert all(ours["modules"][m] == stock["modules"][m] for m in stock["modules"])
    assert ours["auth_password_format"] == "scram"
    assert ours["shaper_rules"] == stock["shaper_rules"]
    # STARTTLS is required: before it, the server offers no way to log in.
    transport = TcpTransport(C2S_PORT)
    features = transport.restart(CLIENT_HOST)
    transport.drop()
    starttls = features.find("{urn:ietf:params:xml:ns:xmpp-tls}starttls")
    assert starttls is not None and starttls.find(
        "{urn:ietf:params:xml:ns:xmpp-tls}required") is not None
    assert features.find("{urn:ietf:params:xml:ns:xmpp-sasl}mechanisms") is None
    # One HTTP listener with room for bursts of connections (ejabberd's default is 5).
    listening = subprocess.run(["ss", "-Hltn", f"sport = :{HTTP_PORT}"], capture_output=True,
                               text=True, check=True).stdout.split()
    assert listening[2] == "128", listening


def test_the_seed_flow_over_starttls_and_scram(server, control, http, connect):
    agent1, _ = connect(AGENT1), connect(agent_jid("agent2"))
    status, _, body = http.request("GET", "/clicktochat/list")
    assert (status, body) == (200, XML_PROLOG + "<connected_users>"
                              f"<username>{AGENT1}</username>"
                              f"<username>{agent_jid('agent2')}</username></connected_users>")
    names = [visitor_name("seed") for _ in range(2 * MAX_SESSIONS)]
    assert [register(http, name) for name in names] == [AGENT1, agent_jid("agent2")] * 2
    assert_error(http.register(visitor_name(), PASSWORD), 503, "register", "no_agent_available")

    # Our client logs in with SCRAM-SHA-1 and checks the server's signature.
    visitor_jid = f"{names[0]}@{CLIENT_HOST}"
    visitor = connect(visitor_jid, PASSWORD, transport="tcp")
    assert set(connection_types(server).values()) == {"c2s_tls"}
    visitor.send(AGENT1, "my order has not arrived")
    message = agent1.receive()
    assert (str(message["from"]), message["body"]) == (visitor.jid, "my order has not arrived")
    agent1.send(visitor_jid, "let me check that for you")
    assert visitor.receive()[:3] == (str(agent1.xmpp.boundjid), "chat",
                                     "let me check that for you")

    visitor.close()
    visitor_leaves(control, names[0])
    assert names[2] in control.registered_users()
    assert load_of(server, AGENT1) == "1"
    # Its slot is free again: agent1 takes one more visitor, then nobody can.
    assert register(http, visitor_name("seed")) == AGENT1
    assert_error(http.register(visitor_name(), PASSWORD), 503, "register", "no_agent_available")


def test_a_visitors_scram_record_is_the_one_ejabberd_makes(server, control, http, connect):
    """Stock SCRAM (SHA-1): the record clicktochat_accounts makes, like the one
    ejabberd made of the bystander (test_accounts.py: SHA-256 and SHA-512)."""
    connect(AGENT1)
    assert_scram_record(control.stored_password(BYSTANDER), "bystander-secret", "sha")
    name = visitor_name("scram")
    assert register(http, name) == AGENT1
    assert_scram_record(control.stored_password(name), PASSWORD, "sha")


@pytest.mark.parametrize("transport, leaving", [("ws", "close"), ("bosh", "close"),
                                                ("ws", "drop")])
def test_a_visitor_over_websocket_or_bosh(server, control, http, connect, transport, leaving):
    agent = connect(AGENT1)
    name = visitor_name(transport)
    assert register(http, name) == AGENT1
    visitor_jid = f"{name}@{CLIENT_HOST}"
    visitor = connect(visitor_jid, PASSWORD, transport=transport)
    assert connection_types(server)[visitor.jid] == {"ws": "websocket",
                                                     "bosh": "http_bind"}[transport]
    visitor.send(AGENT1, f"hello over {transport}")
    message = agent.receive()
    assert (str(message["from"]), message["body"]) == (visitor.jid, f"hello over {transport}")
    agent.send(visitor_jid, f"hello back over {transport}")
    assert visitor.receive()[:3] == (str(agent.xmpp.boundjid), "chat",
                                     f"hello back over {transport}")
    assert load_of(server, AGENT1) == "1"

    getattr(visitor, leaving)()
    visitor_leaves(control, name)
    assert load_of(server, AGENT1) == "0"


def test_stream_management_keeps_a_dropped_visitor_until_the_resume_timeout(
        server, control, http, connect):
    agent = connect(AGENT1)
    name = visitor_name("sm")
    assert register(http, name) == AGENT1
    visitor_jid = f"{name}@{CLIENT_HOST}"
    visitor = connect(visitor_jid, PASSWORD, transport="tcp")
    assert visitor.enable_sm(RESUME_SECONDS) == RESUME_SECONDS
    visitor.send(AGENT1, "before the drop")
    assert agent.receive()["body"] == "before the drop"

    # Dropped without closing the stream: the session waits to be resumed,
    # and the visitor keeps its account and its agent.
    drop_to_pending(server, visitor)
    agent.send(visitor_jid, "while you were away")
    assert visitor.jid in control.connected_users()
    assert name in control.registered_users()
    assert load_of(server, AGENT1) == "1"
    visitor.resume()
    assert visitor.receive()[2] == "while you were away"
    visitor.send(AGENT1, "after the resumption")
    assert agent.receive()["body"] == "after the resumption"
    assert name in control.registered_users()
    assert load_of(server, AGENT1) == "1"

    # Dropped again and never resumed: the visitor ends when the timeout passes.
    dropped = time.monotonic()
    drop_to_pending(server, visitor)
    agent.send(visitor_jid, "too late")
    visitor_leaves(control, name)
    assert time.monotonic() - dropped >= RESUME_SECONDS
    assert load_of(server, AGENT1) == "0"
    # The message left unacknowledged goes back to its sender, not offline.
    bounced = agent.receive()
    assert (bounced["type"], bounced["error"]["condition"], bounced["body"]) == (
        "error", "service-unavailable", "too late")
    assert offline_count(server, name) == 0
    # Resent on resumption, bounced at the end: each message archived once.
    _, _, entries = record_of(conversations(http, AGENT1), visitor_jid)
    assert [m for _, _, _, m in entries] == [
        "before the drop", "while you were away", "after the resumption", "too late"]


def test_an_agent_dropped_with_stream_management_leaves_the_rotation_at_the_timeout(
        server, control, http, connect):
    agent = connect(AGENT1, transport="tcp")
    assert agent.enable_sm(RESUME_SECONDS) == RESUME_SECONDS
    # While its session can be resumed, the agent is online: it takes visitors.
    drop_to_pending(server, agent)
    name = visitor_name("sm_agent")
    assert register(http, name) == AGENT1
    agent.resume()
    visitor = connect(f"{name}@{CLIENT_HOST}", PASSWORD, transport="tcp")
    visitor.send(AGENT1, "are you there?")
    assert agent.receive()[2] == "are you there?"
    agent.ack()  # or the server resends it, to agent1's offline storage

    dropped = time.monotonic()
    drop_to_pending(server, agent)
    wait_for(lambda: archive_status(server)["queue"] == "", RESUME_SECONDS + 20,
             "the agent to leave the rotation")
    assert time.monotonic() - dropped >= RESUME_SECONDS
    assert_error(http.register(visitor_name(), PASSWORD), 503, "register", "no_agent_available")
    # Its visitor keeps it until it leaves; then the agent has no load at all.
    assert load_of(server, AGENT1) == "1"
    visitor.close()
    visitor_leaves(control, name)
    assert load_of(server, AGENT1) is None
    assert offline_count(server, "agent1", HELPDESK_HOST) == 0


def test_carbons_and_several_agent_resources_archive_each_message_once(
        server, http, connect):
    desk = connect(f"{AGENT1}/desk")
    phone = connect(f"{AGENT1}/phone")
    for resource in (desk, phone):
        assert resource.iq(None, "set", "<enable xmlns='urn:xmpp:carbons:2'/>") == (
            "result", None)
    name = visitor_name("carbons")
    assert register(http, name) == AGENT1
    visitor_jid = f"{name}@{CLIENT_HOST}"
    visitor = connect(visitor_jid, PASSWORD, transport="tcp")

    # To the agent's bare JID: every resource gets it.
    visitor.send(AGENT1, "to the agent")
    assert desk.receive()["body"] == phone.receive()["body"] == "to the agent"
    # One resource answers: the other gets a carbon of it.
    desk.send(visitor_jid, "from the desk")
    assert visitor.receive()[2] == "from the desk"
    assert phone.receive_carbon() == ("sent", f"{AGENT1}/desk", visitor_jid, "from the desk")
    # To one resource: the other gets a carbon of it.
    visitor.send(f"{AGENT1}/phone", "to the phone")
    assert phone.receive()["body"] == "to the phone"
    assert desk.receive_carbon() == ("received", visitor.jid, f"{AGENT1}/phone",
                                     "to the phone")
    phone.send(visitor_jid, "from the phone")
    assert visitor.receive()[2] == "from the phone"
    assert desk.receive_carbon()[3] == "from the phone"

    _, _, entries = record_of(conversations(http, AGENT1), visitor_jid)
    assert [(f, t, m) for _, f, t, m in entries] == [
        (visitor_jid, AGENT1, "to the agent"), (AGENT1, visitor_jid, "from the desk"),
        (visitor_jid, AGENT1, "to the phone"), (AGENT1, visitor_jid, "from the phone")]


def test_messages_to_a_removed_visitor_are_not_kept_offline(server, control, http, connect):
    agent = connect(AGENT1)
    # A registered visitor that has not logged in yet: offline storage keeps
    # its agent's message for it.
    idle = visitor_name("idle")
    assert register(http, idle) == AGENT1
    agent.send(f"{idle}@{CLIENT_HOST}", "are you there?")
    wait_for(lambda: offline_count(server, idle) == 1, 10, "the message to be stored offline")
    # One that logs in and leaves; a message sent as it goes races the removal.
    name = visitor_name("gone")
    assert register(http, name) == AGENT1
    visitor = connect(f"{name}@{CLIENT_HOST}", PASSWORD, transport="tcp")
    visitor.close()
    agent.send(f"{name}@{CLIENT_HOST}", "one more thing")
    visitor_leaves(control, name)
    wait_for(lambda: idle not in control.registered_users(), VISITOR_TTL + 20,
             "the idle visitor to be removed after visitor_ttl")

    for user in (idle, name):
        assert offline_count(server, user) == 0
        agent.send(f"{user}@{CLIENT_HOST}", "hello?")
        bounced = agent.receive()
        while bounced["body"] == "one more thing":  # bounced if it lost the race
            bounced = agent.receive()
        assert (bounced["type"], bounced["error"]["condition"], bounced["body"]) == (
            "error", "service-unavailable", "hello?")
        assert offline_count(server, user) == 0
    assert load_of(server, AGENT1) == "0"


def reload_modules(server, **modules):
    """Adds (options) or takes back (None) module overrides of the stock
    configuration, and has ejabberd reload it."""
    for name, options in modules.items():
        if options is None:
            del server.stock_modules[name]
        else:
            server.stock_modules[name] = options
    server.write_config()
    server.ctl("reload_config")


def test_mod_mam_alongside_changes_nothing_of_ours(server, control, http, connect):
    # Debian's file has mod_mam commented out: enabled with the options shown there.
    added = "mod_mam" not in yaml.safe_load(STOCK_CONFIG.read_text())["modules"]
    if added:
        reload_modules(server, mod_mam={"assume_mam_usage": True, "default": "always"})
    mam_query = "<query xmlns='urn:xmpp:mam:2'/>"
    try:
        agent = connect(AGENT1)
        wait_for(lambda: agent.iq(None, "set", mam_query)[0] == "result", 30,
                 "mod_mam to answer")
        name = visitor_name("mam")
        assert register(http, name) == AGENT1
        visitor_jid = f"{name}@{CLIENT_HOST}"
        visitor = connect(visitor_jid, PASSWORD, transport="tcp")
        visitor.send(AGENT1, "archived twice over")
        assert agent.receive()["body"] == "archived twice over"
        agent.send(visitor_jid, "by both")
        assert visitor.receive()[2] == "by both"
        # The visitor may read its own MAM archive, which has both messages.
        assert visitor.iq(None, "set", mam_query) == ("result", None)
        assert [m.findtext(".//{jabber:client}body") for m in visitor.inbox
                if m.find("{urn:xmpp:mam:2}result") is not None] == [
            "archived twice over", "by both"]
        _, _, entries = record_of(conversations(http, AGENT1), visitor_jid)
        assert [(f, t, m) for _, f, t, m in entries] == [
            (visitor_jid, AGENT1, "archived twice over"), (AGENT1, visitor_jid, "by both")]
        visitor.close()
        visitor_leaves(control, name)
        assert load_of(server, AGENT1) == "0"
    finally:
        if added:
            reload_modules(server, mod_mam=None)


@pytest.mark.parametrize("transport", ["slixmpp", "tcp", "ws", "bosh"])
def test_a_roster_request_gets_a_result(server, http, connect, transport):
    """Most clients ask for their roster at login; without mod_roster
    (the minimal configuration) they get service-unavailable."""
    agent = connect(AGENT1)
    assert agent.iq(None, "get", "<query xmlns='jabber:iq:roster'/>") == ("result", None)
    name = visitor_name("roster")
    assert register(http, name) == AGENT1
    visitor = connect(f"{name}@{CLIENT_HOST}", PASSWORD, transport=transport)
    assert visitor.iq(None, "get", "<query xmlns='jabber:iq:roster'/>") == ("result", None)
