"""A burst of registrations against a real ejabberd 23.01 with clicktochat:
1000 concurrent HTTP POSTs while K agents are online. Exactly K x max_sessions
visitors get an agent, every agent exactly max_sessions of them, every other
request a 503, and nothing else; checked again from the agents' side (each
visitor logs in and writes to the agent its 201 named), and no account is
left once the visitors have gone.

Its own server ("load", 127.0.0.1:15231 XMPP, :15290 HTTP)."""

import http.client
import re
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor

import pytest

from sandbox import HELPDESK_HOST, Sandbox, wait_for
from xmpp_client import Client

C2S_PORT, HTTP_PORT = 15231, 15290
MAX_SESSIONS = 3
AGENTS = [f"agent{i}" for i in range(1, 6)]  # K = 5
AGENT_PASSWORD = "agent-secret"
REGISTRATIONS = 1000
WORKERS = 64
BURST_DEADLINE = 90     # seconds for the whole burst
LOGIN_WORKERS = 5       # visitors logging in at once
XML_PROLOG = "<?xml version='1.0'?>"
NO_AGENT = (f"{XML_PROLOG}<register><status>error</status>"
            "<reason>no_agent_available</reason></register>")
CREATED = re.compile(re.escape(XML_PROLOG) + r"<register><status>ok</status>"
                     r"<from>([^<]+)</from><to>([^<]+)</to></register>")


@pytest.fixture(scope="module")
def load_server():
    # A listener that takes bursts needs a larger backlog than ejabberd's
    # default 5: with it, 64 simultaneous connections get resets (SYN cookies).
    sandbox = Sandbox("load", C2S_PORT, HTTP_PORT, {
        "max_sessions": MAX_SESSIONS, "visitor_ttl": 600, "max_registrations_per_minute": 0},
        http_backlog=256)
    with sandbox.serving_with_control([(agent, HELPDESK_HOST, AGENT_PASSWORD)
                                       for agent in AGENTS]) as served:
        yield served


def register(i):
    """One real HTTP POST on its own connection: (status, body)."""
    body = (f"{XML_PROLOG}<registration><username>load_{i:04d}</username>"
            f"<password>pw{i}</password></registration>")
    connection = http.client.HTTPConnection("127.0.0.1", HTTP_PORT, timeout=60)
    try:
        connection.request("POST", "/clicktochat/register", body,
                           {"Content-Type": "text/xml"})
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def burst(count, first=0):
    started = time.monotonic()
    with ThreadPoolExecutor(WORKERS) as pool:
        futures = [pool.submit(register, first + i) for i in range(count)]
        results = [future.result(timeout=max(1, started + BURST_DEADLINE - time.monotonic()))
                   for future in futures]
    return results, time.monotonic() - started


def test_a_burst_of_registrations_fills_every_slot_exactly_once(load_server):
    server, control = load_server
    agents = [Client(f"{name}@{HELPDESK_HOST}", AGENT_PASSWORD, C2S_PORT) for name in AGENTS]
    visitors = []
    try:
        results, elapsed = burst(REGISTRATIONS)
        print(f"{REGISTRATIONS} registrations, {WORKERS} at a time, in {elapsed:.1f} s")

        statuses = Counter(status for status, _ in results)
        capacity = len(AGENTS) * MAX_SESSIONS
        assert statuses == {201: capacity, 503: REGISTRATIONS - capacity}, statuses
        assert all(body == NO_AGENT for status, body in results if status == 503)
        created = [CREATED.fullmatch(body).groups() for status, body in results if status == 201]
        by_agent = defaultdict(set)
        for visitor, agent in created:
            by_agent[agent].add(visitor)
        assert Counter(agent for _, agent in created) == {
            f"{name}@{HELPDESK_HOST}": MAX_SESSIONS for name in AGENTS}
        # Exactly the visitors named, no half-made account of a refused one.
        assert control.registered_users() == {v.split("@")[0] for v, _ in created}

        # From the agents' side: each visitor logs in and writes to its agent.
        def visit(pair):
            visitor_jid, agent_jid = pair
            number = int(visitor_jid.split("@")[0].split("_")[1])
            client = Client(visitor_jid, f"pw{number}", C2S_PORT)
            visitors.append(client)
            client.send(agent_jid, f"hello from {visitor_jid}")
        with ThreadPoolExecutor(LOGIN_WORKERS) as pool:
            list(pool.map(visit, created))
        for name, agent in zip(AGENTS, agents):
            jid = f"{name}@{HELPDESK_HOST}"
            senders = []
            for _ in range(MAX_SESSIONS):
                message = agent.receive()
                assert message["type"] != "error", message
                sender = str(message["from"].bare)
                assert message["body"] == f"hello from {sender}"
                senders.append(sender)
            agent.barrier()
            assert agent.pending_messages() == 0, f"{jid} got more than its visitors' messages"
            assert sorted(senders) == sorted(by_agent[jid]), jid

        # They leave: every account goes, none is orphaned.
        for client in visitors:
            client.disconnect()
        visitors = []
        wait_for(lambda: not control.registered_users(), 30,
                 "every visitor account to be removed after logout", interval=0.2)
        # And every slot came back: the agents take a full round again.
        results, _ = burst(capacity + 1, first=REGISTRATIONS)
        assert Counter(status for status, _ in results) == {201: capacity, 503: 1}
    finally:
        for client in visitors + agents:
            client.disconnect()
