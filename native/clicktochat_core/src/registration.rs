//! Parsing the body of `POST /clicktochat/register`:
//! `<?xml version='1.0'?><registration><username>u</username><password>p</password></registration>`.
//!
//! The body comes from anonymous website visitors, so the parser is strict
//! and bounded: a size limit checked before parsing, no DTD (hence no entity
//! declarations and no entity expansion), only the five predefined entities
//! and character references, one `registration` element with exactly one
//! `username` and one `password`, and field limits. Every failure is a typed
//! [`RegistrationError`]; no input makes it panic.

use quick_xml::escape::EscapeError;
use quick_xml::events::{BytesRef, Event};
use quick_xml::{Reader, XmlVersion};

/// Largest accepted body, in bytes.
pub const MAX_BODY_BYTES: usize = 8192;
/// Longest username, in bytes: ejabberd's limit for a JID node.
pub const MAX_USERNAME_BYTES: usize = 255;
/// Longest password, in bytes.
pub const MAX_PASSWORD_BYTES: usize = 1023;

/// A valid registration request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub username: String,
    pub password: String,
}

/// Why a registration body was refused. [`RegistrationError::code`] is the
/// reason sent back to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationError {
    TooLarge,
    InvalidUtf8,
    BadXml,
    DtdForbidden,
    UnknownEntity,
    UnexpectedElement,
    DuplicateField,
    MissingUsername,
    MissingPassword,
    EmptyUsername,
    EmptyPassword,
    UsernameTooLong,
    PasswordTooLong,
    InvalidUsername,
    InvalidPassword,
    BadJson,
    UnexpectedField,
}

impl RegistrationError {
    /// The machine-readable reason, as sent in `<reason>`.
    pub fn code(self) -> &'static str {
        match self {
            RegistrationError::TooLarge => "too_large",
            RegistrationError::InvalidUtf8 => "invalid_utf8",
            RegistrationError::BadXml => "bad_xml",
            RegistrationError::DtdForbidden => "dtd_forbidden",
            RegistrationError::UnknownEntity => "unknown_entity",
            RegistrationError::UnexpectedElement => "unexpected_element",
            RegistrationError::DuplicateField => "duplicate_field",
            RegistrationError::MissingUsername => "missing_username",
            RegistrationError::MissingPassword => "missing_password",
            RegistrationError::EmptyUsername => "empty_username",
            RegistrationError::EmptyPassword => "empty_password",
            RegistrationError::UsernameTooLong => "username_too_long",
            RegistrationError::PasswordTooLong => "password_too_long",
            RegistrationError::InvalidUsername => "invalid_username",
            RegistrationError::InvalidPassword => "invalid_password",
            RegistrationError::BadJson => "bad_json",
            RegistrationError::UnexpectedField => "unexpected_field",
        }
    }
}

impl std::fmt::Display for RegistrationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

impl std::error::Error for RegistrationError {}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Username,
    Password,
}

/// Where the parser is in the document.
enum Place {
    BeforeRoot,
    InRoot,
    InField(Field),
    AfterRoot,
}

/// Parses and validates a registration body. The username is returned with
/// surrounding whitespace trimmed (whitespace can never be part of a JID
/// node); the password exactly as sent.
pub fn parse_registration(body: &[u8]) -> Result<Registration, RegistrationError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(RegistrationError::TooLarge);
    }
    let text = std::str::from_utf8(body).map_err(|_| RegistrationError::InvalidUtf8)?;
    let mut reader = Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    // `--` inside a comment is not well-formed.
    reader.config_mut().check_comments = true;

    let mut place = Place::BeforeRoot;
    // The XML declaration, if any, is the document's first thing.
    let mut first_event = true;
    let mut username: Option<String> = None;
    let mut password: Option<String> = None;

    loop {
        let event = reader.read_event().map_err(|_| RegistrationError::BadXml)?;
        let first = std::mem::replace(&mut first_event, false);
        match (&place, event) {
            (_, Event::Eof) => break,
            (_, Event::Comment(_)) => {}
            (_, Event::DocType(_)) => return Err(RegistrationError::DtdForbidden),
            (Place::BeforeRoot, Event::Decl(_)) if first => {}
            (Place::BeforeRoot, Event::Start(start)) => {
                check_attributes(&start)?;
                if start.name().as_ref() != "registration" {
                    return Err(RegistrationError::UnexpectedElement);
                }
                place = Place::InRoot;
            }
            (Place::BeforeRoot, Event::Empty(start)) => {
                check_attributes(&start)?;
                if start.name().as_ref() != "registration" {
                    return Err(RegistrationError::UnexpectedElement);
                }
                place = Place::AfterRoot;
            }
            (Place::InRoot, Event::Start(start)) => {
                check_attributes(&start)?;
                let field = field_named(start.name().as_ref())?;
                slot(field, &mut username, &mut password)?;
                place = Place::InField(field);
            }
            (Place::InRoot, Event::Empty(start)) => {
                check_attributes(&start)?;
                let field = field_named(start.name().as_ref())?;
                slot(field, &mut username, &mut password)?;
            }
            (Place::InRoot, Event::End(_)) => place = Place::AfterRoot,
            (Place::InField(field), Event::Text(text)) => {
                push(*field, &mut username, &mut password, &text.xml10_content());
            }
            (Place::InField(field), Event::CData(cdata)) => {
                push(*field, &mut username, &mut password, &cdata.xml10_content());
            }
            (Place::InField(field), Event::GeneralRef(reference)) => {
                let mut buf = [0u8; 4];
                let resolved = resolve_reference(&reference)?;
                let resolved: &str = match resolved {
                    Resolved::Char(c) => c.encode_utf8(&mut buf),
                    Resolved::Str(s) => s,
                };
                push(*field, &mut username, &mut password, resolved);
            }
            (Place::InField(_), Event::End(_)) => place = Place::InRoot,
            (Place::InField(_), Event::Start(_) | Event::Empty(_)) => {
                return Err(RegistrationError::UnexpectedElement)
            }
            // Whitespace between elements is formatting; any other text is not.
            (Place::BeforeRoot | Place::InRoot | Place::AfterRoot, Event::Text(text))
                if text.xml10_content().trim_matches(is_xml_space).is_empty() => {}
            (Place::AfterRoot, Event::Start(_) | Event::Empty(_)) => {
                return Err(RegistrationError::UnexpectedElement)
            }
            _ => return Err(RegistrationError::BadXml),
        }
    }
    if !matches!(place, Place::AfterRoot) {
        return Err(RegistrationError::BadXml);
    }

    checked(username, password)
}

/// The same request as JSON: `{"username": "u", "password": "p"}`, with the
/// same limits and field checks. A top-level object with exactly these two
/// string members; a member given twice is refused (most JSON parsers would
/// silently keep one of them).
pub fn parse_registration_json(body: &[u8]) -> Result<Registration, RegistrationError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(RegistrationError::TooLarge);
    }
    let text = std::str::from_utf8(body).map_err(|_| RegistrationError::InvalidUtf8)?;
    // serde_json bounds nesting (128 levels), and the body is at most 8 KiB.
    let Members(members) = serde_json::from_str(text).map_err(|_| RegistrationError::BadJson)?;
    let (mut username, mut password) = (None, None);
    for (name, value) in members {
        let target = match name.as_str() {
            "username" => &mut username,
            "password" => &mut password,
            _ => return Err(RegistrationError::UnexpectedField),
        };
        if target.is_some() {
            return Err(RegistrationError::DuplicateField);
        }
        match value {
            serde_json::Value::String(text) => *target = Some(text),
            _ => return Err(RegistrationError::BadJson),
        }
    }
    checked(username, password)
}

/// The fields' checks, whatever the body's format.
fn checked(
    username: Option<String>,
    password: Option<String>,
) -> Result<Registration, RegistrationError> {
    let username = username.ok_or(RegistrationError::MissingUsername)?;
    let password = password.ok_or(RegistrationError::MissingPassword)?;
    let username = username.trim_matches(is_xml_space).to_owned();
    validate_username(&username)?;
    validate_password(&password)?;
    Ok(Registration { username, password })
}

/// A JSON object's members in order, duplicates kept.
struct Members(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for Members {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Members;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Members, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Attributes are ignored (an `xmlns` is harmless) but must be well formed:
/// no `<` in a value, and no entity other than the predefined ones.
fn check_attributes(start: &quick_xml::events::BytesStart<'_>) -> Result<(), RegistrationError> {
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|_| RegistrationError::BadXml)?;
        if attribute.value.contains('<') {
            return Err(RegistrationError::BadXml);
        }
        match attribute.normalized_value(XmlVersion::Implicit1_0) {
            Ok(_) => {}
            Err(quick_xml::Error::Escape(EscapeError::UnrecognizedEntity(..))) => {
                return Err(RegistrationError::UnknownEntity)
            }
            Err(_) => return Err(RegistrationError::BadXml),
        }
    }
    Ok(())
}

fn field_named(name: &str) -> Result<Field, RegistrationError> {
    match name {
        "username" => Ok(Field::Username),
        "password" => Ok(Field::Password),
        _ => Err(RegistrationError::UnexpectedElement),
    }
}

/// Opens the field's value, refusing a second occurrence.
fn slot(
    field: Field,
    username: &mut Option<String>,
    password: &mut Option<String>,
) -> Result<(), RegistrationError> {
    let target = match field {
        Field::Username => username,
        Field::Password => password,
    };
    if target.is_some() {
        return Err(RegistrationError::DuplicateField);
    }
    *target = Some(String::new());
    Ok(())
}

fn push(field: Field, username: &mut Option<String>, password: &mut Option<String>, text: &str) {
    let target = match field {
        Field::Username => username,
        Field::Password => password,
    };
    // The field was opened by `slot` before any of its content is read.
    if let Some(value) = target {
        value.push_str(text);
    }
}

enum Resolved {
    Char(char),
    Str(&'static str),
}

/// Character references and the five predefined entities; there is no DTD,
/// so any other entity is undeclared.
fn resolve_reference(reference: &BytesRef<'_>) -> Result<Resolved, RegistrationError> {
    match reference.resolve_char_ref() {
        Ok(Some(c)) => Ok(Resolved::Char(c)),
        Ok(None) => quick_xml::escape::resolve_predefined_entity(reference)
            .map(Resolved::Str)
            .ok_or(RegistrationError::UnknownEntity),
        Err(_) => Err(RegistrationError::BadXml),
    }
}

/// The username becomes the node of `username@client_host`: refuse what a
/// JID node cannot hold (RFC 7622 nodeprep's prohibited ASCII, whitespace and
/// controls). ejabberd's own nodeprep still runs on what passes here.
fn validate_username(username: &str) -> Result<(), RegistrationError> {
    if username.is_empty() {
        return Err(RegistrationError::EmptyUsername);
    }
    if username.len() > MAX_USERNAME_BYTES {
        return Err(RegistrationError::UsernameTooLong);
    }
    let forbidden = |c: char| {
        matches!(c, '"' | '&' | '\'' | '/' | ':' | '<' | '>' | '@' | '\\')
            || c.is_whitespace()
            || c.is_control()
    };
    if username.chars().any(forbidden) {
        return Err(RegistrationError::InvalidUsername);
    }
    Ok(())
}

fn validate_password(password: &str) -> Result<(), RegistrationError> {
    if password.is_empty() {
        return Err(RegistrationError::EmptyPassword);
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(RegistrationError::PasswordTooLong);
    }
    if password.chars().any(char::is_control) {
        return Err(RegistrationError::InvalidPassword);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use RegistrationError::*;

    fn parse(body: &str) -> Result<Registration, RegistrationError> {
        parse_registration(body.as_bytes())
    }

    fn ok(username: &str, password: &str) -> Result<Registration, RegistrationError> {
        Ok(Registration {
            username: username.into(),
            password: password.into(),
        })
    }

    #[test]
    fn seed_request() {
        assert_eq!(
            parse("<?xml version='1.0'?><registration><username>my_client</username><password>123</password></registration>"),
            ok("my_client", "123")
        );
    }

    #[test]
    fn pretty_printed_request_with_comments_and_order_swapped() {
        let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- from the site -->\n\
                    <registration xmlns='urn:x'>\n  <password>p w</password>\n  \
                    <username>\n    bob\n  </username>\n</registration>\n";
        assert_eq!(parse(body), ok("bob", "p w"));
    }

    #[test]
    fn references_and_cdata_are_decoded() {
        assert_eq!(
            parse("<registration><username>caf&#xE9;</username><password>a&amp;b&lt;&#49;<![CDATA[<&>]]></password></registration>"),
            ok("café", "a&b<1<&>")
        );
    }

    #[test]
    fn dtds_and_entities_are_refused() {
        let billion_laughs = "<?xml version='1.0'?><!DOCTYPE r [<!ENTITY a 'aaaa'><!ENTITY b '&a;&a;&a;'>]>\
                              <registration><username>&b;</username><password>x</password></registration>";
        assert_eq!(parse(billion_laughs), Err(DtdForbidden));
        assert_eq!(
            parse("<registration><username>&xxe;</username><password>x</password></registration>"),
            Err(UnknownEntity)
        );
        assert_eq!(
            parse("<!DOCTYPE registration SYSTEM 'file:///etc/passwd'><registration/>"),
            Err(DtdForbidden)
        );
    }

    #[test]
    fn missing_empty_and_duplicate_fields() {
        assert_eq!(
            parse("<registration><password>x</password></registration>"),
            Err(MissingUsername)
        );
        assert_eq!(
            parse("<registration><username>u</username></registration>"),
            Err(MissingPassword)
        );
        assert_eq!(parse("<registration/>"), Err(MissingUsername));
        assert_eq!(
            parse("<registration><username/><password>x</password></registration>"),
            Err(EmptyUsername)
        );
        assert_eq!(
            parse("<registration><username>  </username><password>x</password></registration>"),
            Err(EmptyUsername)
        );
        assert_eq!(
            parse("<registration><username>u</username><password></password></registration>"),
            Err(EmptyPassword)
        );
        assert_eq!(
            parse("<registration><username>u</username><username>v</username><password>x</password></registration>"),
            Err(DuplicateField)
        );
    }

    #[test]
    fn structure_errors() {
        assert_eq!(parse(""), Err(BadXml));
        assert_eq!(parse("not xml"), Err(BadXml));
        assert_eq!(parse("<registration><username>u</username>"), Err(BadXml));
        assert_eq!(
            parse("<registration><username>u</password></registration>"),
            Err(BadXml)
        );
        assert_eq!(
            parse("<register><username>u</username></register>"),
            Err(UnexpectedElement)
        );
        assert_eq!(
            parse("<registration><username>u</username><password>p</password><admin>1</admin></registration>"),
            Err(UnexpectedElement)
        );
        assert_eq!(
            parse(
                "<registration><username><b>u</b></username><password>p</password></registration>"
            ),
            Err(UnexpectedElement)
        );
        assert_eq!(
            parse("<registration><username>u</username><password>p</password></registration><registration/>"),
            Err(UnexpectedElement)
        );
        assert_eq!(
            parse("<registration>junk<username>u</username><password>p</password></registration>"),
            Err(BadXml)
        );
        assert_eq!(
            parse("<registration a='1' a='2'><username>u</username><password>p</password></registration>"),
            Err(BadXml)
        );
        assert_eq!(
            parse_registration(b"<registration>\xff</registration>"),
            Err(InvalidUtf8)
        );
    }

    #[test]
    fn ill_formed_attributes_comments_and_declarations() {
        let body = |root: &str| {
            format!("{root}<username>u</username><password>p</password></registration>")
        };
        assert_eq!(parse(&body("<registration a='&xxe;'>")), Err(UnknownEntity));
        assert_eq!(parse(&body("<registration a='<'>")), Err(BadXml));
        assert_eq!(parse(&body("<registration a='&#0;'>")), Err(BadXml));
        assert_eq!(
            parse(&body("<registration a='&amp;&#65;' xmlns='urn:x'>")),
            ok("u", "p")
        );
        assert_eq!(
            parse("<registration><username>a<!-- -- -->b</username><password>p</password></registration>"),
            Err(BadXml)
        );
        assert_eq!(
            parse("<registration><username>a<!-- - -->b</username><password>p</password></registration>"),
            ok("ab", "p")
        );
        let declared = body("<?xml version='1.0'?><registration>");
        assert_eq!(parse(&declared), ok("u", "p"));
        assert_eq!(parse(&format!("\u{feff}{declared}")), ok("u", "p"));
        assert_eq!(
            parse(&format!("<?xml version='1.0'?>{declared}")),
            Err(BadXml)
        );
        assert_eq!(parse(&format!("<!-- c -->{declared}")), Err(BadXml));
        assert_eq!(parse(&format!(" {declared}")), Err(BadXml));
    }

    #[test]
    fn jid_metacharacters_are_refused() {
        for name in [
            "a@b", "a/b", "a\\b", "a\"b", "a b", "a:b", "a'b", "a&amp;b", "a&lt;b", "a&#9;b",
        ] {
            let body = format!(
                "<registration><username>{name}</username><password>p</password></registration>"
            );
            assert_eq!(parse(&body), Err(InvalidUsername), "{name}");
        }
        assert_eq!(
            parse("<registration><username>u</username><password>a&#1;b</password></registration>"),
            Err(InvalidPassword)
        );
    }

    #[test]
    fn json_requests() {
        let json = |body: &str| parse_registration_json(body.as_bytes());
        assert_eq!(
            json(r#"{"username": "bob", "password": "p|w"}"#),
            ok("bob", "p|w")
        );
        assert_eq!(
            json(r#"{"password":"\u00e9","username":" bob "}"#),
            ok("bob", "é")
        );
        assert_eq!(
            json(r#"{"username": "bob", "password": "a\nb"}"#),
            Err(InvalidPassword)
        );
        assert_eq!(
            json(r#"{"username": "caf\u00e9", "password": "x"}"#),
            ok("café", "x")
        );
        assert_eq!(
            json(r#"{"username": "a@b", "password": "x"}"#),
            Err(InvalidUsername)
        );
        assert_eq!(json(r#"{"username": "u"}"#), Err(MissingPassword));
        assert_eq!(json(r#"{"password": "p"}"#), Err(MissingUsername));
        assert_eq!(
            json(r#"{"username": "", "password": "p"}"#),
            Err(EmptyUsername)
        );
        assert_eq!(
            json(r#"{"username": "u", "password": "p", "admin": true}"#),
            Err(UnexpectedField)
        );
        assert_eq!(
            json(r#"{"username": "u", "username": "v", "password": "p"}"#),
            Err(DuplicateField)
        );
        assert_eq!(json(r#"{"username": 1, "password": "p"}"#), Err(BadJson));
        assert_eq!(json(r#"["u", "p"]"#), Err(BadJson));
        assert_eq!(
            json(r#"{"username": "u", "password": "p"} x"#),
            Err(BadJson)
        );
        assert_eq!(json("<registration/>"), Err(BadJson));
        assert_eq!(
            json(&format!("{}{}", "[".repeat(4000), "]".repeat(4000))),
            Err(BadJson)
        );
        assert_eq!(
            parse_registration_json(b"{\"username\": \"\xff\"}"),
            Err(InvalidUtf8)
        );
        assert_eq!(
            json(&format!(
                r#"{{"username": "u", "password": "{}"}}"#,
                "p".repeat(9000)
            )),
            Err(TooLarge)
        );
    }

    #[test]
    fn limits() {
        let body = |u: &str, p: &str| {
            format!("<registration><username>{u}</username><password>{p}</password></registration>")
        };
        let u255 = "u".repeat(MAX_USERNAME_BYTES);
        assert_eq!(parse(&body(&u255, "p")), ok(&u255, "p"));
        assert_eq!(parse(&body(&format!("{u255}u"), "p")), Err(UsernameTooLong));
        let p1023 = "p".repeat(MAX_PASSWORD_BYTES);
        assert_eq!(parse(&body("u", &p1023)), ok("u", &p1023));
        assert_eq!(
            parse(&body("u", &format!("{p1023}p"))),
            Err(PasswordTooLong)
        );
        let padding = " ".repeat(MAX_BODY_BYTES);
        assert_eq!(
            parse(&format!("{}{padding}", body("u", "p"))),
            Err(TooLarge)
        );
    }
}
