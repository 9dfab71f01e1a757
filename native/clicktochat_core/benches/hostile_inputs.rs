//! How long the functions behind the non-dirty NIFs take with the worst
//! inputs they can be given. A NIF on a normal scheduler should return well
//! within ~1 ms.
//!
//! Two parts:
//!
//! - first, a table of the *longest single call* (and the 99.9th
//!   percentile), each call timed alone with `Instant`: the operations whose
//!   cost varies from call to call (the rotation's FIFO upkeep, a hash map
//!   growing), the O(agents) calls, the desk's calls that move the whole
//!   waiting line, the archive's capture NIFs with 64 KiB
//!   messages, `parse_registration` on every hostile body and on every input
//!   of the fuzz corpus (`native/fuzz/corpus`, and `native/fuzz/work` after a
//!   `test/fuzz.sh` run). A mean hides the spikes this table is for;
//! - then criterion benchmarks (mean time per call) of `parse_registration`
//!   on 8192-byte hostile bodies, the renderers with long strings and many
//!   agents, and the rotation with 10,000 agents.
//!
//! `cargo bench -p clicktochat_core --bench hostile_inputs` (add
//! `-- --quick`, or `-- --warm-up-time 1 --measurement-time 2`, for a short
//! run).

use clicktochat_core::archive::{
    Archive, ArchiveConfig, Captured, Conversation, Direction, StoreConfig,
};
use clicktochat_core::registration::{MAX_BODY_BYTES, MAX_PASSWORD_BYTES, MAX_USERNAME_BYTES};
use clicktochat_core::{parse_registration, render, Desk, Release, Rotation, Routing};
use criterion::{BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::time::{Duration, Instant};

// --- hostile registration bodies ----------------------------------------------------

/// `head`, then `unit` repeated while it fits, then `tail`: exactly
/// `MAX_BODY_BYTES` long when the padding allows (the rest in `pad`, which
/// must be one byte long).
fn fill(head: &str, unit: &str, tail: &str, pad: &str) -> Vec<u8> {
    let mut body = head.to_owned();
    while body.len() + unit.len() + tail.len() <= MAX_BODY_BYTES {
        body.push_str(unit);
    }
    while body.len() + tail.len() < MAX_BODY_BYTES {
        body.push_str(pad);
    }
    body.push_str(tail);
    assert_eq!(body.len(), MAX_BODY_BYTES, "{head}{unit}");
    body.into_bytes()
}

/// `<registration` with distinct attributes up to nearly 8 KiB, then `tail`,
/// padded to the body limit.
fn attributes_8k(tail: &str) -> Vec<u8> {
    let mut body = String::from("<registration");
    let mut i = 0;
    while body.len() < MAX_BODY_BYTES - 200 {
        body.push_str(&format!(" a{i}=''"));
        i += 1;
    }
    body.push_str(tail);
    fill(&body, " ", "", " ")
}

/// A valid body with the longest username and password, padded with
/// `padding` (whitespace or comments, both allowed after the root).
fn max_fields(padding: &str) -> Vec<u8> {
    // 127 two-byte characters and one ASCII: 255 bytes.
    let username = format!("{}x", "é".repeat(127));
    // 341 three-byte characters: 1023 bytes.
    let password = "€".repeat(341);
    assert_eq!(username.len(), MAX_USERNAME_BYTES);
    assert_eq!(password.len(), MAX_PASSWORD_BYTES);
    let body = format!(
        "<?xml version='1.0'?><registration><username>{username}</username><password>{password}</password></registration>"
    );
    fill(&body, padding, "", " ")
}

/// Each body is 8192 bytes, the most the HTTP handler passes on (longer
/// ones are refused before parsing), with what the parser must answer.
fn hostile_bodies() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let open = "<?xml version='1.0'?><registration><username>u</username><password>";
    let close = "</password></registration>";
    let mut invalid_utf8_at_end = max_fields(" ");
    *invalid_utf8_at_end.last_mut().expect("not empty") = 0xff;

    let mut bodies = vec![
        (
            "nested_elements",
            fill("<registration><username>", "<a>", "", " "),
            "unexpected_element",
        ),
        (
            "nested_elements_as_root",
            fill("", "<a>", "", " "),
            "unexpected_element",
        ),
        (
            "char_references_8k",
            fill(open, "&#x20AC;", close, " "),
            "password_too_long",
        ),
        (
            "char_references_valid_max_password",
            {
                let refs = "&#x20AC;".repeat(341);
                let body = format!("{open}{refs}{close}");
                fill(&body, " ", "", " ")
            },
            "ok",
        ),
        (
            "entity_references_8k",
            fill(open, "&amp;", close, " "),
            "password_too_long",
        ),
        (
            "attributes_8k_unique",
            attributes_8k("><username>u</username><password>p</password></registration>"),
            "ok",
        ),
        (
            "attributes_8k_duplicate_last",
            attributes_8k(" a0=''/>"),
            "bad_xml",
        ),
        ("max_username_and_password", max_fields(" "), "ok"),
        (
            "max_fields_then_8k_of_comments",
            max_fields("<!---->"),
            "ok",
        ),
        ("invalid_utf8_at_end", invalid_utf8_at_end, "invalid_utf8"),
        (
            "doctype_after_8k_whitespace",
            {
                let doctype =
                    "<!DOCTYPE r [<!ENTITY a 'aaaa'><!ENTITY b '&a;&a;'>]><registration/>";
                let mut body = " ".repeat(MAX_BODY_BYTES - doctype.len());
                body.push_str(doctype);
                body.into_bytes()
            },
            "dtd_forbidden",
        ),
        (
            "one_8k_comment",
            fill(
                "<registration><!--",
                "x",
                "--><username>u</username><password>p</password></registration>",
                "x",
            ),
            "ok",
        ),
        (
            "cdata_sections_8k",
            fill(open, "<![CDATA[a]]>", close, " "),
            "ok",
        ),
        (
            "username_8k",
            fill(
                "<registration><username>",
                "a",
                "</username><password>p</password></registration>",
                "a",
            ),
            "username_too_long",
        ),
    ];
    // Refused before parsing: the one byte over the limit.
    let mut too_large = max_fields(" ");
    too_large.push(b' ');
    bodies.push(("too_large_8193", too_large, "too_large"));
    for (name, body, expected) in &bodies {
        let got = match parse_registration(body) {
            Ok(_) => "ok",
            Err(e) => e.code(),
        };
        assert_eq!(got, *expected, "{name}");
    }
    bodies
}

fn bench_parse_registration(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse_registration");
    for (name, body, _) in hostile_bodies() {
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &body, |b, body| {
            b.iter(|| parse_registration(black_box(body)))
        });
    }
    group.finish();
}

// --- rendering ---------------------------------------------------------------------

fn bench_render(c: &mut Criterion) {
    let mut group = c.benchmark_group("render");
    // Some take a millisecond: 20 samples (see bench_rotation).
    group.sample_size(20);
    // A JID is at most 3071 bytes (three 1023-byte parts and two separators);
    // these are all markup, the worst case for escaping.
    let long = "<&>\"'".repeat(614);
    group.bench_function("register_ok_two_3k_strings_of_markup", |b| {
        b.iter(|| render::register_ok(black_box(&long), black_box(&long)))
    });
    group.bench_function("error_3k_reason_of_markup", |b| {
        b.iter(|| render::error(black_box("register"), black_box(&long)))
    });
    let agents: Vec<String> = (0..1000)
        .map(|i| format!("agent{i:04}@helpdesk.example.com"))
        .collect();
    group.bench_function("connected_users_1000_agents", |b| {
        b.iter(|| render::connected_users(black_box(&agents)))
    });
    let long_agents: Vec<String> = (0..1000)
        .map(|i| format!("{}{i:04}@{}", "é".repeat(125), "h".repeat(250)))
        .collect();
    group.bench_function("connected_users_1000_agents_500_bytes_each", |b| {
        b.iter(|| render::connected_users(black_box(&long_agents)))
    });
    let markup_agents: Vec<String> = (0..1000).map(|_| "<&>\"'".repeat(60)).collect();
    group.bench_function("connected_users_1000_names_of_300_bytes_markup", |b| {
        b.iter(|| render::connected_users(black_box(&markup_agents)))
    });
    let many: Vec<String> = (0..10_000)
        .map(|i| format!("agent{i:05}@helpdesk.example.com"))
        .collect();
    group.bench_function("connected_users_10000_agents", |b| {
        b.iter(|| render::connected_users(black_box(&many)))
    });
    group.finish();
}

// --- rotation ----------------------------------------------------------------------

const AGENTS: usize = 10_000;
const MAX_SESSIONS: u32 = 5;

fn agent_names() -> Vec<String> {
    (0..AGENTS)
        .map(|i| format!("agent{i:05}@helpdesk.example.com"))
        .collect()
}

/// 10,000 agents online, each with a free slot.
fn full_rotation(names: &[String]) -> Rotation {
    let mut rotation = Rotation::new(MAX_SESSIONS, Routing::RoundRobin);
    for name in names {
        rotation.resource_available(name, "desk");
    }
    rotation
}

/// Every agent goes away and comes back `rounds` times, in turn: the FIFO
/// keeps stale entries until they reach its head or a compaction drops them.
fn flip_all(rotation: &mut Rotation, names: &[String], rounds: usize) {
    for _ in 0..rounds {
        for name in names {
            rotation.resource_unavailable(name, "desk");
            rotation.resource_available(name, "desk");
        }
    }
}

/// Times `op` alone, `iters` times, on a state `step` brings back after
/// each call (untimed).
fn timed<S>(
    state: &mut S,
    iters: u64,
    mut op: impl FnMut(&mut S),
    mut step: impl FnMut(&mut S),
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let start = Instant::now();
        op(state);
        total += start.elapsed();
        step(state);
    }
    total
}

/// A rotation under benchmark, with a cursor over the agents' names and
/// the last agent picked.
struct Bench<'a> {
    r: Rotation,
    names: &'a [String],
    next: usize,
    picked: String,
}

impl Bench<'_> {
    fn advance(&mut self) {
        self.next = (self.next + 1) % self.names.len();
    }
}

fn bench_rotation(c: &mut Criterion) {
    let names = agent_names();
    let mut group = c.benchmark_group("rotation_10000_agents");
    let flipped = |rounds| {
        let mut r = full_rotation(&names);
        flip_all(&mut r, &names, rounds);
        Bench {
            r,
            names: &names,
            next: 0,
            picked: String::new(),
        }
    };

    // pick, then release what was picked (untimed): every agent stays free.
    let mut bench = flipped(100);
    group.bench_function("pick_after_1M_away_back_flips", |b| {
        b.iter_custom(|iters| {
            timed(
                &mut bench,
                iters,
                |s| s.picked = black_box(s.r.pick()).expect("an agent is free"),
                |s| assert_eq!(s.r.release(&s.picked), Release::Freed),
            )
        })
    });

    // release of a loaded agent, then restore (untimed) its visitor.
    let mut bench = flipped(100);
    for _ in 0..AGENTS {
        bench.r.pick();
    }
    group.bench_function("release_after_1M_away_back_flips", |b| {
        b.iter_custom(|iters| {
            timed(
                &mut bench,
                iters,
                |s| {
                    let name = &s.names[s.next];
                    black_box(s.r.release(name));
                },
                |s| {
                    let name = &s.names[s.next];
                    s.r.restore(name);
                    s.advance();
                },
            )
        })
    });

    // An agent goes away (resource_unavailable, which may compact the
    // FIFO) and comes back (resource_available, at the tail), each timed.
    let mut bench = flipped(100);
    group.bench_function("resource_unavailable_away_flip", |b| {
        b.iter_custom(|iters| {
            timed(
                &mut bench,
                iters,
                |s| {
                    let name = &s.names[s.next];
                    s.r.resource_unavailable(black_box(name), "desk");
                },
                |s| {
                    let name = &s.names[s.next];
                    s.r.resource_available(name, "desk");
                    s.advance();
                },
            )
        })
    });
    // Starts with every agent available: the first call is a no-op.
    group.bench_function("resource_available_back_flip", |b| {
        b.iter_custom(|iters| {
            timed(
                &mut bench,
                iters,
                |s| {
                    let name = &s.names[s.next];
                    s.r.resource_available(black_box(name), "desk");
                },
                |s| {
                    s.advance();
                    let name = &s.names[s.next];
                    s.r.resource_unavailable(name, "desk");
                },
            )
        })
    });
    group.bench_function("resource_available_second_resource", |b| {
        b.iter_custom(|iters| {
            timed(
                &mut bench,
                iters,
                |s| {
                    let name = &s.names[s.next];
                    s.r.resource_available(black_box(name), "phone");
                },
                |s| {
                    let name = &s.names[s.next];
                    s.r.resource_unavailable(name, "phone");
                    s.advance();
                },
            )
        })
    });

    group.finish();

    // The O(agents) calls: the status command's queue and loads, and a
    // capacity change. A millisecond or two each: 20 samples (criterion's
    // 100 would take 5050 iterations, 10 s each).
    let mut group = c.benchmark_group("rotation_10000_agents_whole");
    group.sample_size(20);
    let mut rotation = full_rotation(&names);
    flip_all(&mut rotation, &names, 10);
    group.bench_function("queue", |b| b.iter(|| black_box(rotation.queue())));
    group.bench_function("loads", |b| b.iter(|| black_box(rotation.loads())));
    let mut max = MAX_SESSIONS;
    group.bench_function("set_max_sessions", |b| {
        b.iter(|| {
            max = if max == MAX_SESSIONS { 6 } else { MAX_SESSIONS };
            rotation.set_max_sessions(black_box(max));
        })
    });
    group.finish();
}

// --- longest single calls ----------------------------------------------------------

/// Median, 99.9th percentile and longest of `samples`.
fn summary(mut samples: Vec<Duration>) -> [Duration; 3] {
    samples.sort();
    let at = |per_mille: usize| samples[(samples.len() * per_mille / 1000).min(samples.len() - 1)];
    [at(500), at(999), *samples.last().expect("samples")]
}

fn row(what: &str, calls: usize, times: [Duration; 3]) {
    let [median, p999, max] = times.map(|t| t.as_secs_f64() * 1e6);
    println!("{what:<72} {calls:>8} {median:>9.1} {p999:>9.1} {max:>9.1}");
}

/// One call to `op` per setup, timed alone, `rounds` times.
fn worst_of<S>(
    rounds: usize,
    mut setup: impl FnMut() -> S,
    mut op: impl FnMut(&mut S),
) -> Vec<Duration> {
    (0..rounds)
        .map(|_| {
            let mut state = setup();
            let start = Instant::now();
            op(&mut state);
            let elapsed = start.elapsed();
            drop(black_box(state));
            elapsed
        })
        .collect()
}

/// Every call of a long mixed sequence on 10,000 agents, timed one by one,
/// the longest reported per operation: what an unlucky caller waits.
fn longest_single_calls() {
    println!();
    println!("Longest single calls (each timed alone with Instant; microseconds)");
    println!(
        "{:<72} {:>8} {:>9} {:>9} {:>9}",
        "call", "calls", "median", "p99.9", "max"
    );
    let names = agent_names();

    // A pick after the first 4990 agents of the FIFO went away and came
    // back (to the tail): the former lazily-deleted FIFO had 4990
    // stale entries to skip at its head here.
    row(
        "pick after the FIFO's first 4990 of 10k agents left and came back",
        20,
        summary(worst_of(
            20,
            || {
                let mut r = full_rotation(&names);
                for name in &names[..4990] {
                    r.resource_unavailable(name, "desk");
                }
                for name in &names[..4990] {
                    r.resource_available(name, "desk");
                }
                r
            },
            |r| {
                black_box(r.pick());
            },
        )),
    );
    // A departure after 10,015 away/back flips: a lazily-deleted FIFO
    // (the former one) then held 10,015 stale entries, and this departure
    // compacted all 20,015.
    row(
        "resource_unavailable after 10,015 away/back flips (10k agents)",
        20,
        summary(worst_of(
            20,
            || {
                let mut r = full_rotation(&names);
                for name in names.iter().cycle().take(AGENTS + 15) {
                    r.resource_unavailable(name, "desk");
                    r.resource_available(name, "desk");
                }
                r
            },
            |r| r.resource_unavailable(&names[AGENTS / 2], "desk"),
        )),
    );

    // A long random sequence after 1M flips, every call timed.
    let mut r = full_rotation(&names);
    flip_all(&mut r, &names, 100);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut random = move |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    let (mut picks, mut releases, mut aways, mut backs) = (vec![], vec![], vec![], vec![]);
    let mut assigned: Vec<String> = Vec::new();
    for _ in 0..400_000 {
        let name = &names[random(AGENTS)];
        match random(4) {
            0 => {
                let start = Instant::now();
                let got = black_box(r.pick());
                picks.push(start.elapsed());
                assigned.extend(got);
            }
            1 if !assigned.is_empty() => {
                let agent = assigned.swap_remove(random(assigned.len()));
                let start = Instant::now();
                black_box(r.release(&agent));
                releases.push(start.elapsed());
            }
            2 => {
                let start = Instant::now();
                r.resource_unavailable(name, "desk");
                aways.push(start.elapsed());
            }
            _ => {
                let start = Instant::now();
                r.resource_available(name, "desk");
                backs.push(start.elapsed());
            }
        }
    }
    let mixed = "10k agents, 400k random ops after 1M flips:";
    row(&format!("{mixed} pick"), picks.len(), summary(picks));
    row(
        &format!("{mixed} release"),
        releases.len(),
        summary(releases),
    );
    row(
        &format!("{mixed} resource_unavailable"),
        aways.len(),
        summary(aways),
    );
    row(
        &format!("{mixed} resource_available"),
        backs.len(),
        summary(backs),
    );

    // O(agents) calls.
    let mut r = full_rotation(&names);
    let times: Vec<Duration> = (0..50)
        .map(|_| {
            let start = Instant::now();
            black_box(r.queue());
            start.elapsed()
        })
        .collect();
    row("queue, 10k agents", 50, summary(times));
    let times: Vec<Duration> = (0..50)
        .map(|_| {
            let start = Instant::now();
            black_box(r.loads());
            start.elapsed()
        })
        .collect();
    row("loads, 10k agents", 50, summary(times));
    let times: Vec<Duration> = (0..50)
        .map(|i| {
            let start = Instant::now();
            r.set_max_sessions(MAX_SESSIONS + (i % 2));
            start.elapsed()
        })
        .collect();
    row("set_max_sessions, 10k agents", 50, summary(times));

    desk_calls();

    // Every input the fuzzer kept for the parser (the committed seeds and,
    // after a `test/fuzz.sh` run, its working corpus): each parsed 21
    // times, its median kept (a single run can be preempted), and the
    // slowest input reported.
    let fuzz = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let inputs: Vec<Vec<u8>> = ["corpus/registration", "work/registration"]
        .iter()
        .filter_map(|dir| std::fs::read_dir(fuzz.join(dir)).ok())
        .flatten()
        .filter_map(|entry| std::fs::read(entry.ok()?.path()).ok())
        .collect();
    let medians: Vec<Duration> = inputs
        .iter()
        .map(|body| {
            let times: Vec<Duration> = (0..21)
                .map(|_| {
                    let start = Instant::now();
                    let _ = black_box(parse_registration(black_box(body)));
                    start.elapsed()
                })
                .collect();
            summary(times)[0]
        })
        .collect();
    if !medians.is_empty() {
        let what = format!(
            "parse_registration, {} fuzz corpus inputs (per input: median of 21)",
            inputs.len()
        );
        row(&what, medians.len(), summary(medians));
    }

    archive_calls();

    // Every hostile body, 200 times each.
    for (name, body, _) in hostile_bodies() {
        let times: Vec<Duration> = (0..200)
            .map(|_| {
                let start = Instant::now();
                let _ = black_box(parse_registration(black_box(&body)));
                start.elapsed()
            })
            .collect();
        row(&format!("parse_registration {name}"), 200, summary(times));
    }
    println!();
}

/// `archive_message` on an embedded archive, 500 messages of 64 KiB spread
/// over 500 conversations (the writer thread commits them meanwhile, as it would
/// in ejabberd).
/// The desk calls whose answer lists every visitor who moved in line: a
/// release with the line full behind one busy agent moves everyone, as
/// does the head leaving. O(line), on a normal scheduler: how long a line
/// stays within the ~1 ms.
fn desk_calls() {
    for waiting in [1_000, 10_000] {
        let mut desk = Desk::new(1, Routing::RoundRobin, u64::MAX);
        desk.resource_available("agent", "desk", 0);
        for v in 0..=waiting {
            desk.enter(&format!("visitor{v}@clients.example.com"), 0);
        }
        let mut next = waiting + 1;
        let (releases, leaves): (Vec<Duration>, Vec<Duration>) = (0..50)
            .map(|now_ms| {
                let start = Instant::now();
                black_box(desk.release("agent", Some(60_000), now_ms));
                let release = start.elapsed();
                let head = desk.line(now_ms)[0].visitor.clone();
                let start = Instant::now();
                black_box(desk.leave(&head, now_ms));
                let leave = start.elapsed();
                for _ in 0..2 {
                    desk.enter(&format!("visitor{next}@clients.example.com"), now_ms);
                    next += 1;
                }
                (release, leave)
            })
            .unzip();
        row(
            &format!("desk release, {waiting} waiting all move up"),
            50,
            summary(releases),
        );
        row(
            &format!("desk leave of the head, {waiting} waiting"),
            50,
            summary(leaves),
        );
    }
}

fn archive_calls() {
    let dir = std::env::temp_dir().join(format!("clicktochat-bench-{}", std::process::id()));
    let archive = Archive::open(ArchiveConfig {
        path: dir.join("archive.redb"),
        store: StoreConfig::Embedded,
    })
    .expect("open the archive");
    let visitors: Vec<String> = (0..AGENTS)
        .map(|i| format!("visitor{i:05}@clients.example.com"))
        .collect();
    let agent = "agent1@helpdesk.example.com";
    let body = "é".repeat(32 * 1024);
    let messages: Vec<Duration> = (0..500)
        .map(|i| {
            let conversation = Conversation {
                visitor: &visitors[i * 7919 % AGENTS],
                agent,
                start_us: 1_795_612_320_000_000,
            };
            let direction = if i % 2 == 0 {
                Direction::FromVisitor
            } else {
                Direction::FromAgent
            };
            let start = Instant::now();
            let captured = archive.message(
                &conversation,
                direction,
                &body,
                1_795_612_320_000_000 + i as i64,
            );
            let elapsed = start.elapsed();
            assert_eq!(captured, Captured::Recorded);
            elapsed
        })
        .collect();
    archive.close();
    let _ = std::fs::remove_dir_all(&dir);
    row(
        "archive_message, 64 KiB body, 500 conversations, writer busy",
        messages.len(),
        summary(messages),
    );
}

fn main() {
    longest_single_calls();
    let mut criterion = Criterion::default().configure_from_args();
    bench_parse_registration(&mut criterion);
    bench_render(&mut criterion);
    bench_rotation(&mut criterion);
    criterion.final_summary();
}
