"""Helpers of the waiting-line, routing and answer_timeout tests
(test_line*.py, test_routing.py): register answers parsed strictly,
`ejabberdctl clicktochat_status` / `clicktochat_line` parsed, GET
/clicktochat/status parsed, and the statistics of test_line_estimate.py.
Pure functions where possible; test_line_notices.py checks them without a
server."""

import http.client
import json
import math
import re
import time

import pytest

from sandbox import CLIENT_HOST, HELPDESK_HOST, wait_for
from xmpp_client import Client

XML_PROLOG = "<?xml version='1.0'?>"
NOTICE_NS = "urn:xmpp:clicktochat:0"
HTTP_TIMEOUT = 30  # seconds for any one request

_CREATED = re.compile(re.escape(XML_PROLOG) + r"<register><status>ok</status>"
                      r"<from>([^<]+)</from><to>([^<]+)</to></register>")
_WAITING = re.compile(re.escape(XML_PROLOG) + r"<register><status>waiting</status>"
                      r"<from>([^<]+)</from><position>(\d+)</position>"
                      r"(?:<estimated_wait>(\d+)</estimated_wait>)?</register>")
_ERROR = re.compile(re.escape(XML_PROLOG) + r"<register><status>error</status>"
                    r"<reason>([a-z_]+)</reason></register>")
_LINE_ENTRY = re.compile(r"(\d+) (\S+@\S+) waited (\d+)s estimated_wait=(?:\d+|unknown)")


def agent_jid(name):
    return f"{name}@{HELPDESK_HOST}"


def visitor_jid(name):
    return f"{name}@{CLIENT_HOST}"


def parse_register(status, body):
    """A register answer, XML or JSON, as a dict in one shape:
    201 {"status": "ok", "from", "to"}; 202 {"status": "waiting", "from",
    "position", and "estimated_wait" only when the server gave one};
    4xx/5xx {"status": "error", "reason"}. Anything else (an XML body that is
    not exactly one of the documented forms, a JSON body with other keys or
    types, a status that does not match the body) raises AssertionError."""
    if body.startswith("{"):
        doc = json.loads(body)
        expected = {201: {"status", "from", "to"},
                    202: {"status", "from", "position"}}.get(status, {"status", "reason"})
        keys = set(doc)
        if status == 202:
            assert keys in (expected, expected | {"estimated_wait"}), (status, body)
            assert type(doc["position"]) is int and doc["position"] >= 1, body
            if "estimated_wait" in doc:
                assert type(doc["estimated_wait"]) is int and doc["estimated_wait"] >= 0, body
        else:
            assert keys == expected, (status, body)
        assert doc["status"] == {201: "ok", 202: "waiting"}.get(status, "error"), (status, body)
        return doc
    if status == 201:
        match = _CREATED.fullmatch(body)
        assert match, (status, body)
        return {"status": "ok", "from": match.group(1), "to": match.group(2)}
    if status == 202:
        match = _WAITING.fullmatch(body)
        assert match, (status, body)
        doc = {"status": "waiting", "from": match.group(1), "position": int(match.group(2))}
        assert doc["position"] >= 1, body
        if match.group(3) is not None:
            doc["estimated_wait"] = int(match.group(3))
        return doc
    match = _ERROR.fullmatch(body)
    assert match and status >= 400, (status, body)
    return {"status": "error", "reason": match.group(1)}


def post_register(port, username, password="pw", json_body=False, timeout=HTTP_TIMEOUT):
    """One real POST /clicktochat/register on its own connection, with a
    timeout: (status, body, monotonic time the answer arrived)."""
    if json_body:
        body = json.dumps({"username": username, "password": password})
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
    else:
        body = (f"{XML_PROLOG}<registration><username>{username}</username>"
                f"<password>{password}</password></registration>")
        headers = {"Content-Type": "text/xml"}
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("POST", "/clicktochat/register", body, headers)
        response = connection.getresponse()
        text = response.read().decode()
        return response.status, text, time.monotonic()
    finally:
        connection.close()


def get_status(port, json_form=False, timeout=HTTP_TIMEOUT):
    """GET /clicktochat/status as a dict of ints: agents_available,
    free_slots, waiting and, only when the server gave it, estimated_wait.
    The XML must be exactly the documented document."""
    headers = {"Accept": "application/json"} if json_form else {}
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", "/clicktochat/status", headers=headers)
        response = connection.getresponse()
        text = response.read().decode()
    finally:
        connection.close()
    assert response.status == 200, text
    return parse_status(text)


_STATUS = re.compile(re.escape(XML_PROLOG) + r"<status><agents_available>(\d+)</agents_available>"
                     r"<free_slots>(\d+)</free_slots><waiting>(\d+)</waiting>"
                     r"(?:<estimated_wait>(\d+)</estimated_wait>)?</status>")


def parse_status(text):
    if text.startswith("{"):
        doc = json.loads(text)
        base = {"agents_available", "free_slots", "waiting"}
        assert set(doc) in (base, base | {"estimated_wait"}), text
        assert all(type(v) is int and v >= 0 for v in doc.values()), text
        return doc
    match = _STATUS.fullmatch(text)
    assert match, text
    doc = {"agents_available": int(match.group(1)), "free_slots": int(match.group(2)),
           "waiting": int(match.group(3))}
    if match.group(4) is not None:
        doc["estimated_wait"] = int(match.group(4))
    return doc


def parse_ctl_status(text):
    """`ejabberdctl clicktochat_status` as a dict ("name: value" lines)."""
    return dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)


def parse_loads(status):
    """{agent: load} from a parsed clicktochat_status ("loads: a=1 b=0")."""
    return {agent: int(n) for agent, n in
            (entry.split("=") for entry in status.get("loads", "").split())}


def parse_line(text):
    """`ejabberdctl clicktochat_line` as [(position, visitor jid, waited s)],
    head first; every non-empty line must be `P visitor@host waited Ns
    estimated_wait=S|unknown` and
    the positions must be 1, 2, 3... in order."""
    entries = []
    for line in text.splitlines():
        if not line.strip():
            continue
        match = _LINE_ENTRY.fullmatch(line.strip())
        assert match, f"not a clicktochat_line entry: {line!r}"
        entries.append((int(match.group(1)), match.group(2), int(match.group(3))))
    assert [p for p, _, _ in entries] == list(range(1, len(entries) + 1)), text
    return entries


class Desk:
    """What ejabberdctl says of one client host on a sandbox."""

    def __init__(self, server):
        self.server = server

    def status(self):
        return parse_ctl_status(self.server.ctl("clicktochat_status", CLIENT_HOST))

    def loads(self):
        return parse_loads(self.status())

    def line(self):
        """The waiting visitors' JIDs, head first."""
        return [jid for _, jid, _ in parse_line(self.server.ctl("clicktochat_line", CLIENT_HOST))]

    def loads_are(self, expected):
        """Every agent's load is as in `expected` ({agent jid: n}) now; agents
        not named must be at 0 or not listed."""
        loads = self.loads()
        return all(loads.get(a, 0) == expected.get(a, 0) for a in set(loads) | set(expected))

    def wait_loads(self, expected, timeout=30):
        """Waits until loads_are(expected)."""
        wait_for(lambda: self.loads_are(expected), timeout, f"loads {expected}", interval=0.3)

    def wait_idle(self, timeout=30):
        """No load anywhere and nobody waiting."""
        def idle():
            status = self.status()
            return (all(n == 0 for n in parse_loads(status).values())
                    and status.get("waiting", "0") == "0")
        wait_for(idle, timeout, "no load and an empty line", interval=0.3)


# --- checks of what clients received ------------------------------------------

def check_notice(notice, kind, **attrs):
    """A notice as the spec has it: a headline from the client host's domain
    with a readable body, of `kind`, with exactly `attrs` (as strings)."""
    assert notice.kind == kind, notice
    assert notice.type == "headline", notice
    assert notice.sender == CLIENT_HOST, notice
    assert notice.body.strip(), notice
    assert notice.attrs == {k: str(v) for k, v in attrs.items()}, notice
    return notice


def check_waiting(notice, position, bounds=None):
    """A waiting notice for `position`: without estimated_wait when bounds is
    None (no chat has ended), else with one within bounds."""
    assert notice.kind == "waiting" and notice.position == position, notice
    assert str(position) in notice.body, notice
    if bounds is None:
        return check_notice(notice, "waiting", position=position)
    estimate = notice.estimated_wait
    assert estimate is not None and bounds[0] <= estimate <= bounds[1], (notice, bounds)
    return check_notice(notice, "waiting", position=position, estimated_wait=estimate)


def check_assigned(notice, agent):
    check_notice(notice, "assigned", agent=agent)
    assert agent in notice.body, notice


def check_visitor(notice, jid, reason):
    check_notice(notice, "visitor", jid=jid, reason=reason)
    assert jid in notice.body, notice


def chat(visitor, vjid, agent, ajid, text):
    """One message each way between a visitor and its agent."""
    visitor.send(ajid, f"{text} (visitor)")
    got = agent.receive()
    assert (got["type"], got["body"], str(got["from"].bare)) == ("chat", f"{text} (visitor)", vjid)
    agent.send(vjid, f"{text} (agent)")
    got = visitor.receive()
    assert (got["type"], got["body"], str(got["from"].bare)) == ("chat", f"{text} (agent)", ajid)


def refused(sender, to, receiver):
    """sender's message to `to` is refused with an error and never reaches
    receiver."""
    sender.send(to, "may I?")
    answer = sender.receive()
    assert answer["type"] == "error", answer
    receiver.barrier()
    assert receiver.pending_messages() == 0


def no_more_notices(*clients):
    for client in clients:
        client.barrier()
        assert client.pending_notices() == 0, client.notice_history()



def estimate_bounds(position, durations, slots):
    """The range the spec's estimate can take for `position` when each chat
    that ended lasted between lo and hi seconds (durations: [(lo, hi)]):
    estimate = ceil(P * mean / S) seconds, mean in [mean lo, mean hi]."""
    lo = sum(d[0] for d in durations) / len(durations)
    hi = sum(d[1] for d in durations) / len(durations)
    return (max(0, math.floor(position * lo / slots)), math.ceil(position * hi / slots))


def non_increasing(values):
    return all(a >= b for a, b in zip(values, values[1:]))


def fastpath_estimates(arrivals, observations):
    """Openfire Fastpath's queue estimate, the reference of
    test_line_estimate.py: a running average avg = (avg + wait) / 2 folded
    over every wait observed (in the order they were observed), starting
    from 0; a visitor arriving at time t is shown the avg of the waits
    observed at or before t. arrivals: [t]; observations: [(time the wait
    became known, wait)]. Returns one estimate per arrival."""
    ordered = sorted(observations)
    estimates = []
    for arrival in arrivals:
        avg = 0.0
        for observed, wait in ordered:
            if observed > arrival:
                break
            avg = (avg + wait) / 2
        estimates.append(avg)
    return estimates


def percentile(values, fraction):
    """The nearest-rank percentile (fraction in (0, 1]) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def median(values):
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def error_stats(pairs):
    """{"count", "median", "p90"} of |estimate - actual| over (estimate,
    actual) pairs."""
    errors = [abs(e - a) for e, a in pairs]
    return {"count": len(errors), "median": median(errors), "p90": percentile(errors, 0.9)}


def client_fixtures(c2s_port, default_password):
    """A test module's `opened` (the clients a test opened, disconnected after
    it) and `login` (login(jid, password=default_password) -> a logged-in
    Client on c2s_port) fixtures: `opened, login = client_fixtures(...)`."""
    @pytest.fixture
    def opened():
        clients = []
        yield clients
        for client in clients:
            client.disconnect()

    @pytest.fixture
    def login(opened):
        def login(jid, password=default_password, **kwargs):
            client = Client(jid, password, c2s_port, **kwargs)
            opened.append(client)
            return client
        return login

    return opened, login


def leave_clean(server, opened, visitor_ttl):
    """After a test: its clients gone, then no session, no visitor account,
    no load and nobody waiting left on `server`."""
    for client in opened:
        client.disconnect()
    wait_for(lambda: not server.connected_users(), 30, "every session to close", interval=0.2)
    wait_for(lambda: not server.registered_users(CLIENT_HOST), visitor_ttl + 30,
             "every visitor account to be removed", interval=0.5)
    Desk(server).wait_idle()
