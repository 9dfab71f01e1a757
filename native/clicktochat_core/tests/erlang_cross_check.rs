//! Cross-checks against real Erlang/OTP (`erl` on the PATH; CI installs it):
//! what `term_to_binary` writes decodes to the same term here, what `encode`
//! writes `binary_to_term` reads as the same term, an archive means the same
//! on both sides, and timestamps agree with Erlang's `calendar`. Without erl
//! these tests fail.

use clicktochat_core::calendar::{format_rfc3339_micros, MAX_UNIX_US, MIN_UNIX_US};
use clicktochat_core::conversation::Entry;
use clicktochat_core::etf::{decode, encode, EtfError, Term};
use clicktochat_core::records::{decode_archive, encode_archive, Record};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;

mod common;
use common::{erlang_expression, from_hex, instant, run_erlang, term, to_hex};

fn atom(name: &str) -> Term {
    Term::Atom(name.to_owned())
}

fn binary(text: &str) -> Term {
    Term::Binary(text.as_bytes().to_vec())
}

fn pair(key: &str, value: Term) -> Term {
    Term::Tuple(vec![atom(key), value])
}

/// `count` values of `strategy`, the same on every run.
fn samples<S: Strategy>(strategy: S, count: usize) -> Vec<S::Value> {
    let mut runner = TestRunner::deterministic();
    (0..count)
        .map(|_| {
            strategy
                .new_tree(&mut runner)
                .expect("generate a value")
                .current()
        })
        .collect()
}

/// The lines erl printed after `marker `.
fn marked_lines<'a>(output: &'a str, marker: &str) -> Vec<&'a str> {
    output
        .lines()
        .filter_map(|line| line.strip_prefix(marker)?.strip_prefix(' '))
        .collect()
}

const SEED_ENTRY: &str = "|current_time^2026-11-25T13:12:00.123456Z|from^v@clients.localhost|to^agent1@helpdesk.localhost|msg^50%25 off %7C today|";

#[test]
fn seed_archive_term_agrees_with_erlang() {
    let expected = Term::List(vec![pair(
        "record",
        Term::List(vec![Term::List(vec![
            pair("current_time", binary("2026-11-25T13:12:00.123456Z")),
            pair("user", binary("v@clients.localhost")),
            pair("conversation", Term::List(vec![binary(SEED_ENTRY)])),
        ])]),
    )]);
    let ours = to_hex(&encode(&expected));
    let output = run_erlang(
        "seed_archive",
        &format!(
            r#"T = [{{record, [[{{current_time, <<"2026-11-25T13:12:00.123456Z">>}},
                               {{user, <<"v@clients.localhost">>}},
                               {{conversation, [<<"{SEED_ENTRY}">>]}}]]}}],
            io:format("default ~s~n", [binary:encode_hex(term_to_binary(T))]),
            io:format("minor2 ~s~n", [binary:encode_hex(term_to_binary(T, [{{minor_version, 2}}]))]),
            io:format("compressed ~s~n", [binary:encode_hex(term_to_binary(T, [compressed]))]),
            io:format("ours ~p~n", [binary_to_term(binary:decode_hex(<<"{ours}">>)) =:= T])"#
        ),
    );
    for marker in ["default", "minor2"] {
        let lines = marked_lines(&output, marker);
        assert_eq!(lines.len(), 1, "{output}");
        assert_eq!(
            decode(&from_hex(lines[0])),
            Ok(expected.clone()),
            "{marker}"
        );
    }
    // OTP 25 writes these atoms as ATOM_EXT (100), minor_version 2 as
    // SMALL_ATOM_UTF8_EXT (119): both forms were exercised above.
    assert!(
        marked_lines(&output, "default")[0].contains("640006"),
        "{output}"
    );
    assert!(
        marked_lines(&output, "minor2")[0].contains("7706"),
        "{output}"
    );
    let compressed = from_hex(marked_lines(&output, "compressed")[0]);
    assert_eq!(
        decode(&compressed),
        Err(EtfError::UnsupportedTag { tag: 80, offset: 1 })
    );
    assert_eq!(marked_lines(&output, "ours"), ["true"], "{output}");
}

/// The archive written here is the term an Erlang user would build by hand
/// (entry text spelled out independently, escapes and UTF-8 included), and
/// the one Erlang writes decodes to the same records.
#[test]
fn archive_agrees_with_erlang() {
    let records = vec![
        Record {
            start_us: 1_795_612_320_000_000,
            user: "v@clients.localhost".to_owned(),
            entries: vec![
                Entry {
                    time_us: 1_795_612_320_123_456,
                    from: "v@clients.localhost".to_owned(),
                    to: "agent1@helpdesk.localhost".to_owned(),
                    msg: "héllo | 100% ^_^\nbye".to_owned(),
                },
                Entry {
                    time_us: 1_795_612_321_000_000,
                    from: "agent1@helpdesk.localhost".to_owned(),
                    to: "v@clients.localhost".to_owned(),
                    msg: "<b>&amp;</b>".to_owned(),
                },
            ],
        },
        Record {
            start_us: 1_795_612_400_000_001,
            user: "w@clients.localhost".to_owned(),
            entries: vec![],
        },
    ];
    let ours = to_hex(&encode_archive(&records));
    let output = run_erlang(
        "archive",
        &format!(
            r#"E1 = <<"|current_time^2026-11-25T13:12:00.123456Z|from^v@clients.localhost",
                     "|to^agent1@helpdesk.localhost|msg^h", 233/utf8, "llo %7C 100%25 %5E_%5E\nbye|">>,
            E2 = <<"|current_time^2026-11-25T13:12:01.000000Z|from^agent1@helpdesk.localhost",
                   "|to^v@clients.localhost|msg^<b>&amp;</b>|">>,
            Expected = [{{record, [[{{current_time, <<"2026-11-25T13:12:00.000000Z">>}},
                                   {{user, <<"v@clients.localhost">>}},
                                   {{conversation, [E1, E2]}}],
                                  [{{current_time, <<"2026-11-25T13:13:20.000001Z">>}},
                                   {{user, <<"w@clients.localhost">>}},
                                   {{conversation, []}}]]}}],
            io:format("ours ~p~n", [binary_to_term(binary:decode_hex(<<"{ours}">>)) =:= Expected]),
            io:format("theirs ~s~n", [binary:encode_hex(term_to_binary(Expected))])"#
        ),
    );
    assert_eq!(marked_lines(&output, "ours"), ["true"], "{output}");
    let theirs = marked_lines(&output, "theirs");
    assert_eq!(theirs.len(), 1, "{output}");
    assert_eq!(decode_archive(&from_hex(theirs[0])), Ok(records));
}

#[test]
fn random_terms_agree_with_erlang() {
    let terms = samples(term(), 300);
    let expressions: Vec<String> = terms.iter().map(erlang_expression).collect();
    let ours: Vec<String> = terms
        .iter()
        .map(|t| format!("<<\"{}\">>", to_hex(&encode(t))))
        .collect();
    let output = run_erlang(
        "random_terms",
        &format!(
            "Terms = [{}],
            Ours = [{}],
            lists:foreach(
                fun({{T, Hex}}) ->
                    io:format(\"theirs ~s~n\", [binary:encode_hex(term_to_binary(T))]),
                    io:format(\"ours ~p~n\", [binary_to_term(binary:decode_hex(Hex)) =:= T])
                end,
                lists:zip(Terms, Ours))",
            expressions.join(",\n"),
            ours.join(",\n"),
        ),
    );
    let theirs = marked_lines(&output, "theirs");
    let ours_read = marked_lines(&output, "ours");
    assert_eq!(theirs.len(), terms.len(), "{output}");
    assert_eq!(ours_read.len(), terms.len(), "{output}");
    for ((t, their_hex), ours_ok) in terms.iter().zip(theirs).zip(ours_read) {
        assert_eq!(
            decode(&from_hex(their_hex)).as_ref(),
            Ok(t),
            "term_to_binary({t:?})"
        );
        assert_eq!(ours_ok, "true", "binary_to_term(encode({t:?}))");
    }
}

/// Erlang's `calendar` converts each instant on its own: whole seconds with
/// `gregorian_seconds_to_datetime`, and, where it is right, the whole
/// string with `system_time_to_rfc3339`. OTP 25's `system_time_to_rfc3339`
/// is wrong for negative times with a fraction (-1 µs gives
/// `1970-01-01T00:00:00.000001Z`, -1.5 s gives `1969-12-31T23:59:59.500000Z`),
/// so it is compared only where the fraction is zero or the time positive.
#[test]
fn timestamps_agree_with_erlang_calendar() {
    let mut instants = samples(instant(), 300);
    instants.extend([
        MIN_UNIX_US,
        MAX_UNIX_US,
        0,
        -1,
        1,
        -1_500_000,
        951_782_400_000_000,
        -2_208_988_800_000_000,
        -2_208_988_800_000_001,
    ]);
    let list: Vec<String> = instants.iter().map(i64::to_string).collect();
    let output = run_erlang(
        "timestamps",
        &format!(
            "lists:foreach(
                fun(Us) ->
                    Fraction = (Us rem 1000000 + 1000000) rem 1000000,
                    Seconds = (Us - Fraction) div 1000000,
                    {{{{Y, Mo, D}}, {{H, Mi, S}}}} =
                        calendar:gregorian_seconds_to_datetime(Seconds + 62167219200),
                    io:format(\"datetime ~4..0B-~2..0B-~2..0BT~2..0B:~2..0B:~2..0B.~6..0BZ~n\",
                              [Y, Mo, D, H, Mi, S, Fraction]),
                    io:format(\"rfc3339 ~s~n\", [calendar:system_time_to_rfc3339(
                        Us, [{{unit, microsecond}}, {{offset, \"Z\"}}])])
                end,
                [{}])",
            list.join(",")
        ),
    );
    let by_datetime = marked_lines(&output, "datetime");
    let by_rfc3339 = marked_lines(&output, "rfc3339");
    assert_eq!(by_datetime.len(), instants.len(), "{output}");
    assert_eq!(by_rfc3339.len(), instants.len(), "{output}");
    for ((&unix_us, datetime), rfc3339) in instants.iter().zip(by_datetime).zip(by_rfc3339) {
        let ours = format_rfc3339_micros(unix_us);
        assert_eq!(ours, datetime, "{unix_us}");
        if unix_us >= 0 || unix_us % 1_000_000 == 0 {
            assert_eq!(ours, rfc3339, "{unix_us}");
        }
    }
}
