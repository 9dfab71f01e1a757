"""Registration against the number of live visitors (registered, not logged
in), and what a live visitor costs in memory.

Two servers, the same configuration, side by side: the *filled* one, which
wrk fills with registrations of ours to about 0, 10 000, 50 000 and 100 000
live visitors, and the *reference*, a fresh server at each level (its
tables grow from none while it is measured, as the filled server's grow
from the level). Each level waits until both are idle; then wrk runs of
POST /clicktochat/register alternate between them (filled, reference,
reference, filled, filled, reference: a drift of the machine in time weighs
on both alike), each with the server's CPU per registration. Flatness is
the filled server against the reference in the same level, round by round
(the median of the rounds' ratios):
everything that grows with live visitors, their accounts in ejabberd's
tables and their rows in ours, is in the filled server alone. At the first
level both are near none, which checks the method: its ratio should be
about 1. (A first version compared the filled server with itself at the
first level: the machine's drift from one level to the next, ±30 % in
3-second runs here, weighed on every level's figure. A second kept one
reference near none by expiring its visitors after 30 s: the filled server
looked 15-25 % dearer at every level but the first, where both grew, while
against a reference that was never emptied it cost the same at 114 000 -
129 000 visitors as the reference at 2 000 - 7 000, twice: registering into
the room expired visitors left is cheaper than growing, at any count.)

The whole bench runs with auth_password_format: plain for the client host
(host_config; the agents' host keeps SCRAM): 100 000 SCRAM registrations
would take about half an hour of PBKDF2 on 2 cores. Debian's stock
configuration otherwise (test/sandbox.py). Two agents online on each
server, max_sessions 100000 each, visitor_ttl 2 h (no visitor expires during
the bench), no rate limit, max_visitors 10^6. Ours
step by step (register_steps.erl, one process) on the filled server at
each level: which step, if any, grows.

Memory: around the last fill (the level before the last to the last; only
visitors are added by it), the filled node's erlang:memory() after a full GC
of every process, every ETS table's memory (ets:info/2), and the beam's RSS
(what the NIF allocates with Rust's allocator shows there only). Per
visitor = growth / visitors added.

    /usr/bin/python3 test/bench/visitors_bench.py [seconds per run] [levels...]

With VISITORS_BENCH_MEASURE=theirs, the runs at each level register through
ejabberd's own mod_http_api `register` instead (the fills are still ours):
ejabberd's share of what grows. Those accounts are no visitors and do not
expire: both servers gather the same number of them.

writes _build/bench/visitors.json. Ports 15305-15306 (filled) and
15314-15315 (reference).
"""

import os
import sys
import time

from benchlib import (SIDES, BenchSandbox, Control, allow_api_register, cpu_seconds, measured_wrk,
                      load_register_steps, median, node_ets, plain_for_client_host,
                      register_and_connect_agents, rss_bytes, run_wrk, write_json)
from sandbox import CLIENT_HOST

SECONDS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
LEVELS = [int(a) for a in sys.argv[2:]] or [0, 10000, 50000, 100000]
ROUNDS = 3
STEPS = 300           # registrations timed step by step at each level
THREADS, CONNECTIONS = 2, 16
FILL_LIMIT_S = 600     # the whole fill, whatever the machine
# Before a level's runs, both servers settle: under this share of a core
# over a window (an idle node's own ticks stay well below it).
IDLE_CORES, IDLE_WINDOW_S = 0.1, 0.5
PATH, TEMPLATE = SIDES["ours"]
MEASURED = os.environ.get("VISITORS_BENCH_MEASURE", "ours")
MEASURED_PATH, MEASURED_TEMPLATE = SIDES[MEASURED]

MODULE_OPTIONS = {"max_sessions": 100000, "visitor_ttl": 7200,
                  "max_registrations_per_minute": 0, "max_visitors": 1000000}
SERVERS = ("filled", "reference")


def visitors(control):
    return int(control.eval("rpc:call(Node, mnesia, table_info, [clicktochat_visitor, size])"))


def run(server, control, name):
    before = visitors(control)
    return {"visitors_before": before,
            **measured_wrk(server, MEASURED_PATH, name, MEASURED_TEMPLATE,
                           THREADS, CONNECTIONS, SECONDS)}


def measure(servers, controls, level):
    runs = []
    for round_ in range(ROUNDS):
        order = SERVERS if round_ % 2 == 0 else SERVERS[::-1]
        for side in order:
            r = run(servers[side], controls[side], f"l{level}r{round_}{side[0]}")
            r.update(side=side, round=round_)
            runs.append(r)
            print(f"  {r['visitors_before']:7} visitors  {side:9} {r['throughput_per_s']:7.0f}/s"
                  f"  p99 {r['latency_us']['p99']/1000:6.1f} ms"
                  f"  server {r['server_cpu_us_per_op']:6.0f} us/op"
                  f" ({r['server_cores_busy']:.2f} cores)"
                  f"  wrk {r['driver_cores_busy']:.2f} cores"
                  f"  errors {sum(r['errors'].values())}", flush=True)
    # Ours step by step, one process (register_steps.erl): which step grows.
    steps = controls["filled"].eval(f"""rpc:call(Node, register_steps, steps_only,
                                      [<<"{CLIENT_HOST}">>, {STEPS}, <<"s{level}_">>], 120000)""")
    print("  steps (us, one process): " + ", ".join(
        f"{k[2:]} {v:.0f}" for k, v in sorted(steps["steps_wall_us"].items())), flush=True)

    def side_figures(side):
        mine = [r for r in runs if r["side"] == side]
        return {"visitors_at_start": mine[0]["visitors_before"],
                "throughput_per_s": median([r["throughput_per_s"] for r in mine]),
                "p99_us": median([r["latency_us"]["p99"] for r in mine]),
                "p50_us": median([r["latency_us"]["p50"] for r in mine]),
                "server_cpu_us_per_op": median([r["server_cpu_us_per_op"] for r in mine]),
                "driver_cores_busy": median([r["driver_cores_busy"] for r in mine])}

    def ratio(field):
        by_round = {}
        for r in runs:
            by_round.setdefault(r["round"], {})[r["side"]] = field(r)
        return median([pair["filled"] / pair["reference"] for pair in by_round.values()])

    filled = side_figures("filled")
    return {"level": level, "visitors_at_start": filled["visitors_at_start"],
            "visitors_at_end": visitors(controls["filled"]), "runs": runs,
            "ours_steps": steps, "filled": filled, "reference": side_figures("reference"),
            "filled_vs_reference": {
                "throughput": ratio(lambda r: r["throughput_per_s"]),
                "p99": ratio(lambda r: r["latency_us"]["p99"]),
                "server_cpu_per_op": ratio(lambda r: r["server_cpu_us_per_op"])}}


def wait_until_idle(servers, deadline_s):
    """Until every server's CPU over IDLE_WINDOW_S is under IDLE_CORES: what a
    fill, or a fresh server's start, left the node to do in the background
    (Mnesia's log dumps, dets) is done before the runs, not charged to the
    first of them. (Without it the first run after a fill was the level's
    slowest, p99 up to 7x the others'.)"""
    deadline = time.monotonic() + deadline_s
    while True:
        before = {side: cpu_seconds(server.pid()) for side, server in servers.items()}
        time.sleep(IDLE_WINDOW_S)
        busy = {side: (cpu_seconds(server.pid()) - before[side]) / IDLE_WINDOW_S
                for side, server in servers.items()}
        if all(cores < IDLE_CORES for cores in busy.values()):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"servers still busy after {deadline_s} s: {busy}")


def fill(server, control, target, deadline):
    """Registrations of ours (wrk, bounded by time) until `target` visitors."""
    started, chunk = time.monotonic(), 0
    first = count = visitors(control)
    while count < target:
        if time.monotonic() > deadline:
            raise TimeoutError(f"fill: {count} visitors of {target} when time ran out")
        rate = 500 if chunk == 0 else max(100, (count - first) / (time.monotonic() - started))
        # The first chunk short: its rate sizes the rest (no overshoot that
        # would leave the last fill, which the memory figure divides by, small).
        seconds = int(max(1, min(30 if chunk else 5, (target - count) / rate)))
        run_wrk(server.url(PATH), f"fill{target}c{chunk}", TEMPLATE, "application/json",
                THREADS, CONNECTIONS, seconds)
        chunk += 1
        count = visitors(control)
    took = time.monotonic() - started
    print(f"  filled to {count} visitors in {took:.0f} s", flush=True)
    return {"target": target, "visitors": count, "seconds": took}


def snapshot(server, control):
    return {"visitors": visitors(control),
            "accounts": int(control.eval(
                f'rpc:call(Node, ejabberd_auth, count_users, [<<"{CLIENT_HOST}">>])')),
            "memory": control.gc_memory(), "ets": node_ets(control),
            "rss": rss_bytes(server.pid()),
            "spool_files": {f.name: f.stat().st_size for f in server.spool.iterdir()
                            if f.is_file()},
            "processes": int(control.eval("rpc:call(Node, erlang, system_info, "
                                          "[process_count])")),
            "process_memory": process_memory(control)}


def process_memory(control):
    """{process name (registered name, else initial call): bytes} for
    every process of the node, after the GC of gc_memory()."""
    rows = control.eval("""
        rpc:call(Node, erlang, apply, [fun() ->
            [{case erlang:process_info(P, registered_name) of
                  {registered_name, N} -> atom_to_binary(N);
                  _ -> case proc_lib:initial_call(P) of
                           {M, F, A} -> iolist_to_binary(io_lib:format("~s:~s/~p", [M, F, A]));
                           _ -> case erlang:process_info(P, initial_call) of
                                    {initial_call, {M, F, A}} ->
                                        iolist_to_binary(io_lib:format("~s:~s/~p", [M, F, A]));
                                    _ -> <<"?">>
                                end
                       end
              end, M2}
             || P <- erlang:processes(),
                {memory, M2} <- [erlang:process_info(P, memory)]]
        end, []])""")
    total = {}
    for name, size in rows:
        total[name] = total.get(name, 0) + size
    return total


def memory_per_visitor(before, after):
    added = after["visitors"] - before["visitors"]
    accounts = after["accounts"] - before["accounts"]
    per = lambda b: b / added  # noqa: E731
    categories = {k: per(after["memory"][k] - before["memory"][k])
                  for k in after["memory"]}
    tables = {}
    for name, a in after["ets"].items():
        b = before["ets"].get(name, {"bytes": 0, "size": 0})
        if abs(a["bytes"] - b["bytes"]) >= 64 * 1024:
            tables[name] = {"bytes_per_visitor": per(a["bytes"] - b["bytes"]),
                            "rows_added": a["size"] - b["size"]}
    grown = {}
    for name, size in after["process_memory"].items():
        delta = size - before["process_memory"].get(name, 0)
        if abs(delta) >= 16 * 1024:
            grown[name] = delta / added
    disk = {}
    for name, size in after["spool_files"].items():
        delta = size - before["spool_files"].get(name, 0)
        if abs(delta) >= 64 * 1024:
            disk[name] = delta / added
    ets_total = categories["ets"]
    other_system = (categories["system"] - ets_total - categories["atom"]
                    - categories["binary"] - categories["code"])
    return {"visitors_added": added, "accounts_added": accounts,
            "total_bytes_per_visitor": categories["total"],
            "rss_bytes_per_visitor": per(after["rss"] - before["rss"]),
            "erlang_memory_bytes_per_visitor": categories,
            "ets_tables_bytes_per_visitor": dict(sorted(
                tables.items(), key=lambda kv: -kv[1]["bytes_per_visitor"])),
            "system_outside_ets_binary_code_atom_bytes_per_visitor": other_system,
            "processes_added": after["processes"] - before["processes"],
            "spool_files_bytes_per_visitor": dict(sorted(disk.items(), key=lambda kv: -kv[1])),
            "processes_bytes_per_visitor": dict(sorted(grown.items(), key=lambda kv: -kv[1])),
            "goal_bytes": 1024, "met": categories["total"] <= 1024}


def edit(config):
    plain_for_client_host(config)
    allow_api_register(config)


def fresh_reference():
    return BenchSandbox("bench_visitors_ref", 15314, 15315, MODULE_OPTIONS,
                        stock_config=True, edit=edit)


def warm(server):
    """A first short run: the node's code paths and caches warm, as before
    any measurement."""
    run_wrk(server.url(MEASURED_PATH), "warm", MEASURED_TEMPLATE, "application/json",
            THREADS, CONNECTIONS, 1)


def measure_against_fresh_reference(filled, filled_control, level):
    """The level's runs, the filled server against a reference started for
    them (and removed after)."""
    reference = fresh_reference()
    with reference.serving():
        agents = register_and_connect_agents(reference, 2)
        control = Control(reference)
        try:
            warm(reference)
            servers = {"filled": filled, "reference": reference}
            wait_until_idle(servers, 120)
            return measure(servers, {"filled": filled_control, "reference": control}, level)
        finally:
            control.close()
            for agent in agents:
                agent.disconnect()


def main():
    filled = BenchSandbox("bench_visitors", 15305, 15306, MODULE_OPTIONS,
                          stock_config=True, edit=edit)
    print(f"register vs live visitors {LEVELS}, plain passwords for {CLIENT_HOST}: "
          f"wrk -t{THREADS} -c{CONNECTIONS} -d{SECONDS}s, {ROUNDS} rounds per level, "
          f"filled server against a fresh reference at each level", flush=True)
    levels, fills, snapshots = [], [], {}
    deadline = time.monotonic() + FILL_LIMIT_S
    with filled.serving():
        agents = register_and_connect_agents(filled, 2)
        control = Control(filled)
        try:
            load_register_steps(control)
            warm(filled)
            for i, level in enumerate(LEVELS):
                last = i == len(LEVELS) - 1 and i > 0
                if last:
                    snapshots["before"] = snapshot(filled, control)
                fills.append(fill(filled, control, level, deadline))
                if last:
                    snapshots["after"] = snapshot(filled, control)
                levels.append(measure_against_fresh_reference(filled, control, level))
        finally:
            control.close()
            for agent in agents:
                agent.disconnect()
    worst = max(abs(level["filled_vs_reference"][k] - 1)
                for level in levels for k in ("throughput", "p99"))
    memory = (memory_per_visitor(snapshots["before"], snapshots["after"])
              if snapshots and snapshots["after"]["visitors"] > snapshots["before"]["visitors"]
              else None)
    for level in levels:
        v = level["filled_vs_reference"]
        print(f"  {level['visitors_at_start']:7} visitors (reference "
              f"{level['reference']['visitors_at_start']}): throughput {v['throughput']:.2f}x,"
              f" p99 {v['p99']:.2f}x, CPU/op {v['server_cpu_per_op']:.2f}x the reference's",
              flush=True)
    if memory:
        print(f"  memory per live visitor: {memory['total_bytes_per_visitor']:.0f} B "
              f"(erlang:memory total), RSS {memory['rss_bytes_per_visitor']:.0f} B", flush=True)
    write_json("visitors", {
        "description": "register throughput/p99 against live visitors, a filled server "
                       "against a fresh reference at each level; memory per visitor",
        "passwords": "plain for the client host (fill and measurements)",
        "measured": MEASURED,
        "wrk": {"threads": THREADS, "connections": CONNECTIONS, "seconds": SECONDS,
                "rounds": ROUNDS},
        "module_options": MODULE_OPTIONS,
        "levels": levels, "fills": fills,
        "flatness": {"worst_deviation": worst, "goal": 0.15, "met": worst <= 0.15},
        "memory": memory,
        "snapshots": {k: {f: v for f, v in s.items() if f not in ("ets", "process_memory", "spool_files")}
                      for k, s in snapshots.items()},
    })


main()
