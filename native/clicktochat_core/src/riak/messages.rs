//! The Riak messages this client sends and reads, as in riak_pb's
//! `riak.proto` and `riak_kv.proto`, written out by hand for `prost` (no
//! `protoc`), and the decoding of replies, which treats every byte as
//! hostile: no allocation beyond the frame itself, at most
//! [`MAX_SIBLINGS`] contents, no panic.

use prost::Message;

use super::framing::body;
use super::RiakError;

/// Most contents (siblings and tombstones) accepted in one get reply. Riak
/// itself refuses writes beyond 100 siblings by default
/// (`object.siblings.maximum`).
pub const MAX_SIBLINGS: usize = 512;

/// What a get found. A missing key is an empty `Fetched` (no vclock, no siblings).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fetched {
    /// The object's vector clock: pass it to the next put of this key so that
    /// the put replaces every sibling read here.
    pub vclock: Option<Vec<u8>>,
    /// The live values (tombstones are left out); more than one when
    /// concurrent writes created siblings.
    pub siblings: Vec<Sibling>,
}

/// One value of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sibling {
    pub value: Vec<u8>,
    /// Lossily decoded as UTF-8 (media types are ASCII).
    pub content_type: Option<String>,
}

/// An `RpbGetReq` with the bucket's default options.
pub(super) fn get_request(bucket: &[u8], key: &[u8]) -> Vec<u8> {
    RpbGetReq {
        bucket: bucket.to_vec(),
        key: key.to_vec(),
        ..RpbGetReq::default()
    }
    .encode_to_vec()
}

/// An `RpbPutReq` of one value, with `return_head` set (see
/// [`RiakClient::put`](super::RiakClient::put)).
pub(super) fn put_request(
    bucket: &[u8],
    key: &[u8],
    vclock: Option<&[u8]>,
    value: &[u8],
    content_type: &str,
) -> Vec<u8> {
    RpbPutReq {
        bucket: bucket.to_vec(),
        key: Some(key.to_vec()),
        vclock: vclock.map(<[u8]>::to_vec),
        content: RpbContent {
            value: value.to_vec(),
            content_type: Some(content_type.as_bytes().to_vec()),
            ..RpbContent::default()
        },
        return_head: Some(true),
        ..RpbPutReq::default()
    }
    .encode_to_vec()
}

/// Whether a reply frame (message code first) answers a request expecting
/// `expected`: an `RpbErrorResp` is [`RiakError::Server`], any other code
/// [`RiakError::UnexpectedCode`].
pub(super) fn check_reply_code(frame: &[u8], expected: u8) -> Result<(), RiakError> {
    let Some(&got) = frame.first() else {
        return Err(RiakError::EmptyFrame);
    };
    if got == expected {
        Ok(())
    } else if got == MSG_ERROR_RESP {
        let err = RpbErrorResp::decode(body(frame))?;
        Err(RiakError::Server {
            code: err.errcode,
            message: String::from_utf8_lossy(&err.errmsg).into_owned(),
        })
    } else {
        Err(RiakError::UnexpectedCode { expected, got })
    }
}

/// The decoding step of [`RiakClient::get`], without the I/O: the reply
/// frame as read off the wire after its 4-byte length (message code, then
/// body), to what `get` returns. For tests and fuzzing; `get` runs the same
/// two steps.
pub fn decode_get_reply(frame: &[u8]) -> Result<Fetched, RiakError> {
    check_reply_code(frame, MSG_GET_RESP)?;
    decode_get_resp(body(frame))
}

/// The decoding step of [`RiakClient::put`], as [`decode_get_reply`] is of `get`.
pub fn decode_put_reply(frame: &[u8]) -> Result<Option<Vec<u8>>, RiakError> {
    check_reply_code(frame, MSG_PUT_RESP)?;
    decode_put_resp(body(frame))
}

// Message codes (riak_pb's riak_pb_messages.csv).
pub(super) const MSG_ERROR_RESP: u8 = 0;
pub(super) const MSG_PING_REQ: u8 = 1;
pub(super) const MSG_PING_RESP: u8 = 2;
pub(super) const MSG_GET_REQ: u8 = 9;
pub(super) const MSG_GET_RESP: u8 = 10;
pub(super) const MSG_PUT_REQ: u8 = 11;
pub(super) const MSG_PUT_RESP: u8 = 12;

// The messages, as in riak.proto and riak_kv.proto (proto2). `required`
// fields are always encoded, `optional` ones only when Some. Requests are
// encoded from the full definitions; replies are decoded into lean views
// (below) that hold only what this client reads.

/// `RpbErrorResp` (riak.proto).
#[derive(Clone, PartialEq, Message)]
struct RpbErrorResp {
    #[prost(bytes = "vec", required, tag = "1")]
    errmsg: Vec<u8>,
    #[prost(uint32, required, tag = "2")]
    errcode: u32,
}

/// `RpbPair` (riak.proto).
#[derive(Clone, PartialEq, Message)]
struct RpbPair {
    #[prost(bytes = "vec", required, tag = "1")]
    key: Vec<u8>,
    #[prost(bytes = "vec", optional, tag = "2")]
    value: Option<Vec<u8>>,
}

/// `RpbLink` (riak_kv.proto).
#[derive(Clone, PartialEq, Message)]
struct RpbLink {
    #[prost(bytes = "vec", optional, tag = "1")]
    bucket: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "2")]
    key: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "3")]
    tag: Option<Vec<u8>>,
}

/// `RpbContent` (riak_kv.proto).
#[derive(Clone, PartialEq, Message)]
struct RpbContent {
    #[prost(bytes = "vec", required, tag = "1")]
    value: Vec<u8>,
    #[prost(bytes = "vec", optional, tag = "2")]
    content_type: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "3")]
    charset: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "4")]
    content_encoding: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "5")]
    vtag: Option<Vec<u8>>,
    #[prost(message, repeated, tag = "6")]
    links: Vec<RpbLink>,
    #[prost(uint32, optional, tag = "7")]
    last_mod: Option<u32>,
    #[prost(uint32, optional, tag = "8")]
    last_mod_usecs: Option<u32>,
    #[prost(message, repeated, tag = "9")]
    usermeta: Vec<RpbPair>,
    #[prost(message, repeated, tag = "10")]
    indexes: Vec<RpbPair>,
    #[prost(bool, optional, tag = "11")]
    deleted: Option<bool>,
    /// Only in riak_pb's `master` branch (object TTL), not in `develop`.
    #[prost(uint32, optional, tag = "12")]
    ttl: Option<u32>,
}

/// `RpbGetReq` (riak_kv.proto).
#[derive(Clone, PartialEq, Message)]
struct RpbGetReq {
    #[prost(bytes = "vec", required, tag = "1")]
    bucket: Vec<u8>,
    #[prost(bytes = "vec", required, tag = "2")]
    key: Vec<u8>,
    #[prost(uint32, optional, tag = "3")]
    r: Option<u32>,
    #[prost(uint32, optional, tag = "4")]
    pr: Option<u32>,
    #[prost(bool, optional, tag = "5")]
    basic_quorum: Option<bool>,
    #[prost(bool, optional, tag = "6")]
    notfound_ok: Option<bool>,
    #[prost(bytes = "vec", optional, tag = "7")]
    if_modified: Option<Vec<u8>>,
    #[prost(bool, optional, tag = "8")]
    head: Option<bool>,
    #[prost(bool, optional, tag = "9")]
    deletedvclock: Option<bool>,
    #[prost(uint32, optional, tag = "10")]
    timeout: Option<u32>,
    #[prost(bool, optional, tag = "11")]
    sloppy_quorum: Option<bool>,
    #[prost(uint32, optional, tag = "12")]
    n_val: Option<u32>,
    #[prost(bytes = "vec", optional, tag = "13")]
    r#type: Option<Vec<u8>>,
}

/// `RpbPutReq` (riak_kv.proto; `develop` adds `node_confirms = 17`, unused here).
#[derive(Clone, PartialEq, Message)]
struct RpbPutReq {
    #[prost(bytes = "vec", required, tag = "1")]
    bucket: Vec<u8>,
    #[prost(bytes = "vec", optional, tag = "2")]
    key: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "3")]
    vclock: Option<Vec<u8>>,
    #[prost(message, required, tag = "4")]
    content: RpbContent,
    #[prost(uint32, optional, tag = "5")]
    w: Option<u32>,
    #[prost(uint32, optional, tag = "6")]
    dw: Option<u32>,
    #[prost(bool, optional, tag = "7")]
    return_body: Option<bool>,
    #[prost(uint32, optional, tag = "8")]
    pw: Option<u32>,
    #[prost(bool, optional, tag = "9")]
    if_not_modified: Option<bool>,
    #[prost(bool, optional, tag = "10")]
    if_none_match: Option<bool>,
    #[prost(bool, optional, tag = "11")]
    return_head: Option<bool>,
    #[prost(uint32, optional, tag = "12")]
    timeout: Option<u32>,
    #[prost(bool, optional, tag = "13")]
    asis: Option<bool>,
    #[prost(bool, optional, tag = "14")]
    sloppy_quorum: Option<bool>,
    #[prost(uint32, optional, tag = "15")]
    n_val: Option<u32>,
    #[prost(bytes = "vec", optional, tag = "16")]
    r#type: Option<Vec<u8>>,
}

/// The part of an `RpbContent` this client reads: links, user metadata and
/// indexes are skipped by the decoder instead of being allocated.
#[derive(Clone, PartialEq, Message)]
struct ContentView {
    #[prost(bytes = "vec", required, tag = "1")]
    value: Vec<u8>,
    #[prost(bytes = "vec", optional, tag = "2")]
    content_type: Option<Vec<u8>>,
    #[prost(bool, optional, tag = "11")]
    deleted: Option<bool>,
}

/// Decodes an `RpbGetResp` (`content = 1` repeated, `vclock = 2`,
/// `unchanged = 3`), or those fields of an `RpbPutResp`, one content at a
/// time, so that a flood of tiny contents is refused after [`MAX_SIBLINGS`]
/// instead of becoming millions of structs.
pub(super) fn decode_get_resp(mut buf: &[u8]) -> Result<Fetched, RiakError> {
    let mut fetched = Fetched::default();
    let mut contents = 0usize;
    while !buf.is_empty() {
        let key = read_varint(&mut buf)?;
        let tag = key >> 3;
        let value = match key & 7 {
            0 => {
                read_varint(&mut buf)?;
                None
            }
            1 => {
                take(&mut buf, 8)?;
                None
            }
            2 => {
                let len = read_varint(&mut buf)?;
                Some(take(&mut buf, usize::try_from(len).unwrap_or(usize::MAX))?)
            }
            5 => {
                take(&mut buf, 4)?;
                None
            }
            _ => return Err(RiakError::Decode(format!("bad wire type in key {key}"))),
        };
        match (tag, value) {
            (1, Some(bytes)) => {
                contents += 1;
                if contents > MAX_SIBLINGS {
                    return Err(RiakError::Decode(format!(
                        "more than {MAX_SIBLINGS} contents in one object"
                    )));
                }
                let content = ContentView::decode(bytes)
                    .map_err(|e| RiakError::Decode(format!("RpbContent: {e}")))?;
                if content.deleted != Some(true) {
                    fetched.siblings.push(Sibling {
                        value: content.value,
                        content_type: content
                            .content_type
                            .map(|ct| String::from_utf8_lossy(&ct).into_owned()),
                    });
                }
            }
            (2, Some(bytes)) => fetched.vclock = Some(bytes.to_vec()),
            (1 | 2, None) => {
                return Err(RiakError::Decode(format!("bad wire type for field {tag}")))
            }
            _ => {} // unchanged (3) and unknown fields
        }
    }
    Ok(fetched)
}

/// An `RpbPutResp` sent for a put with `return_head`: the new vclock when
/// the object holds exactly one content (see [`RiakClient::put`]).
pub(super) fn decode_put_resp(buf: &[u8]) -> Result<Option<Vec<u8>>, RiakError> {
    // RpbPutResp shares `content = 1` and `vclock = 2` with RpbGetResp
    // (its `key = 3` is skipped like `unchanged = 3`); with return_head
    // each content comes with an empty value.
    let head = decode_get_resp(buf)?;
    Ok(match head.siblings.len() {
        1 => head.vclock,
        _ => None,
    })
}

fn take<'a>(buf: &mut &'a [u8], n: usize) -> Result<&'a [u8], RiakError> {
    if n > buf.len() {
        return Err(RiakError::Decode("field runs past the end".into()));
    }
    let (head, rest) = buf.split_at(n);
    *buf = rest;
    Ok(head)
}

fn read_varint(buf: &mut &[u8]) -> Result<u64, RiakError> {
    let mut value = 0u64;
    for i in 0..10 {
        let (&byte, rest) = buf
            .split_first()
            .ok_or_else(|| RiakError::Decode("truncated varint".into()))?;
        *buf = rest;
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(RiakError::Decode("varint longer than 10 bytes".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_request_bytes() {
        let req = RpbGetReq {
            bucket: b"b".to_vec(),
            key: b"k".to_vec(),
            ..RpbGetReq::default()
        };
        assert_eq!(req.encode_to_vec(), [0x0a, 1, b'b', 0x12, 1, b'k']);
    }

    #[test]
    fn put_request_bytes() {
        let req = RpbPutReq {
            bucket: b"b".to_vec(),
            key: Some(b"k".to_vec()),
            vclock: Some(b"V".to_vec()),
            content: RpbContent {
                value: Vec::new(),
                content_type: Some(b"t".to_vec()),
                ..RpbContent::default()
            },
            return_head: Some(true),
            ..RpbPutReq::default()
        };
        // bucket(1) key(2) vclock(3) content(4){value(1) = "" is required,
        // so present; content_type(2)} return_head(11, varint: key 0x58).
        let expected = [
            0x0a, 1, b'b', 0x12, 1, b'k', 0x1a, 1, b'V', 0x22, 5, 0x0a, 0, 0x12, 1, b't', 0x58, 1,
        ];
        assert_eq!(req.encode_to_vec(), expected);
    }

    #[test]
    fn error_reply_decodes() {
        let bytes = [0x0a, 3, b'b', b'a', b'd', 0x10, 7];
        let err = RpbErrorResp::decode(&bytes[..]).expect("decodes");
        assert_eq!(err.errmsg, b"bad");
        assert_eq!(err.errcode, 7);
    }

    #[test]
    fn whole_reply_frames_decode_by_their_code() {
        // get: not found, one sibling with a vclock.
        assert_eq!(
            decode_get_reply(&[MSG_GET_RESP]).expect("ok"),
            Fetched::default()
        );
        let one = [MSG_GET_RESP, 0x0a, 3, 0x0a, 1, b'a', 0x12, 1, b'V'];
        let fetched = decode_get_reply(&one).expect("ok");
        assert_eq!(fetched.vclock.as_deref(), Some(&b"V"[..]));
        assert_eq!(fetched.siblings.len(), 1);
        // put: the vclock only when exactly one content is left.
        let mut put = one;
        put[0] = MSG_PUT_RESP;
        assert_eq!(
            decode_put_reply(&put).expect("ok").as_deref(),
            Some(&b"V"[..])
        );
        let empty_content = [0x0a, 2, 0x0a, 0];
        let two = [
            &[MSG_PUT_RESP][..],
            &empty_content,
            &empty_content,
            &[0x12, 1, b'V'],
        ]
        .concat();
        assert_eq!(decode_put_reply(&two).expect("ok"), None);
        // An error reply, a wrong code, an empty frame, a bad error body.
        let error = [MSG_ERROR_RESP, 0x0a, 3, b'b', b'a', b'd', 0x10, 7];
        assert!(matches!(
            decode_get_reply(&error),
            Err(RiakError::Server { code: 7, ref message }) if message == "bad"
        ));
        assert!(matches!(
            decode_put_reply(&[MSG_GET_RESP]),
            Err(RiakError::UnexpectedCode {
                expected: MSG_PUT_RESP,
                got: MSG_GET_RESP
            })
        ));
        assert!(matches!(decode_get_reply(&[]), Err(RiakError::EmptyFrame)));
        assert!(matches!(
            decode_get_reply(&[MSG_ERROR_RESP, 0x0a]),
            Err(RiakError::Decode(_))
        ));
    }

    #[test]
    fn get_reply_decodes_siblings_skipping_tombstones() {
        assert_eq!(decode_get_resp(&[]).expect("not found"), Fetched::default());
        let mut body = Vec::new();
        // content {value "a", content_type "t", a link, usermeta} ...
        body.extend_from_slice(&[0x0a, 14, 0x0a, 1, b'a', 0x12, 1, b't']);
        body.extend_from_slice(&[0x32, 2, 0x12, 0, 0x4a, 2, 0x0a, 0]);
        // ... a tombstone {value "", deleted true} ...
        body.extend_from_slice(&[0x0a, 4, 0x0a, 0, 0x58, 1]);
        // ... content {value "b"}, vclock "VC", unchanged false, unknown field 99.
        body.extend_from_slice(&[0x0a, 3, 0x0a, 1, b'b', 0x12, 2, b'V', b'C', 0x18, 0]);
        body.extend_from_slice(&[0x98, 0x06, 1]);
        let fetched = decode_get_resp(&body).expect("decodes");
        assert_eq!(fetched.vclock.as_deref(), Some(&b"VC"[..]));
        assert_eq!(
            fetched.siblings,
            [
                Sibling {
                    value: b"a".to_vec(),
                    content_type: Some("t".into())
                },
                Sibling {
                    value: b"b".to_vec(),
                    content_type: None
                },
            ]
        );
    }

    #[test]
    fn get_reply_refuses_a_content_flood() {
        let body: Vec<u8> = [0x0a, 0].repeat(MAX_SIBLINGS + 1);
        assert!(matches!(decode_get_resp(&body), Err(RiakError::Decode(_))));
        let body: Vec<u8> = [0x0a, 0].repeat(MAX_SIBLINGS);
        assert_eq!(
            decode_get_resp(&body).expect("ok").siblings.len(),
            MAX_SIBLINGS
        );
    }

    #[test]
    fn get_reply_rejects_malformed_bodies() {
        let cases: [&[u8]; 7] = [
            &[0x0a],          // key without length
            &[0x0a, 5, 1, 2], // length past the end
            &[
                0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ], // huge length
            &[0x08, 1],       // content as a varint
            &[0x0b, 0x0c],    // group wire type
            &[0xff; 11],      // overlong varint
            &[0x0a, 2, 0x0a, 5], // content with a truncated value
        ];
        for case in cases {
            assert!(
                matches!(decode_get_resp(case), Err(RiakError::Decode(_))),
                "{case:?}"
            );
        }
    }
}
