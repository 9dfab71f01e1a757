"""A visitor's account where the client host keeps SCRAM (clicktochat_accounts
makes the record itself, with the NIF's PBKDF2, and hands it to ejabberd_auth).
One sandbox per `auth_scram_hash` other than the default (SHA-256, then
SHA-512) on 127.0.0.1:15241 (c2s) and 127.0.0.1:15310 (HTTP); SHA-1, the
default, is checked the same way in test_stock_config.py.

The record must be the one ejabberd makes: its keys are checked against
Python's hashlib, and its shape against an account ejabberd registered
itself (the bystander, through ejabberdctl); the visitor logs in with the
matching SCRAM mechanism and with PLAIN; its password is normalised as
ejabberd normalises one; and a password ejabberd refuses is refused with
nothing left behind."""

import base64
import hashlib
import hmac

import pytest

from conftest import AGENT_PASSWORD, BYSTANDER, CLIENT_HOST, HELPDESK_HOST, agent_jid, visitor_name
from line_common import get_status
from sandbox import Sandbox, wait_for
from test_foundation import assert_error, assigned_agent
from xmpp_client import Client

C2S_PORT = 15241
HTTP_PORT = 15310
BYSTANDER_PASSWORD = "bystander-secret"
PASSWORD = "visitor-secret"
AGENT1 = agent_jid("agent1")
# ejabberd's auth_scram_hash names, hashlib's, and the SASL mechanism of each.
HASHES = {"sha": ("sha1", "SCRAM-SHA-1"), "sha256": ("sha256", "SCRAM-SHA-256"),
          "sha512": ("sha512", "SCRAM-SHA-512")}


@pytest.fixture(scope="module", params=["sha256", "sha512"])
def server(request):
    sandbox = Sandbox(f"accounts_{request.param}", C2S_PORT, HTTP_PORT,
                      {"max_sessions": 2, "visitor_ttl": 8},
                      global_options={"auth_password_format": "scram",
                                      "auth_scram_hash": request.param})
    sandbox.scram_hash = request.param
    with sandbox.serving([("agent1", HELPDESK_HOST, AGENT_PASSWORD),
                          (BYSTANDER, CLIENT_HOST, BYSTANDER_PASSWORD)]):
        yield sandbox


def assert_scram_record(stored, password, scram_hash):
    """`stored` (ControlNode.stored_password) is ejabberd's SCRAM record of
    `password`: its hash, 4 096 rounds, 16 bytes of salt, and the keys RFC
    5802 derives from them."""
    kind, stored_key, server_key, salt, hash_name, iterations = stored
    assert (kind, hash_name, iterations) == ("scram", scram_hash, "4096"), stored
    salt = base64.b64decode(salt)
    assert len(salt) == 16
    algorithm = HASHES[scram_hash][0]
    salted = hashlib.pbkdf2_hmac(algorithm, password.encode(), salt, 4096)
    client_key = hmac.new(salted, b"Client Key", algorithm).digest()
    assert base64.b64decode(stored_key) == hashlib.new(algorithm, client_key).digest()
    assert base64.b64decode(server_key) == hmac.new(salted, b"Server Key", algorithm).digest()


def register(http, name, password=PASSWORD):
    """Registers a visitor; the agent it was given."""
    status, _, body = http.register(name, password)
    return assigned_agent(status, body)


def free_slots():
    return get_status(HTTP_PORT)["free_slots"]


def test_a_visitors_record_is_the_one_ejabberd_makes(server, control, http, connect):
    connect(AGENT1)
    # ejabberd's own, for the same host: the check below would fail on it if
    # it derived anything differently.
    assert_scram_record(control.stored_password(BYSTANDER), BYSTANDER_PASSWORD, server.scram_hash)
    name = visitor_name("scram")
    assert register(http, name) == AGENT1
    assert_scram_record(control.stored_password(name), PASSWORD, server.scram_hash)
    # Each record has its own salt.
    assert control.stored_password(name)[3] != control.stored_password(BYSTANDER)[3]


def test_the_visitor_logs_in_with_scram_and_with_plain(server, control, http, connect):
    agent = connect(AGENT1)
    name = visitor_name("login")
    assert register(http, name) == AGENT1
    mechanism = HASHES[server.scram_hash][1]
    by_scram = connect(f"{name}@{CLIENT_HOST}/scram", PASSWORD, mechanism=mechanism)
    by_plain = connect(f"{name}@{CLIENT_HOST}/plain", PASSWORD, mechanism="PLAIN")
    assert (by_scram.mechanism, by_plain.mechanism) == (mechanism, "PLAIN")
    by_scram.send(AGENT1, "over scram")
    by_plain.send(AGENT1, "over plain")
    assert sorted(agent.receive()["body"] for _ in range(2)) == ["over plain", "over scram"]
    with pytest.raises(PermissionError):
        Client(f"{name}@{CLIENT_HOST}/wrong", "not-the-password", C2S_PORT, mechanism=mechanism)


def test_a_password_is_normalised_as_ejabberd_normalises_one(server, control, http, connect):
    connect(AGENT1)
    name = visitor_name("saslprep")
    # A soft hyphen is mapped to nothing (RFC 3454 B.1).
    assert register(http, name, "secret\u00ad-pass") == AGENT1
    assert_scram_record(control.stored_password(name), "secret-pass", server.scram_hash)
    visitor = connect(f"{name}@{CLIENT_HOST}", "secret-pass",
                      mechanism=HASHES[server.scram_hash][1])
    assert visitor.mechanism == HASHES[server.scram_hash][1]


def test_a_password_ejabberd_refuses_leaves_nothing_behind(server, control, http, connect):
    connect(AGENT1)
    wait_for(lambda: free_slots() == 2, 10, "agent1's two slots to be free")
    name = visitor_name("refused")
    # U+FFFE: resourceprep refuses it, as ejabberd would.
    assert_error(http.register(name, "bad\ufffe"), 400, "register", "invalid_password")
    assert name not in control.registered_users()
    assert control.stored_password(name) == ("none",)
    assert free_slots() == 2
