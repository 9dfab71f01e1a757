"""Fixtures for the integration suite (Debian's /usr/bin/python3 + pytest).

One throw-away ejabberd 23.01 serves the whole suite on 127.0.0.1:15222 (XMPP)
and 127.0.0.1:15280 (HTTP); every test leaves it as it found it: its clients
disconnected and every visitor account gone.
"""

import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sandbox import CLIENT_HOST, HELPDESK_HOST, Sandbox, wait_for  # noqa: E402
from xmpp_client import Client  # noqa: E402

C2S_PORT = 15222
HTTP_PORT = 15280
MAX_SESSIONS = 2
VISITOR_TTL = 8
AGENTS = ["agent1", "agent2", "agent3", "agent4"]
AGENT_PASSWORD = "agent-secret"
BYSTANDER = "bystander"  # an ordinary account of the client host


class Http:
    """Real HTTP requests to the sandbox's listener."""

    def __init__(self, server):
        self.server = server

    def request(self, method, path, body=None, headers=None):
        data = body.encode() if isinstance(body, str) else body
        req = urllib.request.Request(self.server.url(path), data=data, method=method,
                                     headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=30) as response:
                return response.status, dict(response.headers), response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read().decode()

    def register(self, username, password="visitor-secret"):
        body = ("<?xml version='1.0'?><registration><username>"
                f"{username}</username><password>{password}</password></registration>")
        return self.request("POST", "/clicktochat/register", body)


@pytest.fixture(scope="session")
def server():
    # The suite registers far more than 60 visitors a minute from 127.0.0.1:
    # the rate limit has its own server in test_hardening.py.
    sandbox = Sandbox("main", C2S_PORT, HTTP_PORT,
                      {"max_sessions": MAX_SESSIONS, "visitor_ttl": VISITOR_TTL,
                       "max_registrations_per_minute": 0})
    accounts = [(agent, HELPDESK_HOST, AGENT_PASSWORD) for agent in AGENTS]
    with sandbox.serving(accounts + [(BYSTANDER, CLIENT_HOST, "bystander-secret")]):
        yield sandbox


@pytest.fixture
def http(server):
    return Http(server)


@pytest.fixture
def clients():
    """Every Client a test opened; all are disconnected after the test."""
    opened = []
    yield opened
    for client in opened:
        client.disconnect()


@pytest.fixture
def connect(clients, server):
    """connect(jid, password=AGENT_PASSWORD, show=None, ...) -> a Client
    logged in to `server` (this one, or a test module's own)."""
    def connect(jid, password=AGENT_PASSWORD, **kwargs):
        client = Client(jid, password, server.c2s_port, **kwargs)
        clients.append(client)
        return client
    return connect


@pytest.fixture(scope="module")
def control(server):
    """A ControlNode beside `server`, for fast account and session queries
    (an ejabberdctl command takes most of a second)."""
    node = server.control()
    yield node
    node.close()


@pytest.fixture(autouse=True)
def leave_server_clean(request):
    """A test of the shared server leaves it as it found it: its clients
    disconnected, then every visitor account removed (by logout or TTL)."""
    if "server" not in request.fixturenames:
        yield
        return
    server = request.getfixturevalue("server")
    opened = request.getfixturevalue("clients")
    yield
    for client in opened:
        client.disconnect()
    wait_for(lambda: not server.connected_users(), 30,
             "every session to close after the test", interval=0.2)
    wait_for(lambda: server.registered_users() == {BYSTANDER}, VISITOR_TTL + 30,
             "every visitor account to be removed after the test", interval=0.5)


def agent_and_visitor(server, visitor_name, password="pw"):
    """agent1 logged in on `server`, and a visitor registered through the API
    and logged in: (agent client, visitor client), to disconnect after use."""
    agent = Client(agent_jid("agent1"), AGENT_PASSWORD, server.c2s_port)
    status, _, body = Http(server).register(visitor_name, password)
    assert status == 201, body
    visitor = Client(f"{visitor_name}@{CLIENT_HOST}", password, server.c2s_port)
    return agent, visitor


def agent_jid(name):
    return f"{name}@{HELPDESK_HOST}"


def visitor_name(prefix="visitor"):
    """A fresh username: tests never reuse one another's visitors."""
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def connect_agents(connect, names):
    """Logs the agents in one after another, so the rotation is in this order."""
    return [connect(agent_jid(name)) for name in names]
