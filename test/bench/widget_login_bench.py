"""What a widget visitor costs the server, with the widget's SCRAM login
against PLAIN, in one run: two servers with Debian's stock configuration
(SCRAM records) side by side, the second with the SCRAM mechanisms disabled
(`disable_sasl_mechanisms`), so that the same widget logs in there with PLAIN,
as it did before it had SCRAM, and ejabberd checks the password by redoing the
record's PBKDF2.

Rounds alternate A B B A...; in each, VISITORS visitors one after another in
headless chromium (test/browser_client.py): open the demo page, click, wait
for "You are chatting with agent1", close, wait for the account to be gone.
Per visitor: the server's CPU over its whole visit (/proc/<beam>/stat: the
page's files, the registration, the login, the chat's set-up, the close, the
account's removal; everything but the login is the same on both sides) and
the time from the click to the chat, in the browser (which includes the
browser's PBKDF2 with SCRAM). Every login's mechanism is checked in
ejabberd's log.

    /usr/bin/python3 test/bench/widget_login_bench.py [visitors a round] [rounds]

writes _build/bench/widget_login.json. Ports 15243/15312 and 15244/15313.
Needs the widget built and test/browser's npm packages (`make all npm-deps`).
"""

import statistics
import sys
import time
from contextlib import ExitStack

from benchlib import OUT, BenchSandbox, cpu_seconds, write_json
from browser_client import Browser  # noqa: E402 (benchlib puts test/ on the path)
from sandbox import HELPDESK_HOST, wait_for  # noqa: E402
from xmpp_client import Client  # noqa: E402

VISITORS = int(sys.argv[1]) if len(sys.argv) > 1 else 12
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 4
AGENT, AGENT_PASSWORD = f"agent1@{HELPDESK_HOST}", "agent-secret"
MODULE_OPTIONS = {"max_sessions": 100, "visitor_ttl": 600, "max_registrations_per_minute": 0}
SIDES = {
    "scram": ((15243, 15312), {}, "SCRAM-SHA-1"),
    "plain": ((15244, 15313), {"disable_sasl_mechanisms": ["SCRAM-SHA-1", "SCRAM-SHA-1-PLUS"]},
              "PLAIN"),
}
LAUNCHER = "[data-clicktochat] .launcher"
STATUS = "[data-clicktochat] .status"
CLOSE = "[data-clicktochat] .close"


def visit(browser, server, control):
    """One visitor, start to end: seconds from the click to the chat."""
    service = f"http://127.0.0.1:{server.http_port}/clicktochat"
    browser.call("open", url=f"{service}/demo")
    clicked = time.monotonic()
    browser.call("click", selector=LAUNCHER)
    browser.wait_text(STATUS, "You are chatting with agent1")
    chatting = time.monotonic() - clicked
    visitor = browser.stored_chat(f"clicktochat:{service}")["jid"].split("@")[0]
    browser.call("click", selector=CLOSE)
    wait_for(lambda: visitor not in control.registered_users(), 30,
             f"{visitor}'s account to be removed", interval=0.05)
    return chatting


def one_round(browser, side, server, control):
    pid = server.pid()
    cpu = cpu_seconds(pid)
    waits = [visit(browser, server, control) for _ in range(VISITORS)]
    return {"side": side, "visitors": VISITORS,
            "server_cpu_ms_a_visitor": (cpu_seconds(pid) - cpu) / VISITORS * 1000,
            "click_to_chat_ms": [w * 1000 for w in waits]}


def main():
    servers, controls = {}, {}
    with ExitStack() as stack:
        browser = Browser(OUT / "widget-login-browser.log")
        stack.callback(browser.close)
        for side, ((c2s, http), global_options, _) in SIDES.items():
            server = BenchSandbox(f"bench_widget_{side}", c2s, http, MODULE_OPTIONS,
                                  stock_config=True, global_options=global_options)
            servers[side] = stack.enter_context(
                server.serving([("agent1", HELPDESK_HOST, AGENT_PASSWORD)]))
            agent = Client(AGENT, AGENT_PASSWORD, c2s, starttls=True)
            stack.callback(agent.disconnect)
            controls[side] = server.control()
            stack.callback(controls[side].close)
        # A visitor each first: chromium, the pages and the code paths warm.
        for side in SIDES:
            visit(browser, servers[side], controls[side])
        order = [side for r in range(ROUNDS)
                 for side in (("scram", "plain") if r % 2 == 0 else ("plain", "scram"))]
        runs = [one_round(browser, side, servers[side], controls[side]) for side in order]
        used = {side: servers[side].sasl_logins() for side in SIDES}
    for side, (_, _, mechanism) in SIDES.items():
        if set(used[side]) != {mechanism}:
            raise SystemExit(f"{side}: the widget logged in with {used[side]}, not {mechanism}")

    summary = {}
    for side in SIDES:
        mine = [r for r in runs if r["side"] == side]
        summary[side] = {
            "server_cpu_ms_a_visitor": statistics.median(
                r["server_cpu_ms_a_visitor"] for r in mine),
            "click_to_chat_ms": statistics.median(
                w for r in mine for w in r["click_to_chat_ms"]),
            "logins": used[side],
        }
    scram, plain = (summary[side]["server_cpu_ms_a_visitor"] for side in ("scram", "plain"))
    ratio = scram / plain
    print(f"{VISITORS} widget visitors a round, {ROUNDS} rounds a side (A B B A), "
          "Debian's stock configuration, chromium headless")
    print(f"{'':8} {'server CPU a visitor':>22} {'click to chat':>15}  rounds")
    for side in SIDES:
        s = summary[side]
        rounds = " ".join(f"{r['server_cpu_ms_a_visitor']:.1f}" for r in runs if r["side"] == side)
        print(f"{side:8} {s['server_cpu_ms_a_visitor']:19.1f} ms {s['click_to_chat_ms']:12.0f} ms"
              f"  {rounds}")
    print(f"SCRAM / PLAIN, server CPU a visitor: {ratio:.2f}x "
          f"({plain - scram:.1f} ms less a visitor)")
    write_json("widget_login", {"visitors_a_round": VISITORS, "rounds": ROUNDS,
                                "runs": runs, "summary": summary,
                                "scram_over_plain_server_cpu": ratio})


if __name__ == "__main__":
    main()
