//! Property tests of the registration parser and the renderer: no input
//! makes the parser panic, valid fields survive XML escaping exactly, and a
//! rendered response always parses back to the values that went in.

use clicktochat_core::{parse_registration, render, Registration};
use proptest::prelude::*;
use quick_xml::escape::escape;

/// Usernames a JID node can hold: no metacharacters, whitespace or controls.
fn username() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9._+\\-éü€]{1,40}"
}

/// Any printable password, XML specials included.
fn password() -> impl Strategy<Value = String> {
    "[ -~é€]{1,60}"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn never_panics_on_bytes(body in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = parse_registration(&body);
    }

    #[test]
    fn never_panics_on_xmlish_text(body in "(<|>|/|&|;|#|x|registration|username|password|<!|\\[|\\]|'|\"|=| |a|é|\\?|-)*") {
        let _ = parse_registration(body.as_bytes());
    }

    #[test]
    fn escaped_fields_round_trip(u in username(), p in password()) {
        let body = format!(
            "<?xml version='1.0'?><registration><username>{}</username><password>{}</password></registration>",
            escape(u.as_str()), escape(p.as_str())
        );
        prop_assert_eq!(parse_registration(body.as_bytes()), Ok(Registration { username: u, password: p }));
    }

    #[test]
    fn rendered_register_parses_back(from in "[ -~é]{0,40}", to in "[ -~é]{0,40}") {
        let doc = render::register_ok(&from, &to);
        let mut reader = quick_xml::Reader::from_str(&doc);
        let mut texts = Vec::new();
        let mut current = String::new();
        loop {
            match reader.read_event() {
                Ok(quick_xml::events::Event::Eof) => break,
                Ok(quick_xml::events::Event::Text(t)) => current.push_str(&t.xml10_content()),
                Ok(quick_xml::events::Event::GeneralRef(r)) => {
                    current.push_str(quick_xml::escape::resolve_predefined_entity(&r).expect("predefined"))
                }
                Ok(quick_xml::events::Event::End(_)) => texts.push(std::mem::take(&mut current)),
                Ok(_) => {}
                Err(e) => prop_assert!(false, "rendered XML does not parse: {e}"),
            }
        }
        prop_assert_eq!(texts, vec!["ok".to_owned(), from, to, String::new()]);
    }
}
