//! What a SCRAM server stores of a password (RFC 5802 section 3): the
//! salted password is PBKDF2-HMAC of the password and salt (SCRAM's `Hi`),
//! and of it only two keys are kept, `StoredKey = H(HMAC(salted, "Client
//! Key"))` and `ServerKey = HMAC(salted, "Server Key")`.
//!
//! ejabberd 23.01 derives these in Erlang (the xmpp library's `Hi`, one
//! `crypto:mac` call per round): 4 096 rounds are most of a registration.
//! The same keys are derived here, in native code, for the throw-away
//! accounts; the password's normalisation (SASLprep, ejabberd's
//! `resourceprep`) stays on the Erlang side, where ejabberd's own is.

use hmac::digest::{Digest, KeyInit, Output};
use hmac::{EagerHash, Hmac, Mac};

/// The hash functions ejabberd's `auth_scram_hash` offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScramHash {
    Sha1,
    Sha256,
    Sha512,
}

/// The keys a server keeps of a password, raw (ejabberd stores them in
/// base64).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScramKeys {
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

/// More rounds than any server asks of its clients (ejabberd uses 4 096):
/// a count past it is a caller's mistake, refused rather than run for
/// minutes.
pub const MAX_ITERATIONS: u32 = 1 << 20;

/// The stored keys of `password` (already normalised) with `salt`, or None
/// if `iterations` is 0 or over [`MAX_ITERATIONS`].
pub fn keys(hash: ScramHash, password: &[u8], salt: &[u8], iterations: u32) -> Option<ScramKeys> {
    if iterations == 0 || iterations > MAX_ITERATIONS {
        return None;
    }
    Some(match hash {
        ScramHash::Sha1 => keys_with::<sha1::Sha1>(password, salt, iterations),
        ScramHash::Sha256 => keys_with::<sha2::Sha256>(password, salt, iterations),
        ScramHash::Sha512 => keys_with::<sha2::Sha512>(password, salt, iterations),
    })
}

fn keys_with<D: EagerHash + Digest>(password: &[u8], salt: &[u8], iterations: u32) -> ScramKeys {
    let mut salted = Output::<D>::default();
    pbkdf2::pbkdf2_hmac::<D>(password, salt, iterations, &mut salted);
    let client_key = hmac::<D>(&salted, b"Client Key");
    ScramKeys {
        stored_key: D::digest(client_key).to_vec(),
        server_key: hmac::<D>(&salted, b"Server Key"),
    }
}

fn hmac<D: EagerHash>(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes a key of any length: this cannot fail.
    let mut mac = <Hmac<D> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base64(text: &str) -> Vec<u8> {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut bits = 0u32;
        let mut count = 0;
        let mut out = Vec::new();
        for byte in text.bytes().take_while(|&b| b != b'=') {
            let value = ALPHABET.iter().position(|&a| a == byte).unwrap() as u32;
            bits = bits << 6 | value;
            count += 6;
            if count >= 8 {
                count -= 8;
                out.push((bits >> count) as u8);
            }
        }
        out
    }

    /// A server holding only these keys checks an exchange as RFC 5802
    /// says: the client's proof gives back its ClientKey, whose hash must be
    /// StoredKey; and it signs the exchange with ServerKey.
    fn check_exchange<D: EagerHash + Digest>(
        keys: &ScramKeys,
        auth_message: &str,
        proof: &str,
        signature: &str,
    ) {
        let client_signature = hmac::<D>(&keys.stored_key, auth_message.as_bytes());
        let client_key: Vec<u8> = base64(proof)
            .iter()
            .zip(client_signature.iter())
            .map(|(a, b)| a ^ b)
            .collect();
        assert_eq!(D::digest(&client_key).to_vec(), keys.stored_key);
        assert_eq!(
            hmac::<D>(&keys.server_key, auth_message.as_bytes()),
            base64(signature)
        );
    }

    #[test]
    fn the_sha1_example_of_rfc_5802_checks_out() {
        let keys = keys(
            ScramHash::Sha1,
            b"pencil",
            &base64("QSXCR+Q6sek8bf92"),
            4096,
        )
        .unwrap();
        check_exchange::<sha1::Sha1>(
            &keys,
            "n=user,r=fyko+d2lbbFgONRv9qkxdawL,\
             r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096,\
             c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j",
            "v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
            "rmF9pqV8S7suAoZWja4dJRkFsKQ=",
        );
    }

    #[test]
    fn the_sha256_example_of_rfc_7677_checks_out() {
        let salt = base64("W22ZaJ0SNY7soEsUEjb6gQ==");
        let keys = keys(ScramHash::Sha256, b"pencil", &salt, 4096).unwrap();
        check_exchange::<sha2::Sha256>(
            &keys,
            "n=user,r=rOprNGfwEbeRWgbNEkqO,\
             r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,\
             c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
            "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
        );
    }

    /// SCRAM's `Hi` written out as RFC 5802 gives it, against the PBKDF2
    /// used above, for SHA-512 (which has no published SCRAM example).
    #[test]
    fn sha512_is_rfc_5802s_hi() {
        let (password, salt, rounds) = (b"correct horse", b"sixteen byte slt", 50);
        let mut block = salt.to_vec();
        block.extend_from_slice(&[0, 0, 0, 1]);
        let mut u = hmac::<sha2::Sha512>(password, &block);
        let mut salted = u.clone();
        for _ in 1..rounds {
            u = hmac::<sha2::Sha512>(password, &u);
            salted.iter_mut().zip(u.iter()).for_each(|(s, x)| *s ^= x);
        }
        let keys = keys(ScramHash::Sha512, password, salt, rounds).unwrap();
        let client_key = hmac::<sha2::Sha512>(&salted, b"Client Key");
        assert_eq!(keys.stored_key, sha2::Sha512::digest(client_key).to_vec());
        assert_eq!(
            keys.server_key,
            hmac::<sha2::Sha512>(&salted, b"Server Key")
        );
        assert_eq!((keys.stored_key.len(), keys.server_key.len()), (64, 64));
    }

    #[test]
    fn no_rounds_or_too_many_are_refused() {
        assert_eq!(keys(ScramHash::Sha1, b"p", b"s", 0), None);
        assert_eq!(keys(ScramHash::Sha1, b"p", b"s", MAX_ITERATIONS + 1), None);
        assert!(keys(ScramHash::Sha1, b"", b"", 1).is_some());
    }
}
