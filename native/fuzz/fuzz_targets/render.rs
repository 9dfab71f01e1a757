//! The response renderer with arbitrary strings: `register_ok`,
//! `register_waiting`, `error`, `connected_users` (the `render_*` NIFs) and `conversations` (the archive
//! read). Every output must be well-formed XML 1.0 and parse back with
//! quick-xml to exactly what went in, but for the characters XML cannot
//! carry, which come back as U+FFFD.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use clicktochat_core::calendar::format_rfc3339_micros;
use clicktochat_core::render;
use clicktochat_fuzz::{elements, is_xml_char, record, without_xml_space, Element};
use libfuzzer_sys::fuzz_target;

fn texts(doc: &str) -> Vec<(String, String)> {
    elements(doc)
        .into_iter()
        .map(|Element { name, text, .. }| (name, text))
        .collect()
}

/// What the renderer promises to write for a text.
fn as_written(text: &str) -> String {
    text.chars()
        .map(|c| {
            let forbidden = (c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
                || matches!(c, '\u{FFFE}' | '\u{FFFF}');
            if forbidden {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect()
}

fn pair(name: &str, text: &str) -> (String, String) {
    (name.to_owned(), as_written(text))
}

/// Whatever the inputs, a document holds only characters XML 1.0 allows.
fn check_chars(doc: &str, _inputs: &[&str]) {
    assert!(doc.chars().all(is_xml_char), "{doc:?}");
}

fn is_simple_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok((from, to, root, reason)) = <(String, String, String, String)>::arbitrary(&mut u) else {
        return;
    };

    let doc = render::register_ok(&from, &to);
    check_chars(&doc, &[&from, &to]);
    assert_eq!(
        texts(&doc),
        [
            pair("register", ""),
            pair("status", "ok"),
            pair("from", &from),
            pair("to", &to)
        ]
    );

    let doc = render::error(&root, &reason);
    check_chars(&doc, &[&reason]);
    let root_name = if is_simple_name(&root) {
        root.as_str()
    } else {
        "error"
    };
    assert_eq!(
        texts(&doc),
        [
            pair(root_name, ""),
            pair("status", "error"),
            pair("reason", &reason)
        ]
    );

    let Ok((position, estimate)) = <(u64, Option<u64>)>::arbitrary(&mut u) else {
        return;
    };
    let doc = render::register_waiting(&from, position, estimate);
    check_chars(&doc, &[&from]);
    let mut expected = vec![
        pair("register", ""),
        pair("status", "waiting"),
        pair("from", &from),
        pair("position", &position.to_string()),
    ];
    expected.extend(estimate.map(|s| pair("estimated_wait", &s.to_string())));
    assert_eq!(texts(&doc), expected);

    let Ok(names) = Vec::<String>::arbitrary(&mut u) else {
        return;
    };
    let doc = render::connected_users(&names);
    check_chars(&doc, &names.iter().map(String::as_str).collect::<Vec<_>>());
    let expected: Vec<_> = std::iter::once(pair("connected_users", ""))
        .chain(names.iter().map(|n| pair("username", n)))
        .collect();
    assert_eq!(texts(&doc), expected);

    let Ok(agent) = String::arbitrary(&mut u) else {
        return;
    };
    let Ok(records) = (0..u.int_in_range(0..=3).unwrap_or(0))
        .map(|_| record(&mut u))
        .collect::<Result<Vec<_>, _>>()
    else {
        return;
    };
    let doc = render::conversations(&agent, &records);
    let encoded: Vec<String> = records
        .iter()
        .flat_map(|r| r.entries.iter().map(|e| e.encode()))
        .collect();
    let mut inputs: Vec<&str> = vec![&agent];
    inputs.extend(records.iter().map(|r| r.user.as_str()));
    inputs.extend(encoded.iter().map(String::as_str));
    check_chars(&doc, &inputs);
    let found = elements(&doc);
    assert_eq!(found[0].name, "conversations");
    let attributes: Vec<_> = found[0]
        .attributes
        .iter()
        .map(|(name, value)| (name.as_str(), without_xml_space(value)))
        .collect();
    assert_eq!(
        attributes,
        [("agent", without_xml_space(&as_written(&agent)))]
    );
    let mut expected = vec![pair("conversations", "")];
    for r in &records {
        expected.push(pair("record", ""));
        expected.push(pair("current_time", &format_rfc3339_micros(r.start_us)));
        expected.push(pair("user", &r.user));
        expected.push(pair("conversation", ""));
        expected.extend(r.entries.iter().map(|e| pair("entry", &e.encode())));
    }
    let found: Vec<_> = found.into_iter().map(|e| (e.name, e.text)).collect();
    assert_eq!(found, expected);
});
