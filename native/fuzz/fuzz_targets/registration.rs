//! `parse_registration` (and `parse_registration_json`), what the NIFs call
//! with the HTTP body: any bytes, then well-formed bodies built from
//! arbitrary fields.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use clicktochat_core::registration::{
    parse_registration_json, MAX_BODY_BYTES, MAX_PASSWORD_BYTES, MAX_USERNAME_BYTES,
};
use clicktochat_core::{parse_registration, Registration, RegistrationError};
use clicktochat_fuzz::heap_bounded;
use libfuzzer_sys::fuzz_target;
use quick_xml::escape::escape;

fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn forbidden_in_username(c: char) -> bool {
    matches!(c, '"' | '&' | '\'' | '/' | ':' | '<' | '>' | '@' | '\\')
        || c.is_whitespace()
        || c.is_control()
}

/// What the README promises of an accepted registration.
fn check_valid(registration: &Registration) {
    let Registration { username, password } = registration;
    assert!(!username.is_empty() && username.len() <= MAX_USERNAME_BYTES);
    assert!(!username.chars().any(forbidden_in_username), "{username:?}");
    assert!(!password.is_empty() && password.len() <= MAX_PASSWORD_BYTES);
    assert!(!password.chars().any(char::is_control), "{password:?}");
}

fn body(username: &str, password: &str) -> String {
    format!(
        "<?xml version='1.0'?><registration><username>{}</username><password>{}</password></registration>",
        escape(username),
        escape(password)
    )
}

fuzz_target!(|data: &[u8]| {
    // 1. The bytes as a body. A body is at most 8 KiB: parsing one may use
    //    a small multiple of that, never more.
    let result = heap_bounded(data.len(), 16, 64 << 10, || parse_registration(data));
    if data.len() > MAX_BODY_BYTES {
        assert_eq!(result, Err(RegistrationError::TooLarge));
    } else if std::str::from_utf8(data).is_err() {
        assert_eq!(result, Err(RegistrationError::InvalidUtf8));
    }
    if let Ok(registration) = &result {
        check_valid(registration);
        // Sent again, escaped, the values come back exactly.
        let again = body(&registration.username, &registration.password);
        if again.len() <= MAX_BODY_BYTES {
            assert_eq!(
                parse_registration(again.as_bytes()).as_ref(),
                Ok(registration)
            );
        }
    }

    // 1b. The same bytes as a JSON body: the same promises.
    let json = heap_bounded(data.len(), 16, 64 << 10, || parse_registration_json(data));
    if data.len() > MAX_BODY_BYTES {
        assert_eq!(json, Err(RegistrationError::TooLarge));
    }
    if let Ok(registration) = &json {
        check_valid(registration);
    }

    // 2. Arbitrary fields in a well-formed body: accepted exactly when the
    //    (trimmed) username and the password are valid, and then unchanged.
    let mut u = Unstructured::new(data);
    let Ok((username, password)) = <(String, String)>::arbitrary(&mut u) else {
        return;
    };
    let sent = body(&username, &password);
    let result = parse_registration(sent.as_bytes());
    if sent.len() > MAX_BODY_BYTES {
        assert_eq!(result, Err(RegistrationError::TooLarge));
        return;
    }
    // XML turns "\r\n" and "\r" into "\n" in text; both are refused
    // anyway (a username has no whitespace inside, a password no control).
    let trimmed = username.trim_matches(is_xml_space);
    let username_ok = !trimmed.is_empty()
        && trimmed.len() <= MAX_USERNAME_BYTES
        && !trimmed.chars().any(forbidden_in_username);
    let password_ok = !password.is_empty()
        && password.len() <= MAX_PASSWORD_BYTES
        && !password.chars().any(char::is_control);
    match result {
        Ok(registration) => {
            assert!(username_ok && password_ok, "{username:?} {password:?}");
            check_valid(&registration);
            assert_eq!(registration.username, trimmed);
            assert_eq!(registration.password, password);
        }
        Err(error) => assert!(
            !(username_ok && password_ok),
            "{username:?} {password:?} refused: {error:?}"
        ),
    }
});
