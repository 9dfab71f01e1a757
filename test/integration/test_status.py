"""GET /clicktochat/status: what a public page shows before the click
(DESIGN.md): agents taking visitors, their free slots, the waiting line's
length (no line on this server: always 0) and a newcomer's estimated wait
(0 with a free slot; left out with no agent taking visitors), no names; XML
or JSON; readable from any origin, never cached. On the shared server
(max_sessions 2). The estimate's own figures: test_line*.py."""

import json
import re

from conftest import CLIENT_HOST, MAX_SESSIONS, agent_jid, connect_agents, visitor_name
from sandbox import wait_for
from test_foundation import XML_PROLOG, assert_error, register_agent


def status_xml(agents, free, waiting=0):
    """What the body must be. With agents but no free slot the estimate
    depends on the chats this shared server has seen end: any whole number
    of seconds, or left out if none has."""
    head = (f"{XML_PROLOG}<status><agents_available>{agents}</agents_available>"
            f"<free_slots>{free}</free_slots><waiting>{waiting}</waiting>")
    if agents == 0:
        return head + "</status>"
    if free > 0:
        return head + "<estimated_wait>0</estimated_wait></status>"
    return re.compile(re.escape(head) + r"(<estimated_wait>[1-9][0-9]*</estimated_wait>)?"
                      + re.escape("</status>"))


class Body(str):
    """A status body that compares equal to what status_xml says it must be."""

    def __eq__(self, expected):
        if isinstance(expected, re.Pattern):
            return expected.fullmatch(self) is not None
        return str.__eq__(self, expected)

    __hash__ = str.__hash__


def status(http, **headers):
    code, response_headers, body = http.request("GET", "/clicktochat/status", headers=headers)
    return code, response_headers, Body(body)


def test_status_follows_agents_and_chats(server, http, connect):
    assert status(http)[2] == status_xml(0, 0)
    agent1, agent2 = connect_agents(connect, ["agent1", "agent2"])
    assert status(http)[2] == status_xml(2, 2 * MAX_SESSIONS)
    name = visitor_name()
    assert register_agent(http, name) == agent_jid("agent1")
    assert status(http)[2] == status_xml(2, 2 * MAX_SESSIONS - 1)
    # Away: not taking visitors, its free slots do not count.
    agent2.set_show("away")
    assert status(http)[2] == status_xml(1, MAX_SESSIONS - 1)
    # The visitor's chat ends: its slot is free again.
    visitor = connect(f"{name}@{CLIENT_HOST}", "visitor-secret")
    visitor.disconnect()
    wait_for(lambda: status(http)[2] == status_xml(1, MAX_SESSIONS), 30,
             "the visitor's slot to be counted free")
    # A full agent is still an agent taking visitors, with no free slot.
    register_agent(http)
    register_agent(http)
    assert status(http)[2] == status_xml(1, 0)
    agent1.disconnect()
    wait_for(lambda: status(http)[2] == status_xml(0, 0), 30, "agent1 to be gone")


def test_status_is_public_json_and_never_cached(server, http, connect):
    connect_agents(connect, ["agent3"])
    code, headers, body = status(http, Accept="application/json")
    assert code == 200 and headers["Content-Type"].startswith("application/json")
    assert json.loads(body) == {"agents_available": 1, "free_slots": MAX_SESSIONS,
                                "waiting": 0, "estimated_wait": 0}
    assert "agent3" not in body
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert headers["Cache-Control"] == "no-store"
    assert http.request("HEAD", "/clicktochat/status")[0] == 200


def test_status_refuses_other_methods_and_parameters(server, http):
    code, headers, _ = http.request("POST", "/clicktochat/status", "x")
    assert code == 405 and headers["Allow"] == "GET, HEAD"
    assert_error(http.request("GET", "/clicktochat/status?agent=agent1"), 400, "status",
                 "unexpected_parameters")
