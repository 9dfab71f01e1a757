//! Shared by the integration tests: generators of entries and terms, a
//! way to run Erlang/OTP code and read what it prints, and the naive
//! rotation the rotation and desk properties are checked against.
//!
//! Each test binary uses only part of this module.
#![allow(dead_code)]

pub mod naive_rotation;

use clicktochat_core::calendar::{MAX_UNIX_US, MIN_UNIX_US};
use clicktochat_core::conversation::Entry;
use clicktochat_core::etf::{Term, MAX_ATOM_CHARS};
use proptest::prelude::*;
use std::path::PathBuf;
use std::process::Command;

/// Text made of the characters the entry escaping is about, and of
/// sequences that look like escapes.
const PIECES: [&str; 14] = [
    "|", "^", "%", "%25", "%7C", "%5e", "\n", "\r\n", "é", "€", "🙂", "<", "&", "a",
];

/// Any text, with `PIECES` made frequent: uniformly random text would rarely
/// hold them. (Built from chars and pieces: `any::<String>()` and regex
/// strategies are an order of magnitude slower in a debug build.)
pub fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(any::<char>(), 0..40).prop_map(String::from_iter),
        prop::collection::vec(prop::sample::select(&PIECES[..]), 0..24)
            .prop_map(|pieces| pieces.concat()),
    ]
}

/// Any instant the timestamp format can express.
pub fn instant() -> impl Strategy<Value = i64> {
    MIN_UNIX_US..=MAX_UNIX_US
}

pub fn entry() -> impl Strategy<Value = Entry> {
    (instant(), text(), text(), text()).prop_map(|(time_us, from, to, msg)| Entry {
        time_us,
        from,
        to,
        msg,
    })
}

/// Integers around every boundary where the encoding changes, and any i64.
pub fn integer() -> impl Strategy<Value = i64> {
    const BOUNDARIES: [i64; 11] = [
        0,
        255,
        256,
        -1,
        i32::MAX as i64,
        i32::MAX as i64 + 1,
        i32::MIN as i64,
        i32::MIN as i64 - 1,
        i64::MAX,
        i64::MIN,
        i64::MIN + 1,
    ];
    prop_oneof![
        prop::sample::select(&BOUNDARIES[..]),
        -300i64..300,
        any::<i64>(),
    ]
}

/// Atom names Erlang accepts: up to 255 characters of any kind, mostly short.
pub fn atom_name() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => "[a-z_]{0,12}",
        4 => prop::collection::vec(any::<char>(), 0..12).prop_map(String::from_iter),
        1 => prop::collection::vec(any::<char>(), 0..=MAX_ATOM_CHARS).prop_map(String::from_iter),
    ]
}

/// Terms of every kind, nested a few levels, with the odd large tuple.
pub fn term() -> impl Strategy<Value = Term> {
    let leaf = prop_oneof![
        4 => atom_name().prop_map(Term::Atom),
        4 => prop::collection::vec(any::<u8>(), 0..16).prop_map(Term::Binary),
        4 => integer().prop_map(Term::Integer),
        1 => Just(Term::List(Vec::new())),
        1 => prop::collection::vec(integer().prop_map(Term::Integer), 250..300).prop_map(Term::Tuple),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Term::List),
            prop::collection::vec(inner, 0..8).prop_map(Term::Tuple),
        ]
    })
}

/// `term` as an Erlang expression. Atoms are built from their code points so
/// that the source is ASCII whatever the atom holds.
pub fn erlang_expression(term: &Term) -> String {
    let join = |terms: &[Term]| {
        terms
            .iter()
            .map(erlang_expression)
            .collect::<Vec<_>>()
            .join(",")
    };
    match term {
        Term::Atom(name) => {
            let code_points: Vec<String> = name.chars().map(|c| u32::from(c).to_string()).collect();
            format!("list_to_atom([{}])", code_points.join(","))
        }
        Term::Binary(bytes) => {
            let bytes: Vec<String> = bytes.iter().map(u8::to_string).collect();
            format!("<<{}>>", bytes.join(","))
        }
        Term::Integer(value) => value.to_string(),
        Term::List(elements) => format!("[{}]", join(elements)),
        Term::Tuple(elements) => format!("{{{}}}", join(elements)),
    }
}

/// Runs `expressions` (Erlang expressions separated by commas, no final
/// full stop) in a fresh `erl` and returns what they print. Panics, failing
/// the test, when erl is missing or the expressions fail: these tests are
/// the cross-check against real Erlang and must not pass without it.
pub fn run_erlang(name: &str, expressions: &str) -> String {
    // Through a file: the script can be larger than a command-line argument.
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}.erl-script"));
    std::fs::write(&path, format!("{expressions}.\n")).expect("write the Erlang script");
    let path = path.to_str().expect("a UTF-8 temporary path");
    assert!(
        !path.contains(['"', '\\']),
        "unusual temporary path {path:?}"
    );
    let eval = format!(
        "case file:script(\"{path}\") of \
             {{ok, _}} -> halt(0); \
             Error -> io:format(standard_error, \"~p~n\", [Error]), halt(1) \
         end."
    );
    let output = Command::new("erl")
        .args(["-noshell", "-eval", &eval])
        .output()
        .unwrap_or_else(|error| {
            panic!("cannot run erl ({error}): this test needs Erlang/OTP on the PATH")
        });
    let stdout = String::from_utf8(output.stdout).expect("erl prints UTF-8");
    assert!(
        output.status.success(),
        "erl failed ({}):\n{}\n{stdout}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

pub fn from_hex(hex: &str) -> Vec<u8> {
    assert!(hex.len().is_multiple_of(2), "odd hex {hex:?}");
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex digits"))
        .collect()
}
