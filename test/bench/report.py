"""Writes docs/performance.md (and small PNG plots beside it, in docs/) from
every _build/bench/*.json present. Run by `make bench` after the benches;
Debian's /usr/bin/python3; plots with python3-matplotlib when installed
(left out otherwise, with a note).

Files it knows (anything else found is listed with its headline values):

- register.json  (test/bench/register_bench.py) POST /register vs
  mod_http_api's register, SCRAM and plain.
- visitors.json  (test/bench/visitors_bench.py) registration against live
  visitors; memory per live visitor.
- chat.json      (test/bench/chat_bench.py) server CPU per chat message,
  archive on vs off.
- rotation.json and archive.json: written by other benches, in this shape
  (every key but "series" optional):

    {
      "bench": "rotation",                 # or "archive"
      "description": "what was measured, one line",
      "command": "how it was run",
      "machine": {...},                    # as benchlib.machine() writes it
      "x_label": "agents",                 # rotation: agents; archive:
      "y_label": "us per enter + release", #   entries in the conversation
      "series": [{"x": 10, "y": 1.9}, {"x": 100, "y": 2.0}, ...],
      "alternative": {"name": "gen_server", "series": [{"x": 10, "y": 5.1}, ...]},
      "goal": {"text": "flat within 15 %", "met": true}
    }

  "series" is ours (points in x order; y the cost at x); "alternative"
  (or "alternatives", a list of them)
  what it is compared with, measured in the same run, the same points
  (or null). A point may carry more keys (e.g. "p99"); they are shown
  in the table. Each gets a table (x, y, alternative's y, ratio) and a
  plot (docs/perf_rotation.png, docs/perf_archive.png).
"""

import json
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
BENCH = REPO / "_build" / "bench"
DOCS = REPO / "docs"
OUT = DOCS / "performance.md"

try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:      # python3-matplotlib not installed: tables only
    plt = None


def load():
    found = {}
    for path in sorted(BENCH.glob("*.json")):
        try:
            found[path.stem] = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            print(f"report: skipping {path}: {error}", file=sys.stderr)
    return found


def fmt(value, digits=1):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def yes(met):
    return "**met**" if met else "**not met**"


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(c) if not isinstance(c, str) else c for c in row) + " |"
              for row in rows]
    return "\n".join(lines)


def plot(name, title, xlabel, ylabel, curves, logx=False):
    """curves: [(label, xs, ys)]. Returns the markdown image line or ''."""
    if plt is None or not any(xs for _, xs, _ in curves):
        return ""
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
    for label, xs, ys in curves:
        ax.plot(xs, ys, marker="o", label=label)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logx:
        ax.set_xscale("symlog", linthresh=1000)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = DOCS / f"perf_{name}.png"
    fig.savefig(path)
    plt.close(fig)
    return f"![{title}]({path.name})"


def machine_section(results):
    """The machine once (each bench records it, with the load average when it
    started), then when each bench ran and that load."""
    def described(m):
        return (f"{m.get('nproc')} CPUs ({m.get('cpu')}), {m.get('os')}, "
                f"kernel {m.get('kernel')}; Erlang/OTP {m.get('otp')}, "
                f"ejabberd {m.get('ejabberd')} (Debian)")
    machines = dict.fromkeys(described(r["machine"]) for r in results.values()
                             if r.get("machine"))
    out = ["## Machine", ""] + [f"- {m}" for m in machines] + [""]

    def when(r):
        load = (r.get("machine") or {}).get("loadavg_at_start")
        return r.get("taken_at", "?") + (
            f" (load average {', '.join(f'{x:.2f}' for x in load)})" if load else "")
    out.append("Taken: " + ", ".join(f"{name} {when(r)}" for name, r in sorted(results.items())))
    return out


def register_section(r):
    out = ["## POST /register against ejabberd's own register command", "",
           r.get("description", ""), "",
           f"`wrk -t{r['wrk']['threads']} -c{r['wrk']['connections']} "
           f"-d{r['wrk']['seconds']}s`, {r['wrk']['rounds']} rounds, ours then theirs "
           "and theirs then ours in turn (A B B A), one server per password format, JSON bodies, unique names "
           "(a Lua script). Server CPU from `/proc/<beam>/stat`, per successful "
           "registration; wrk's own CPU from its rusage. Then the same registrations at "
           "one offered rate for both (test/bench/paced_http.erl: an open loop in its own VM, "
           "requests started on a fixed schedule whatever the answers, latency from each "
           "one's scheduled start), the same rounds. Goal: ours >= 1.1x theirs in "
           "throughput (wrk), p99 <= 1.0x theirs at the same offered rate, each side's "
           "requests of all its runs pooled. (wrk's p99 is "
           "that of a closed loop at saturation: it drives the faster side harder, into the "
           "same account store; it is shown, not judged.)", ""]
    for config in r["configs"]:
        out += [f"### {config['mode']} passwords for the client host", ""]
        rows = []
        for run in config["runs"]:
            lat = run["latency_us"]
            rows.append([run["side"], run["ok"], run["throughput_per_s"], lat["p50"] / 1000,
                         lat["p99"] / 1000, run["server_cpu_us_per_op"],
                         run["server_cores_busy"], run["driver_cores_busy"],
                         sum(run["errors"].values())])
        out.append(table(["run", "registrations", "per s", "p50 ms", "p99 ms",
                          "server CPU us/op", "server cores", "wrk cores", "errors"], rows))
        ratios = config["ratios"]
        out += ["", f"Ours / theirs: throughput **{ratios['throughput_ours_over_theirs']:.2f}x** "
                f"(paired median {ratios['throughput_paired_median']:.2f}x), p99 "
                f"**{ratios['p99_ours_over_theirs']:.2f}x** (paired median "
                f"{ratios['p99_paired_median']:.2f}x), server CPU per registration "
                f"{ratios['cpu_per_op_ours_over_theirs']:.2f}x.", ""]
        out += paced_lines(config.get("paced"))
        out += [f"Goal {yes(config['goals']['met'])}.", ""]
        out += in_node_lines(config.get("in_node"))
    return out


def paced_lines(p):
    """The open-loop runs (paced_http.erl) at one offered rate."""
    if not p:
        return []
    rows = [[run["side"], run["ok"], run["latency_us"]["p50"] / 1000,
             run["latency_us"]["p99"] / 1000, run["latency_us"]["max"] / 1000,
             run["server_cpu_us_per_op"], run["server_cores_busy"], run["driver_cores_busy"],
             run["errors"]] for run in p["runs"]]
    ratios = p["ratios"]
    return [f"At {p['rate_per_s']} registrations a second offered for {p['seconds']} s "
            f"({p['share_of_theirs']:.0%} of theirs' mean throughput above), rounds A B B A:", "",
            table(["run", "registrations", "p50 ms", "p99 ms", "max ms", "server CPU us/op",
                   "server cores", "driver cores", "errors"], rows), "",
            table(["side", "requests pooled", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms"],
                  [[side, p[side]["pooled_us"]["requests"]]
                   + [p[side]["pooled_us"][k] / 1000 for k in ("p50", "p90", "p99", "p999", "max")]
                   for side in ("ours", "theirs") if "pooled_us" in p[side]]), "",
            *([f"Ours / theirs at the same rate, each side's runs pooled: p99 "
               f"**{ratios['p99_pooled_ours_over_theirs']:.2f}x**, p99.9 "
               f"{ratios['p999_pooled_ours_over_theirs']:.2f}x."]
              if "p99_pooled_ours_over_theirs" in ratios else []),
            f"The sides' medians of their runs' p99: {ratios['p99_ours_over_theirs']:.2f}x "
            f"(median of the rounds' ratios {ratios['p99_paired_median']:.2f}x), p50 "
            f"{ratios['p50_paired_median']:.2f}x, server CPU per registration "
            f"{ratios['cpu_per_op_paired_median']:.2f}x (medians of the rounds' ratios).", ""]


def in_node_lines(p):
    """register_steps.erl's figures: where a registration's time goes."""
    if not p:
        return []
    h = p["handlers"]
    out = [f"In the node (test/bench/register_steps.erl, no HTTP socket): one process, "
           f"{p['registrations_per_block']} registrations per block, {p['blocks']} blocks "
           f"each: ours' handler {h['ours_handler']['wall_us']:.0f} us, theirs' "
           f"{h['theirs_handler']['wall_us']:.0f} us per registration (node CPU "
           f"{h['ours_handler']['node_cpu_us']:.0f} / {h['theirs_handler']['node_cpu_us']:.0f} us); "
           f"the `register` command's body alone (ejabberd_admin:register/3) "
           f"{p['theirs_command']['wall_us']:.0f} us, ejabberd_auth:try_register/3 alone "
           f"{p['auth_try_register']['wall_us']:.0f} us.", ""]
    if "salted_password" in p:
        sp = p["salted_password"]
        out += ["The SCRAM record's PBKDF2 alone (the host's hash, 4 096 rounds), us each, "
                "alternating blocks: the xmpp library's (Erlang; what ejabberd_auth calls) "
                f"{sp['xmpp_erlang']['wall_us']:.0f}, OTP's `crypto:pbkdf2_hmac` (OpenSSL, "
                f"on a regular scheduler) {sp['otp_crypto']['wall_us']:.0f}, our NIF's "
                "(dirty CPU, both keys with it; what `clicktochat_accounts` calls) "
                f"{sp['nif_keys']['wall_us']:.0f}.", ""]
    steps = p["ours_steps"]["steps_wall_us"]
    total = sum(steps.values())
    out.append(table(["ours, step by step (one process)", "us", "share"],
                     [[k[2:].replace("_", " "), v, f"{v / total * 100:.1f} %"]
                      for k, v in sorted(steps.items())]))
    rows = []
    for c in p.get("concurrent", []):
        r = c["result"]
        rows.append([c["side"].replace("_handler", ""), r["per_s"], r["p50_us"] / 1000,
                     r["p99_us"] / 1000, r["node_cpu_us"],
                     ", ".join(f"{q['process']} {q['mean_queue']:.1f}"
                               for q in r["longest_queues"][:3]),
                     ", ".join(f"{q['process']} {q['reductions']:.0f}"
                               for q in r["other_processes_reductions_per_op"][:4])])
    if rows:
        out += ["", table(["16 processes, 2 s", "per s", "p50 ms", "p99 ms", "node CPU us/op",
                           "longest message queues (mean)",
                           "other processes' reductions per registration"], rows)]
    return out + [""] + tail_lines(p)


def tail_lines(p):
    """Where ours' tail goes, and the tails at one offered rate."""
    out = []
    t = p.get("tail_steps")
    if t:
        steps = sorted(t["steps"].items())
        slowest = sum(v["slowest_1pct_mean_us"] for _, v in steps)
        out += [f"Ours' tail, step by step (16 processes, 3 s, {t['registrations']} "
                f"registrations): p50 {t['total']['p50_us'] / 1000:.1f} ms, p99 "
                f"{t['total']['p99_us'] / 1000:.1f} ms. In the slowest 1%, each step's mean "
                "and share: what the tail waits in.", "",
                table(["step", "p50 us", "p99 us", "slowest 1 %: mean us", "share"],
                      [[k[2:].replace("_", " "), v["p50_us"], v["p99_us"],
                        v["slowest_1pct_mean_us"],
                        f"{v['slowest_1pct_mean_us'] / slowest * 100:.1f} %"]
                       for k, v in steps]), ""]
    paced = p.get("paced")
    if paced:
        runs = paced["runs"]
        sides = list(dict.fromkeys(r["side"] for r in runs))
        p99 = {side: statistics.median([r["result"]["p99_us"] for r in runs if r["side"] == side])
               for side in sides}
        out += [f"The tails at one offered rate: {paced['rate_per_s']} registrations a second "
                f"started on a fixed schedule for {paced['ms'] / 1000:.0f} s whatever the answers "
                "(an open loop: a stall delays no start, so every request it holds up counts), "
                f"{paced['rounds']} rounds in alternating order; latency from a request's "
                "scheduled start. ejabberd_auth:try_register alone is the account both "
                "handlers create.", "",
                table(["side", "requests", "p50 ms", "p99 ms", "max ms"],
                      [[r["side"].replace("_", " "), r["result"]["requests"],
                        r["result"]["p50_us"] / 1000, r["result"]["p99_us"] / 1000,
                        r["result"]["max_us"] / 1000] for r in runs]), "",
                f"Median p99: ours / theirs {p99['ours_handler'] / p99['theirs_handler']:.2f}x, "
                f"ours / try_register alone {p99['ours_handler'] / p99['auth_try_register']:.2f}x, "
                f"theirs / try_register alone "
                f"{p99['theirs_handler'] / p99['auth_try_register']:.2f}x.", ""]
    return out


def visitors_section(r):
    out = ["## Registration against live visitors", "", r.get("description", "") + ".",
           f"Passwords: {r.get('passwords')}. Each level: wrk "
           f"`-t{r['wrk']['threads']} -c{r['wrk']['connections']} -d{r['wrk']['seconds']}s` "
           "against the filled server and against the reference (a fresh server at each "
           "level; both idle before the runs), "
           f"{r['wrk']['rounds']} rounds alternating (filled, reference, reference, filled, "
           "...); the level is the filled server's count of live visitors when its first run "
           "starts (each run adds its own registrations). Figures are medians of the rounds; "
           "the ratios, the median of each round's filled / reference. "
           "Goal: the filled server within +-15 % of the reference at every level."
           + (" Measured here: ejabberd's own mod_http_api `register` (the fills are ours)."
              if r.get("measured") == "theirs" else "")
           + (f" Server VM flags: `{r['erl_options']}`." if r.get("erl_options") else ""), ""]
    rows = []
    for level in r["levels"]:
        filled, reference, v = level["filled"], level["reference"], level["filled_vs_reference"]
        rows.append([level["visitors_at_start"], reference["visitors_at_start"],
                     filled["throughput_per_s"], filled["p99_us"] / 1000,
                     filled["server_cpu_us_per_op"], reference["throughput_per_s"],
                     reference["p99_us"] / 1000, reference["server_cpu_us_per_op"],
                     f"{v['throughput']:.2f}x", f"{v['p99']:.2f}x",
                     f"{v['server_cpu_per_op']:.2f}x"])
    out.append(table(["live visitors", "reference's", "filled /s", "filled p99 ms",
                      "filled CPU us/op", "reference /s", "reference p99 ms",
                      "reference CPU us/op", "throughput filled/ref", "p99 filled/ref",
                      "CPU/op filled/ref"], rows))
    flat = r["flatness"]
    out += ["", f"Worst deviation of the filled server from the reference (throughput or "
            f"p99): **{flat['worst_deviation'] * 100:.0f} %**. Goal {yes(flat['met'])}.", ""]
    if all(level.get("ours_steps") for level in r["levels"]):
        keys = sorted(r["levels"][0]["ours_steps"]["steps_wall_us"])
        out += ["The filled server step by step at each level (test/bench/register_steps.erl, "
                "one process, us per registration): what grows with live visitors.", "",
                table(["live visitors"] + [k[2:].replace("_", " ") for k in keys] + ["total"],
                      [[level["visitors_at_start"]]
                       + [level["ours_steps"]["steps_wall_us"][k] for k in keys]
                       + [level["ours_steps"]["total"]["wall_us"]] for level in r["levels"]]),
                ""]
    xs = [level["visitors_at_start"] for level in r["levels"]]
    image = plot("visitors", "Registration vs live visitors", "live visitors (filled server)",
                 "registrations / s",
                 [(side, xs, [level[side]["throughput_per_s"] for level in r["levels"]])
                  for side in ("filled", "reference")])
    image_p99 = plot("visitors_p99", "Registration p99 vs live visitors",
                     "live visitors (filled server)", "p99 (ms)",
                     [(side, xs, [level[side]["p99_us"] / 1000 for level in r["levels"]])
                      for side in ("filled", "reference")])
    out += [line for line in (image, image_p99) if line] + [""]
    fills = ", ".join(f"{f['visitors']} in {f['seconds']:.0f} s" for f in r.get("fills", [])
                      if f["seconds"] >= 1)
    if fills:
        out += [f"Fills (wrk, ours): {fills}.", ""]
    m = r.get("memory")
    if m:
        out += ["### Memory per live visitor", "",
                f"Around the last fill: {m['visitors_added']:,} visitors added "
                f"({m['accounts_added']:,} accounts); node memory after a full GC of every "
                f"process (`erlang:memory()`), per visitor: **{m['total_bytes_per_visitor']:.0f} "
                f"bytes** (goal <= {m['goal_bytes']}: {yes(m['met'])}); the beam's RSS grew "
                f"{m['rss_bytes_per_visitor']:.0f} bytes per visitor (includes what the NIF "
                "allocates outside the VM's allocators, and allocator slack).", ""]
        cats = m["erlang_memory_bytes_per_visitor"]
        out.append(table(["erlang:memory category", "bytes per visitor"],
                         [[k, cats[k]] for k in ("total", "processes", "ets", "binary",
                                                 "system", "atom", "code") if k in cats]
                         + [["system outside ets/binary/code/atom (timers, ...)",
                             m["system_outside_ets_binary_code_atom_bytes_per_visitor"]]]))
        out += ["", table(["ETS table (grew >= 64 KiB)", "bytes per visitor", "rows added"],
                          [[name, t["bytes_per_visitor"], t["rows_added"]]
                           for name, t in m["ets_tables_bytes_per_visitor"].items()]), ""]
        if cats.get("processes", 0) > 64 and not m.get("processes_bytes_per_visitor"):
            out += [f"`processes` grew {cats['processes']:.0f} bytes per visitor while no "
                    "process did (each one's memory after its GC): that is the visitor_ttl "
                    "timers (clicktochat_server's `erlang:send_after/3`, one per visitor; the "
                    "VM accounts a timer and its copied message under `processes`).", ""]
        if m.get("spool_files_bytes_per_visitor"):
            out += ["On disk (the spool directory, files that grew >= 64 KiB; ejabberd 23.01 "
                    "keeps `passwd` and `last_activity` in dets, `disc_only_copies`: an "
                    "account costs disk, not memory):", "",
                    table(["file", "bytes per visitor"],
                          [[name, b] for name, b in m["spool_files_bytes_per_visitor"].items()]),
                    ""]
    return out


def chat_section(r):
    out = ["## Server CPU per chat message, archive on and off", "", r["description"] + ".",
           f"{r['pairs']} visitor-agent pairs (and as many pairs of ordinary accounts), "
           f"{r['window']} messages in flight per direction, phases of {r['seconds']:g} s, "
           f"{r['rounds']} rounds of on, off (off, on in every other round), ordinary accounts. {r['transport']}; "
           f"a message is {r['message_bytes']} bytes as sent. Each phase ends once every "
           "message sent is received and the archive has synced. Goal: on <= 1.15x off.", ""]
    rows = [[p["mode"], p["messages"], p["messages_per_s"], p["server_cpu_us_per_message"],
             p["server_cores_busy"], p["driver_cpu_us_per_message"], p["driver_cores_busy"]]
            for p in r["phases"]]
    out.append(table(["phase", "messages", "per s", "server CPU us/msg", "server cores",
                      "driver CPU us/msg", "driver cores"], rows))
    ratios = r["ratios"]
    out += ["", f"Server CPU per message, archive on / off: **{ratios['cpu_on_over_off']:.2f}x** "
            f"(round by round: {', '.join(f'{x:.2f}' for x in ratios['cpu_on_over_off_paired'])}); "
            f"on / ordinary accounts {ratios['cpu_on_over_bystanders']:.2f}x, off / ordinary "
            f"accounts {ratios['cpu_off_over_bystanders']:.2f}x. Goal {yes(r['goal']['met'])}.",
            ""]
    entries = (r.get("archive_status_after") or {}).get("committed_entries")
    if isinstance(entries, int):
        out += [f"By the end the archive held {entries:,} entries, {entries / r['pairs']:,.0f} per "
                "conversation on average (the conversations grow through the run; the writer's "
                "cost per message does not depend on their length: see the archive writer "
                "bench above).", ""]
    modes = r["modes"]
    if all("server_cpu_us_per_message_by_thread" in m for m in modes.values()):
        names = sorted({n for m in modes.values() for n in m["server_cpu_us_per_message_by_thread"]},
                       key=lambda n: -modes["on"]["server_cpu_us_per_message_by_thread"].get(n, 0))
        out += ["Server CPU per message by thread (`/proc/<pid>/task/*/stat`, names with "
                "digits folded), us, mean of the phases:", "",
                table(["thread", "on", "off", "ordinary accounts"],
                      [[n] + [modes[m]["server_cpu_us_per_message_by_thread"].get(n, 0.0)
                              for m in ("on", "off", "bystanders")] for n in names[:8]]), ""]
    return out


def generic_series_section(name, r):
    title = {"rotation": "Rotation against the number of agents",
             "archive": "Archive cost against conversation length"}.get(name, name)
    out = [f"## {title}", "", r.get("description", ""), ""]
    if r.get("command"):
        out += [f"`{r['command']}`", ""]
    series = r.get("series") or []
    # "alternatives": a list of {name, series}; "alternative": just one.
    alts = r.get("alternatives") or ([r["alternative"]] if isinstance(r.get("alternative"), dict)
                                     else [])
    alts = [(a.get("name", "alternative"), {p["x"]: p["y"] for p in (a.get("series") or [])})
            for a in alts]
    alts = [(alt_name, points) for alt_name, points in alts if points]
    extra = sorted({k for p in series for k in p if k not in ("x", "y")})
    header = [r.get("x_label", "x"), r.get("y_label", "y")] + extra
    for alt_name, _ in alts:
        header += [alt_name, "ratio"]
    rows = []
    for p in series:
        row = [p["x"], p["y"]] + [p.get(k) for k in extra]
        for _, points in alts:
            a = points.get(p["x"])
            row += [a, f"{p['y'] / a:.2f}x" if a else "-"]
        rows.append(row)
    out.append(table(header, rows))
    goal = r.get("goal")
    if goal:
        out += ["", f"Goal: {goal.get('text', '')}: {yes(goal.get('met'))}."]
    curves = [("ours", [p["x"] for p in series], [p["y"] for p in series])]
    for alt_name, points in alts:
        xs = sorted(points)
        curves.append((alt_name, xs, [points[x] for x in xs]))
    image = plot(name, title, r.get("x_label", "x"), r.get("y_label", "y"), curves)
    return out + ["", image, ""] if image else out + [""]


def rotation_section(r):
    """rotation.json as test/bench/rotation_bench.erl writes it (ns per
    enter + release, medians of interleaved rounds)."""
    if "nif" not in r:
        return generic_series_section("rotation", r)
    gen = r["gen_server"]["median"]
    floor = r["floor"]["median"]
    out = ["## The desk's hot path: enter + release against the number of agents", "",
           "`make bench-rotation` (test/bench/rotation_bench.erl): one Erlang process calls the "
           "desk's NIFs directly (enter, then release), the medians of "
           f"{len(r['floor']['samples'])} interleaved rounds; the alternatives in the same run: "
           "the original design (a gen_server owning an Erlang queue, 100 agents) and the NIF "
           "floor (two calls of a C NIF that returns `ok`).", ""]
    rows = []
    curves = []
    for routing in sorted(r["nif"]):
        points = r["nif"][routing]
        for p in points:
            rows.append([routing, p["agents"], p["median"] / 1000, f"{gen / p['median']:.1f}x",
                         f"{p['median'] / floor:.1f}x"])
        curves.append((routing, [p["agents"] for p in points],
                       [p["median"] / 1000 for p in points]))
    out.append(table(["routing", "agents", "us a pair", "gen_server / this",
                      "this / NIF floor"], rows))
    growth = r.get("growth", {})
    out += ["", f"gen_server: {gen / 1000:.2f} us a pair; NIF floor: {floor / 1000:.3f} us "
                "(two calls). Growth from 10 to 100 000 agents: " +
            ", ".join(f"{k} {v['ratio']:.2f}x" for k, v in sorted(growth.items())) +
            ". Goals: >= 20x the gen_server, flat within +-25%.", ""]
    concurrent = r.get("concurrent")
    if concurrent:
        per_s = concurrent["pairs_per_s"]
        out += [f"{concurrent['clients']} client processes, {concurrent['agents']} agents: " +
                ", ".join(f"{k} {v / 1e6:.2f} M pairs/s" for k, v in sorted(per_s.items())) +
                f" (NIF / gen_server {per_s['nif'] / per_s['gen_server']:.1f}x).", ""]
    image = plot("rotation", "enter + release, direct NIF", "agents", "us a pair",
                 curves + [("gen_server (100 agents)", [10, 100000], [gen / 1000] * 2)],
                 logx=True)
    return out + [image, ""] if image else out


def riak_section(r):
    out = ["## Riak round trips per archived message", "",
           f"`cargo bench -p clicktochat_core --bench riak_pushes`: {r['agents']} agents, each "
           f"writing {r['per_agent_rate']} messages a second (docs/scale.md's load) through the "
           "archive to the Riak stand-in; round trips (requests) of the pushes per message pushed, "
           "in steady state (between the ends of the first and the last rounds of pushes). "
           "The alternative in the same run: a push round after every commit. (The stand-in is "
           "slow, it rewrites its JSON file on every put, so pushes after every commit batch "
           "themselves somewhat; against a real Riak they would approach 2 round trips a "
           "commit.) Goal: <= 0.1.", ""]
    out.append(table(["push interval s", "round trips a message"],
                     [[p["push_interval_s"], f"{p['round_trips_per_message']:.3f}"]
                      for p in r["runs"]]))
    return out + [""]


def assignments_disk_section(r):
    out = ["## The visitors' assignments on disk: Mnesia's disc_copies against the kept rows", "",
           "`test/bench/assignments_disk_bench.erl`, one VM (Mnesia and our NIF, no ejabberd): "
           "N live visitors, then visitors arriving and leaving at "
           f"{r['rate_per_s']} a second (a claim and a take transaction each step). disc_copies: "
           "the table as it was (Mnesia rewrites its whole snapshot once its log reaches a "
           "quarter of it); kept rows: the table in memory, its changes handed to the NIF's "
           "writer thread (redb, commits every 10 ms), as clicktochat_assignments_keeper does. "
           "The node's CPU a step (every thread), each transaction's latency, and how late a "
           "probe process asking to wake every millisecond woke (what any process of the node "
           "waits); phases A B B A.", ""]
    rows = [[p["way"], p["rows"], p["steps"], p["cpu_us_per_step"], p["transaction_us"]["p99"],
             p["transaction_us"]["max"], p["probe_late_us"]["p99"], p["probe_late_us"]["p999"],
             p["probe_late_us"]["max"], p["snapshots"]] for p in r["phases"]]
    out.append(table(["way", "live rows", "steps", "CPU us a step", "transaction p99 us",
                      "transaction max us", "probe late p99 us", "probe late p99.9 us",
                      "probe late max us", "snapshots rewritten"], rows))
    out.append("")
    for n in sorted({p["rows"] for p in r["phases"]}):
        def med(way, key, sub=None):
            return statistics.median([(p[key][sub] if sub else p[key]) for p in r["phases"]
                           if p["rows"] == n and p["way"] == way])
        out.append(f"At {n:,} rows, kept rows / disc_copies (medians of the phases): CPU a step "
                   f"{med('kept_rows', 'cpu_us_per_step') / med('disc_copies', 'cpu_us_per_step'):.2f}x, "
                   f"the probe's longest wait "
                   f"{med('kept_rows', 'probe_late_us', 'max') / med('disc_copies', 'probe_late_us', 'max'):.2f}x, "
                   f"the longest transaction "
                   f"{med('kept_rows', 'transaction_us', 'max') / med('disc_copies', 'transaction_us', 'max'):.2f}x.")
    return out + [""]


def widget_login_section(r):
    out = ["## A widget visitor: the server's CPU with the widget's SCRAM login and with PLAIN", "",
           f"Two servers with Debian's stock configuration (SCRAM records), the second with its "
           f"SCRAM mechanisms disabled, so that the same widget logs in there with PLAIN (ejabberd "
           f"then redoes the record's PBKDF2). {r['visitors_a_round']} visitors a round, one after "
           f"another in headless chromium (open the demo, click, chat shown, close, account "
           f"removed), {r['rounds']} rounds a side (A B B A); the server's CPU over each visit, "
           f"and the time from the click to the chat in the browser. The mechanism of every "
           f"login is checked in ejabberd's log.", ""]
    rows = []
    for side, s in r["summary"].items():
        rounds = " ".join(f"{x['server_cpu_ms_a_visitor']:.1f}" for x in r["runs"]
                          if x["side"] == side)
        logins = ", ".join(f"{k} {v}" for k, v in s["logins"].items())
        rows.append([side, s["server_cpu_ms_a_visitor"], rounds, s["click_to_chat_ms"], logins])
    out.append(table(["login", "server CPU ms a visitor (median)", "rounds",
                      "click to chat ms (median)", "logins"], rows))
    return out + ["", f"SCRAM / PLAIN, server CPU a visitor: "
                      f"**{r['scram_over_plain_server_cpu']:.2f}x**.", ""]


def other_section(name, r):
    keys = ", ".join(k for k in r if k not in ("machine", "bench"))
    return [f"## {name}", "", r.get("description", f"_build/bench/{name}.json ({keys})"), ""]


def main():
    results = load()
    if not results:
        print("report: no _build/bench/*.json; run `make bench` first", file=sys.stderr)
        return 1
    DOCS.mkdir(exist_ok=True)
    out = ["# Performance", "",
           "Written by `test/bench/report.py` from `_build/bench/*.json` (`make bench`). "
           "Ratios are against an alternative measured in the same run; CPU figures are the "
           "server process's own (`/proc/<pid>/stat`, every thread).", ""]
    out += machine_section(results) + [""]
    out += ["## Commands", "", "```sh", "make bench"]
    out += [r["command"] for r in results.values() if r.get("command")]
    out += ["```", ""]
    sections = {"register": register_section, "visitors": visitors_section,
                "chat": chat_section, "rotation": rotation_section, "riak": riak_section,
                "widget_login": widget_login_section, "assignments_disk": assignments_disk_section}
    known = ("rotation", "archive", "riak", "register", "assignments_disk", "visitors", "chat",
             "widget_login")
    for name in known:
        if name in results:
            r = results[name]
            out += (sections[name](r) if name in sections else generic_series_section(name, r))
    for name, r in results.items():
        if name not in known:
            out += other_section(name, r)
    if plt is None:
        out += ["(No plots: python3-matplotlib is not installed.)", ""]
    OUT.write_text("\n".join(out).rstrip() + "\n")
    print(f"wrote {OUT.relative_to(REPO)}")
    return 0


sys.exit(main())
