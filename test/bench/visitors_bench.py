"""Registration against the number of live visitors (registered, not logged
in), and what a live visitor costs in memory, on one server.

At about 0, 10 000, 50 000 and 100 000 live visitors: wrk runs of POST
/clicktochat/register alternating with mod_http_api's /api/register
(ours, theirs, ours, theirs; as register_bench.py), each with the server's
CPU per registration. Flatness is ours at each level against ours at the
first level (and ours/theirs per level, which the machine's noise moves
less: theirs grows ejabberd's own passwd table just the same). Between the
levels, wrk fills the desk with registrations of ours (the same request).

The whole bench runs with auth_password_format: plain for the client host
(host_config; the agents' host keeps SCRAM): 100 000 SCRAM registrations
would take about half an hour of PBKDF2 on 2 cores. Debian's stock
configuration otherwise (test/sandbox.py). Two agents online, max_sessions
100000 each, visitor_ttl 2 h (no visitor expires during the bench), no rate
limit, max_visitors 10^6.

Memory: around the last fill (the level before the last to the last; only
visitors are added by it), the node's erlang:memory() after a full GC of
every process, every ETS table's memory (ets:info/2), and the beam's RSS
(what the NIF allocates with Rust's allocator shows there only). Per
visitor = growth / visitors added.

    /usr/bin/python3 test/bench/visitors_bench.py [seconds per run] [levels...]

writes _build/bench/visitors.json. Ports 15305-15306.
"""

import sys
import time

from benchlib import (SIDES, BenchSandbox, Control, allow_api_register, cpu_seconds,
                      load_register_steps,
                      node_ets, plain_for_client_host, register_and_connect_agents,
                      rss_bytes, run_wrk, write_json)
from sandbox import CLIENT_HOST

SECONDS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
LEVELS = [int(a) for a in sys.argv[2:]] or [0, 10000, 50000, 100000]
ROUNDS = 2
STEPS = 300           # registrations timed step by step at each level
THREADS, CONNECTIONS = 2, 16
FILL_LIMIT_S = 600     # the whole fill, whatever the machine

MODULE_OPTIONS = {"max_sessions": 100000, "visitor_ttl": 7200,
                  "max_registrations_per_minute": 0, "max_visitors": 1000000}



def visitors(control):
    return int(control.eval("rpc:call(Node, mnesia, table_info, [clicktochat_visitor, size])"))


def measure(server, control, level):
    runs = []
    for round_ in range(ROUNDS):
        for side, (path, template) in SIDES.items():
            pid = server.pid()
            before = visitors(control)
            cpu0, t0 = cpu_seconds(pid), time.monotonic()
            r = run_wrk(server.url(path), f"l{level}r{round_}{side}", template,
                        "application/json", THREADS, CONNECTIONS, SECONDS)
            cpu1, t1 = cpu_seconds(pid), time.monotonic()
            ok = r["requests"] - r["errors"]["status"]
            run = {"side": side, "visitors_before": before, "ok": ok, "errors": r["errors"],
                   "throughput_per_s": ok / (r["duration_us"] / 1e6),
                   "latency_us": r["latency_us"],
                   "server_cpu_us_per_op": (cpu1 - cpu0) / max(ok, 1) * 1e6,
                   "server_cores_busy": (cpu1 - cpu0) / (t1 - t0),
                   "driver_cores_busy": r["driver_cpu_s"] / (t1 - t0)}
            runs.append(run)
            print(f"  {before:7} visitors  {side:6} {run['throughput_per_s']:7.0f}/s"
                  f"  p99 {r['latency_us']['p99']/1000:6.1f} ms"
                  f"  server {run['server_cpu_us_per_op']:6.0f} us/op"
                  f" ({run['server_cores_busy']:.2f} cores)"
                  f"  wrk {run['driver_cores_busy']:.2f} cores"
                  f"  errors {sum(r['errors'].values())}", flush=True)
    # Ours step by step, one process (register_steps.erl): which step grows.
    steps = control.eval(f"""rpc:call(Node, register_steps, steps_only,
                                      [<<"{CLIENT_HOST}">>, {STEPS}, <<"s{level}_">>], 120000)""")
    print("  steps (us, one process): " + ", ".join(
        f"{k[2:]} {v:.0f}" for k, v in sorted(steps["steps_wall_us"].items())), flush=True)
    mean = lambda side, f: sum(f(r) for r in runs if r["side"] == side) / ROUNDS  # noqa: E731
    return {"level": level, "visitors_at_start": runs[0]["visitors_before"],
            "visitors_at_end": visitors(control), "runs": runs, "ours_steps": steps,
            **{side: {"throughput_per_s": mean(side, lambda r: r["throughput_per_s"]),
                      "p99_us": mean(side, lambda r: r["latency_us"]["p99"]),
                      "p50_us": mean(side, lambda r: r["latency_us"]["p50"]),
                      "server_cpu_us_per_op": mean(side, lambda r: r["server_cpu_us_per_op"]),
                      "driver_cores_busy": mean(side, lambda r: r["driver_cores_busy"])}
               for side in SIDES}}


def fill(server, control, target, deadline):
    """Registrations of ours (wrk, bounded by time) until `target` visitors."""
    path, template = SIDES["ours"]
    started, chunk = time.monotonic(), 0
    count = visitors(control)
    while count < target:
        if time.monotonic() > deadline:
            raise TimeoutError(f"fill: {count} visitors of {target} when time ran out")
        rate = 500 if chunk == 0 else max(100, (count - first) / (time.monotonic() - started))
        if chunk == 0:
            first = count
        seconds = int(max(1, min(30, (target - count) / rate)))
        run_wrk(server.url(path), f"fill{target}c{chunk}", template, "application/json",
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


def main():
    def edit(config):
        allow_api_register(config)
        plain_for_client_host(config)
    server = BenchSandbox("bench_visitors", 15305, 15306, MODULE_OPTIONS,
                          stock_config=True, edit=edit)
    print(f"register vs live visitors {LEVELS}, plain passwords for {CLIENT_HOST}: "
          f"wrk -t{THREADS} -c{CONNECTIONS} -d{SECONDS}s, {ROUNDS} rounds per level", flush=True)
    levels, fills, snapshots = [], [], {}
    deadline = time.monotonic() + FILL_LIMIT_S
    with server.serving():
        agents = register_and_connect_agents(server, 2)
        control = Control(server)
        try:
            load_register_steps(control)
            for side, (path, template) in SIDES.items():
                run_wrk(server.url(path), f"warm{side}", template, "application/json",
                        THREADS, CONNECTIONS, 1)
            for i, level in enumerate(LEVELS):
                if i == len(LEVELS) - 1 and i > 0:
                    snapshots["before"] = snapshot(server, control)
                fills.append(fill(server, control, level, deadline))
                if i == len(LEVELS) - 1 and i > 0:
                    snapshots["after"] = snapshot(server, control)
                levels.append(measure(server, control, level))
        finally:
            control.close()
            for agent in agents:
                agent.disconnect()
    base = levels[0]["ours"]
    for level in levels:
        level["ours_vs_first_level"] = {
            "throughput": level["ours"]["throughput_per_s"] / base["throughput_per_s"],
            "p99": level["ours"]["p99_us"] / base["p99_us"],
            "server_cpu_per_op": level["ours"]["server_cpu_us_per_op"]
            / base["server_cpu_us_per_op"]}
        level["ours_over_theirs"] = {
            "throughput": level["ours"]["throughput_per_s"]
            / level["theirs"]["throughput_per_s"],
            "p99": level["ours"]["p99_us"] / level["theirs"]["p99_us"]}
    worst = max(abs(level["ours_vs_first_level"][k] - 1)
                for level in levels for k in ("throughput", "p99"))
    memory = (memory_per_visitor(snapshots["before"], snapshots["after"])
              if snapshots and snapshots["after"]["visitors"] > snapshots["before"]["visitors"]
              else None)
    for level in levels:
        v = level["ours_vs_first_level"]
        print(f"  {level['visitors_at_start']:7} visitors: ours throughput {v['throughput']:.2f}x,"
              f" p99 {v['p99']:.2f}x, CPU/op {v['server_cpu_per_op']:.2f}x of the first level;"
              f" ours/theirs {level['ours_over_theirs']['throughput']:.2f}x", flush=True)
    if memory:
        print(f"  memory per live visitor: {memory['total_bytes_per_visitor']:.0f} B "
              f"(erlang:memory total), RSS {memory['rss_bytes_per_visitor']:.0f} B", flush=True)
    write_json("visitors", {
        "description": "register throughput/p99 against live visitors; memory per visitor",
        "passwords": "plain for the client host (fill and measurements)",
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
