"""The line's wait estimate against reality (DESIGN.md: "tests check it
against actual waits"), and against Openfire Fastpath's estimate.

A driver runs a fixed workload (seeded RNG) through the line of a desk with
2 agents x max_sessions 2 and a line longer than it ever gets: visitors
arrive as a Poisson process that surges then calms (1.6/s for the first 60%,
then 0.7/s; about 1.1/s over the run, for a desk that ends about 1.14 chats a
second), each chat lasting a uniform 1-6 s. Each visitor registers, logs in,
waits for its `assigned` notice, writes to its agent, chats its duration
(stays logged in) and logs out. The driver records each visitor's estimate at
registration (the 202 body's estimated_wait; a 201 is an estimate of 0) and
its real wait (from the 202 answer to the `assigned` notice; 0 for a 201).

Reference: Fastpath's running average (Openfire's Fastpath queue shows
avg = (avg + wait) / 2, folded over each wait as it is observed, from 0);
the estimate a visitor would get is that average when it arrives. Both are
compared over the visitors that waited (a 202) and whose estimate was known
(before any chat ended there is none: those are left out of both, and
counted); a 201 costs neither anything. Median and 90th-percentile absolute
errors are printed and written to test/integration/.results/
line_estimate.json (quoted in the README); ours must beat Fastpath's on both.
A simulation of this workload (an ideal M/G/4 FIFO desk, the spec's
estimator) has ours better on both in about 9 seeds out of 10; in this seed's
simulation ours is 1.0 s / 2.1 s against Fastpath's 1.9 s / 4.5 s.

Its own server ("lineest", 127.0.0.1:15238 XMPP, :15297 HTTP). About 70 s."""

import json
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

from line_common import (agent_jid, error_stats, fastpath_estimates, parse_register,
                         post_register, visitor_jid)
from sandbox import CLIENT_HOST, HELPDESK_HOST, Sandbox, wait_for
from xmpp_client import Client

C2S_PORT, HTTP_PORT = 15238, 15297
MAX_SESSIONS = 2
AGENTS = ["agent1", "agent2"]
AGENT_PASSWORD = "agent-secret"
SEED = 2
VISITORS = 64
RATES = (1.6, 0.7)          # arrivals per second: the surge, then the calm
SURGE = 0.6                 # the surge's share of the visitors
CHAT = (1.0, 6.0)           # seconds, uniform
MAX_WAITING = 200           # never reached
RUN_DEADLINE = 170          # seconds for the whole workload
RESULTS = Path(__file__).resolve().parent / ".results" / "line_estimate.json"


def workload(seed=SEED):
    """[(arrival offset s, chat duration s)], arrival order."""
    rng = random.Random(seed)
    offset = 0.0
    visits = []
    for i in range(VISITORS):
        offset += rng.expovariate(RATES[0] if i < VISITORS * SURGE else RATES[1])
        visits.append((offset, rng.uniform(*CHAT)))
    return visits


@dataclass
class Visit:
    name: str
    arrival: float          # monotonic time the register answer came
    status: int
    estimate: object        # seconds, or None when the server gave none
    position: object
    wait: float             # seconds from the answer to the assignment
    assigned_at: float
    agent: str
    duration: float


@pytest.fixture(scope="module")
def estimate_server():
    sandbox = Sandbox("lineest", C2S_PORT, HTTP_PORT, {
        "max_sessions": MAX_SESSIONS, "max_waiting": MAX_WAITING, "visitor_ttl": 600,
        "max_registrations_per_minute": 0}, http_backlog=128)
    accounts = [(agent, HELPDESK_HOST, AGENT_PASSWORD) for agent in AGENTS]
    with sandbox.serving(accounts):
        yield sandbox


def visit(index, offset, duration, start):
    """One visitor of the workload, from its arrival to its logout."""
    name = f"est_{index:03d}"
    delay = start + offset - time.monotonic()
    if delay > 0:
        time.sleep(delay)           # the workload's schedule
    status, body, answered = post_register(HTTP_PORT, name, "pw")
    doc = parse_register(status, body)
    assert status in (201, 202), (status, body)
    client = Client(visitor_jid(name), "pw", C2S_PORT)
    try:
        if status == 201:
            agent, assigned_at, estimate, position = doc["to"], answered, 0, None
        else:
            notice = client.expect_notice("assigned", RUN_DEADLINE)
            agent, assigned_at = notice.agent, notice.at
            estimate, position = doc.get("estimated_wait"), doc["position"]
        client.send(agent, f"hello from {name}")
        time.sleep(duration)        # the chat, as long as the workload says
    finally:
        client.disconnect()
    wait = assigned_at - answered if status == 202 else 0.0
    return Visit(name, answered, status, estimate, position, wait, assigned_at, agent, duration)


def test_the_estimate_beats_fastpaths_running_average(estimate_server):
    agents = [Client(agent_jid(a), AGENT_PASSWORD, C2S_PORT) for a in AGENTS]
    try:
        plan = workload()
        start = time.monotonic() + 1
        with ThreadPoolExecutor(len(plan)) as pool:
            futures = [pool.submit(visit, i, offset, duration, start)
                       for i, (offset, duration) in enumerate(plan)]
            visits = [f.result(timeout=max(1, start + RUN_DEADLINE - time.monotonic()))
                      for f in futures]
        ran = time.monotonic() - start
        # Every visitor had its agent, and the agents got every hello.
        assert {v.agent for v in visits} <= {agent_jid(a) for a in AGENTS}
        got = sum(1 for client in agents for _ in iter_messages(client))
        assert got == len(visits)
        wait_for(lambda: not estimate_server.registered_users(CLIENT_HOST), 30,
                 "every visitor account to go")
    finally:
        for client in agents:
            client.disconnect()

    visits.sort(key=lambda v: v.arrival)
    waited = [v for v in visits if v.status == 202]
    assert waited, "the workload never filled the desk"
    # The estimate exists from the first chat's end on: the unknown ones are
    # the first 202s, never one after a known one.
    known_from = next((i for i, v in enumerate(waited) if v.estimate is not None), len(waited))
    assert all(v.estimate is not None for v in waited[known_from:]), \
        [(v.name, v.estimate) for v in waited]
    unknown = known_from
    # Positions and estimates are consistent: an estimate is whole seconds.
    assert all(isinstance(v.estimate, int) and v.estimate >= 0 for v in waited[known_from:])

    observations = [(v.assigned_at, v.wait) for v in visits]
    fastpath = dict(zip([v.name for v in visits],
                        fastpath_estimates([v.arrival for v in visits], observations)))
    compared = waited[known_from:]
    assert len(compared) >= 20, f"only {len(compared)} visitors waited with an estimate"
    ours = error_stats([(v.estimate, v.wait) for v in compared])
    theirs = error_stats([(fastpath[v.name], v.wait) for v in compared])
    everyone = [v for v in visits if v.status == 201 or v.estimate is not None]
    ours_all = error_stats([(v.estimate, v.wait) for v in everyone])
    theirs_all = error_stats([(0 if v.status == 201 else fastpath[v.name], v.wait)
                              for v in everyone])
    report = {
        "workload": {"seed": SEED, "visitors": VISITORS, "rates_per_s": RATES,
                     "surge_share": SURGE, "chat_s": CHAT, "agents": len(AGENTS),
                     "max_sessions": MAX_SESSIONS, "ran_s": round(ran, 1)},
        "answered_201": len(visits) - len(waited), "answered_202": len(waited),
        "unknown_estimate_excluded": unknown,
        "waited": {"ours": ours, "fastpath": theirs},
        "waited_and_201": {"ours": ours_all, "fastpath": theirs_all},
        "max_wait_s": max(v.wait for v in visits),
        "visits": [asdict(v) for v in visits],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=1, default=str))
    print(f"\n{len(visits)} visitors in {ran:.0f} s: {len(waited)} waited, {unknown} of them "
          f"before any estimate (excluded); longest wait {report['max_wait_s']:.1f} s")
    for label, stats in (("ours", ours), ("Fastpath", theirs)):
        print(f"  {label:9} |error| over {stats['count']} waits: median {stats['median']:.2f} s, "
              f"p90 {stats['p90']:.2f} s")
    print(f"  written to {RESULTS}")
    assert ours["median"] < theirs["median"], report["waited"]
    assert ours["p90"] < theirs["p90"], report["waited"]


def iter_messages(client):
    """The chat messages a client received and nobody took, without waiting
    (barrier first: everything the server routed to it is in)."""
    client.barrier()
    while client.pending_messages():
        message = client.receive(1)
        assert message["type"] == "chat" and message["body"].startswith("hello from"), message
        yield message
