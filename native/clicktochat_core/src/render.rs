//! The XML responses of the HTTP API, byte for byte the seed's formats:
//! `<?xml version='1.0'?>` then the document with no whitespace between
//! elements. Text is escaped, so no value can change the document's shape.

use crate::rotation::Availability;
use std::borrow::Cow;

/// Text as XML character data: escaped, and with the characters XML 1.0
/// cannot carry at all (controls other than tab, LF, CR; U+FFFE, U+FFFF)
/// replaced by U+FFFD, so that the document stays well formed whatever a
/// stored value holds.
fn escape(text: &str) -> Cow<'_, str> {
    let forbidden = |c: char| {
        (c.is_control() && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{FFFE}' | '\u{FFFF}')
    };
    if text.chars().any(forbidden) {
        let cleaned: String = text
            .chars()
            .map(|c| if forbidden(c) { '\u{FFFD}' } else { c })
            .collect();
        Cow::Owned(quick_xml::escape::escape(cleaned.as_str()).into_owned())
    } else {
        quick_xml::escape::escape(text)
    }
}

const PROLOG: &str = "<?xml version='1.0'?>";

/// The 201 answer to a registration: visitor JID and its agent's JID.
pub fn register_ok(from: &str, to: &str) -> String {
    let mut out = String::with_capacity(96 + from.len() + to.len());
    out.push_str(PROLOG);
    out.push_str("<register><status>ok</status><from>");
    out.push_str(&escape(from));
    out.push_str("</from><to>");
    out.push_str(&escape(to));
    out.push_str("</to></register>");
    out
}

/// The 202 answer to a registration that found every agent busy: the
/// visitor's JID, its place in line (from 1), and its estimated wait in
/// seconds, left out when unknown.
pub fn register_waiting(from: &str, position: u64, estimated_wait: Option<u64>) -> String {
    let mut out = String::with_capacity(160 + from.len());
    out.push_str(PROLOG);
    out.push_str("<register><status>waiting</status><from>");
    out.push_str(&escape(from));
    out.push_str(&format!("</from><position>{position}</position>"));
    push_estimated_wait(&mut out, estimated_wait);
    out.push_str("</register>");
    out
}

/// `<estimated_wait>S</estimated_wait>`, nothing when unknown.
fn push_estimated_wait(out: &mut String, estimated_wait: Option<u64>) {
    if let Some(seconds) = estimated_wait {
        out.push_str(&format!("<estimated_wait>{seconds}</estimated_wait>"));
    }
}

/// The answer to `/list`: one `<username>` per connected agent, in order.
pub fn connected_users<S: AsRef<str>>(usernames: &[S]) -> String {
    let mut out = String::with_capacity(64 + usernames.len() * 48);
    out.push_str(PROLOG);
    out.push_str("<connected_users>");
    for name in usernames {
        out.push_str("<username>");
        out.push_str(&escape(name.as_ref()));
        out.push_str("</username>");
    }
    out.push_str("</connected_users>");
    out
}

/// The answer to `/status`: what a public page may show before the click
/// (DESIGN.md). `estimated_wait` (seconds) is left out when unknown.
pub fn status(availability: Availability, waiting: u64, estimated_wait: Option<u64>) -> String {
    let mut out = format!(
        "{PROLOG}<status><agents_available>{}</agents_available><free_slots>{}</free_slots>\
         <waiting>{waiting}</waiting>",
        availability.agents_available, availability.free_slots
    );
    push_estimated_wait(&mut out, estimated_wait);
    out.push_str("</status>");
    out
}

/// An error document: `<root><status>error</status><reason>reason</reason></root>`.
/// `root` names the resource (`register`, `connected_users`, ...) and must be
/// an XML name; anything else falls back to `error` rather than emit a broken
/// document.
pub fn error(root: &str, reason: &str) -> String {
    let root = if is_simple_name(root) { root } else { "error" };
    let mut out = String::with_capacity(64 + 2 * root.len() + reason.len());
    out.push_str(PROLOG);
    out.push('<');
    out.push_str(root);
    out.push_str("><status>error</status><reason>");
    out.push_str(&escape(reason));
    out.push_str("</reason></");
    out.push_str(root);
    out.push('>');
    out
}

/// An agent's archive for `GET /clicktochat/conversations/<agent>`: each
/// record with its start, its visitor and its entries in the seed's format.
pub fn conversations(agent: &str, records: &[crate::records::Record]) -> String {
    let mut out = String::with_capacity(128 + records.len() * 256);
    out.push_str(PROLOG);
    out.push_str("<conversations agent=\"");
    out.push_str(&escape(agent));
    out.push_str("\">");
    for record in records {
        out.push_str("<record><current_time>");
        out.push_str(&crate::calendar::format_rfc3339_micros(record.start_us));
        out.push_str("</current_time><user>");
        out.push_str(&escape(record.user.as_str()));
        out.push_str("</user><conversation>");
        for entry in &record.entries {
            out.push_str("<entry>");
            out.push_str(&escape(entry.encode().as_str()));
            out.push_str("</entry>");
        }
        out.push_str("</conversation></record>");
    }
    out.push_str("</conversations>");
    out
}

/// The JSON forms of the same answers, for clients that speak JSON.
pub fn json_register_ok(from: &str, to: &str) -> String {
    serde_json::json!({"status": "ok", "from": from, "to": to}).to_string()
}

pub fn json_register_waiting(from: &str, position: u64, estimated_wait: Option<u64>) -> String {
    let mut waiting = serde_json::json!({"status": "waiting", "from": from, "position": position});
    insert_estimated_wait(&mut waiting, estimated_wait);
    waiting.to_string()
}

/// The `estimated_wait` key, left out when unknown.
fn insert_estimated_wait(answer: &mut serde_json::Value, estimated_wait: Option<u64>) {
    if let Some(seconds) = estimated_wait {
        answer["estimated_wait"] = seconds.into();
    }
}

pub fn json_connected_users<S: AsRef<str>>(usernames: &[S]) -> String {
    let names: Vec<&str> = usernames.iter().map(AsRef::as_ref).collect();
    serde_json::json!({ "connected_users": names }).to_string()
}

pub fn json_status(
    availability: Availability,
    waiting: u64,
    estimated_wait: Option<u64>,
) -> String {
    let mut status = serde_json::json!({
        "agents_available": availability.agents_available,
        "free_slots": availability.free_slots,
        "waiting": waiting,
    });
    insert_estimated_wait(&mut status, estimated_wait);
    status.to_string()
}

pub fn json_error(reason: &str) -> String {
    serde_json::json!({"status": "error", "reason": reason}).to_string()
}

fn is_simple_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_leaves_out_an_unknown_estimate() {
        let availability = Availability {
            agents_available: 3,
            free_slots: 7,
        };
        assert_eq!(
            status(availability, 0, None),
            "<?xml version='1.0'?><status><agents_available>3</agents_available>\
             <free_slots>7</free_slots><waiting>0</waiting></status>"
        );
        assert_eq!(
            status(availability, 2, Some(90)),
            "<?xml version='1.0'?><status><agents_available>3</agents_available>\
             <free_slots>7</free_slots><waiting>2</waiting>\
             <estimated_wait>90</estimated_wait></status>"
        );
        let json: serde_json::Value =
            serde_json::from_str(&json_status(availability, 0, None)).expect("JSON");
        assert_eq!(
            json,
            serde_json::json!({"agents_available": 3, "free_slots": 7, "waiting": 0})
        );
        let json: serde_json::Value =
            serde_json::from_str(&json_status(availability, 2, Some(90))).expect("JSON");
        assert_eq!(json["estimated_wait"], 90);
    }

    #[test]
    fn register_waiting_leaves_out_an_unknown_estimate() {
        assert_eq!(
            register_waiting("v@c", 3, Some(180)),
            "<?xml version='1.0'?><register><status>waiting</status><from>v@c</from>\
             <position>3</position><estimated_wait>180</estimated_wait></register>"
        );
        assert_eq!(
            register_waiting("<v>@c", 1, None),
            "<?xml version='1.0'?><register><status>waiting</status><from>&lt;v&gt;@c</from>\
             <position>1</position></register>"
        );
        assert_eq!(
            json_register_waiting("v@c", 3, Some(180)),
            r#"{"estimated_wait":180,"from":"v@c","position":3,"status":"waiting"}"#
        );
        assert_eq!(
            json_register_waiting("v\"@c", 1, None),
            r#"{"from":"v\"@c","position":1,"status":"waiting"}"#
        );
    }

    #[test]
    fn seed_formats() {
        assert_eq!(
            register_ok("my_client@clients.example.com", "user1@helpdesk.example.com"),
            "<?xml version='1.0'?><register><status>ok</status><from>my_client@clients.example.com</from>\
             <to>user1@helpdesk.example.com</to></register>"
        );
        assert_eq!(
            connected_users(&["a@h", "b@h"]),
            "<?xml version='1.0'?><connected_users><username>a@h</username><username>b@h</username></connected_users>"
        );
        assert_eq!(
            connected_users::<&str>(&[]),
            "<?xml version='1.0'?><connected_users></connected_users>"
        );
        assert_eq!(
            error("register", "exists"),
            "<?xml version='1.0'?><register><status>error</status><reason>exists</reason></register>"
        );
    }

    #[test]
    fn characters_xml_cannot_carry_are_replaced() {
        assert_eq!(
            error("register", "a\u{0}b\u{1b}c\u{FFFE}\td"),
            "<?xml version='1.0'?><register><status>error</status><reason>a\u{FFFD}b\u{FFFD}c\u{FFFD}\td</reason></register>"
        );
    }

    #[test]
    fn json_forms() {
        assert_eq!(
            json_register_ok("v@c", "a\"@h"),
            r#"{"from":"v@c","status":"ok","to":"a\"@h"}"#
        );
        assert_eq!(
            json_connected_users(&["a@h", "b@h"]),
            r#"{"connected_users":["a@h","b@h"]}"#
        );
        assert_eq!(
            json_connected_users::<&str>(&[]),
            r#"{"connected_users":[]}"#
        );
        assert_eq!(
            json_error("exists"),
            r#"{"reason":"exists","status":"error"}"#
        );
    }

    #[test]
    fn text_is_escaped_and_bad_roots_fall_back() {
        assert_eq!(
            register_ok("<a>&'\"", "b"),
            "<?xml version='1.0'?><register><status>ok</status><from>&lt;a&gt;&amp;&apos;&quot;</from><to>b</to></register>"
        );
        assert_eq!(
            error("x><y", "</reason>"),
            "<?xml version='1.0'?><error><status>error</status><reason>&lt;/reason&gt;</reason></error>"
        );
        assert_eq!(error("", "r"), error("error", "r"));
    }
}
