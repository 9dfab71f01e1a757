//! The conversation archive of one agent, as stored under the agent's bare
//! JID: the seed's Erlang structure, written with `term_to_binary`, so that
//! an Erlang `riakc` user reads and writes exactly the same objects:
//!
//! ```erlang
//! [{record, [[{current_time, <<"2026-11-25T13:12:00.123456Z">>},
//!             {user, <<"visitor@clients.example.com">>},
//!             {conversation, [<<"|current_time^...|from^...|to^...|msg^...|">>, ...]}],
//!            ...]}]
//! ```
//!
//! One record per conversation: when it started, the visitor's bare JID and
//! its message entries ([`Entry`], in the seed's text format). [`merge`] is
//! the union that resolves Riak siblings and adds new entries.

use crate::calendar::{self, TimeError};
use crate::conversation::{CodecError, Entry};
use crate::etf::{self, EtfError, Term};
use std::collections::{BTreeMap, HashSet};
use std::fmt;

/// One conversation between a visitor and the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// When the conversation started: microseconds since the Unix epoch, UTC.
    pub start_us: i64,
    /// The visitor's bare JID.
    pub user: String,
    /// Its messages.
    pub entries: Vec<Entry>,
}

const RECORD: &str = "record";
const CURRENT_TIME: &str = "current_time";
const USER: &str = "user";
const CONVERSATION: &str = "conversation";

/// Why a stored value is not an archive. `record` and `entry` count from 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordsError {
    /// The bytes are not an Erlang term this codec reads.
    Term(EtfError),
    /// The term is not `[{record, [...]}]`.
    NotAnArchive,
    /// A record is not a list of `{atom, Value}` pairs.
    RecordNotProplist { record: usize },
    /// A record has a key other than `current_time`, `user`, `conversation`.
    UnknownKey { record: usize },
    /// A record has the same key twice.
    DuplicateKey { record: usize, key: &'static str },
    /// A record lacks one of the three keys.
    MissingKey { record: usize, key: &'static str },
    /// `current_time` or `user` is not a binary holding UTF-8 text.
    NotText { record: usize, key: &'static str },
    /// `current_time` is not an RFC 3339 UTC time with microseconds.
    StartTime { record: usize, error: TimeError },
    /// `conversation` is not a list.
    ConversationNotList { record: usize },
    /// An entry is not a binary holding UTF-8 text.
    EntryNotText { record: usize, entry: usize },
    /// An entry is not in the seed's entry format.
    Entry {
        record: usize,
        entry: usize,
        error: CodecError,
    },
}

impl fmt::Display for RecordsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordsError::Term(error) => write!(f, "not an Erlang term: {error}"),
            RecordsError::NotAnArchive => f.write_str("not [{record, [...]}]"),
            RecordsError::RecordNotProplist { record } => {
                write!(f, "record {record}: not a list of {{Key, Value}} pairs")
            }
            RecordsError::UnknownKey { record } => write!(
                f,
                "record {record}: a key other than current_time, user, conversation"
            ),
            RecordsError::DuplicateKey { record, key } => {
                write!(f, "record {record}: {key} given twice")
            }
            RecordsError::MissingKey { record, key } => write!(f, "record {record}: no {key}"),
            RecordsError::NotText { record, key } => {
                write!(f, "record {record}: {key} is not a UTF-8 binary")
            }
            RecordsError::StartTime { record, error } => {
                write!(f, "record {record}: current_time: {error}")
            }
            RecordsError::ConversationNotList { record } => {
                write!(f, "record {record}: conversation is not a list")
            }
            RecordsError::EntryNotText { record, entry } => {
                write!(f, "record {record}, entry {entry}: not a UTF-8 binary")
            }
            RecordsError::Entry {
                record,
                entry,
                error,
            } => write!(f, "record {record}, entry {entry}: {error}"),
        }
    }
}

impl From<EtfError> for RecordsError {
    fn from(error: EtfError) -> Self {
        RecordsError::Term(error)
    }
}

impl std::error::Error for RecordsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RecordsError::Term(error) => Some(error),
            RecordsError::StartTime { error, .. } => Some(error),
            RecordsError::Entry { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// The archive as `term_to_binary([{record, [Record, ...]}])`, records in
/// the order given, each as `[{current_time, _}, {user, _}, {conversation, _}]`.
pub fn encode_archive(records: &[Record]) -> Vec<u8> {
    let records = records.iter().map(record_term).collect();
    let archive = Term::List(vec![Term::Tuple(vec![atom(RECORD), Term::List(records)])]);
    etf::encode(&archive)
}

fn record_term(record: &Record) -> Term {
    let start = calendar::format_rfc3339_micros(record.start_us);
    let entries = record
        .entries
        .iter()
        .map(|entry| Term::Binary(entry.encode().into_bytes()))
        .collect();
    Term::List(vec![
        pair(CURRENT_TIME, Term::Binary(start.into_bytes())),
        pair(USER, Term::Binary(record.user.as_bytes().to_vec())),
        pair(CONVERSATION, Term::List(entries)),
    ])
}

fn atom(name: &str) -> Term {
    Term::Atom(name.to_owned())
}

fn pair(key: &str, value: Term) -> Term {
    Term::Tuple(vec![atom(key), value])
}

/// Reads a stored archive, records and entries in stored order.
///
/// Strict about shape: the top level must be exactly `[{record, List}]`, and
/// each record exactly the keys `current_time`, `user` and `conversation`,
/// once each. Their order within a record is free, as in any Erlang
/// proplist.
pub fn decode_archive(bytes: &[u8]) -> Result<Vec<Record>, RecordsError> {
    let term = etf::decode(bytes)?;
    let Term::List(top) = term else {
        return Err(RecordsError::NotAnArchive);
    };
    let Ok([only]) = <[Term; 1]>::try_from(top) else {
        return Err(RecordsError::NotAnArchive);
    };
    let records = match into_key_value(only) {
        Some((tag, Term::List(records))) if tag == RECORD => records,
        _ => return Err(RecordsError::NotAnArchive),
    };
    records
        .into_iter()
        .enumerate()
        .map(|(index, term)| decode_record(index, term))
        .collect()
}

/// `{atom, Value}` as its parts.
fn into_key_value(term: Term) -> Option<(String, Term)> {
    let Term::Tuple(elements) = term else {
        return None;
    };
    match <[Term; 2]>::try_from(elements) {
        Ok([Term::Atom(key), value]) => Some((key, value)),
        _ => None,
    }
}

fn decode_record(record: usize, term: Term) -> Result<Record, RecordsError> {
    let Term::List(fields) = term else {
        return Err(RecordsError::RecordNotProplist { record });
    };
    let mut start = None;
    let mut user = None;
    let mut entries = None;
    for field in fields {
        let (key, value) =
            into_key_value(field).ok_or(RecordsError::RecordNotProplist { record })?;
        let (slot, key) = match key.as_str() {
            CURRENT_TIME => (&mut start, CURRENT_TIME),
            USER => (&mut user, USER),
            CONVERSATION => (&mut entries, CONVERSATION),
            _ => return Err(RecordsError::UnknownKey { record }),
        };
        if slot.replace(value).is_some() {
            return Err(RecordsError::DuplicateKey { record, key });
        }
    }
    let missing = |key| RecordsError::MissingKey { record, key };
    let start = start.ok_or(missing(CURRENT_TIME))?;
    let user = user.ok_or(missing(USER))?;
    let entries = entries.ok_or(missing(CONVERSATION))?;

    let not_text = |key| RecordsError::NotText { record, key };
    let start = binary_text(start).ok_or(not_text(CURRENT_TIME))?;
    let start_us = calendar::parse_rfc3339_micros(&start)
        .map_err(|error| RecordsError::StartTime { record, error })?;
    let user = binary_text(user).ok_or(not_text(USER))?;
    let Term::List(entries) = entries else {
        return Err(RecordsError::ConversationNotList { record });
    };
    let entries = entries
        .into_iter()
        .enumerate()
        .map(|(entry, term)| {
            let text = binary_text(term).ok_or(RecordsError::EntryNotText { record, entry })?;
            Entry::decode(&text).map_err(|error| RecordsError::Entry {
                record,
                entry,
                error,
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(Record {
        start_us,
        user,
        entries,
    })
}

/// The text in a binary, if it is one and holds UTF-8.
fn binary_text(term: Term) -> Option<String> {
    match term {
        Term::Binary(bytes) => String::from_utf8(bytes).ok(),
        _ => None,
    }
}

/// Adds `other` to `into`: their union, normalised.
///
/// Records are identified by `(start_us, user)`; a record in both gets the
/// union of their entries, an entry identical in both (or repeated in one)
/// appearing once. Entries are ordered by `time_us`, entries with equal times
/// in first-seen order (`into`'s before `other`'s): two messages recorded in
/// the same microsecond keep the order they were recorded in. Records are
/// ordered by `(start_us, user)`, the user's JID compared byte-wise.
///
/// As a set of records and entries the result is the same whatever the
/// order of merges (commutative, associative, idempotent), which is what
/// resolving Riak siblings needs; only the order of equal-time entries can
/// depend on which side came first.
pub fn merge(into: &mut Vec<Record>, other: Vec<Record>) {
    let mut entries_by_record: BTreeMap<(i64, String), Vec<Entry>> = BTreeMap::new();
    for record in into.drain(..).chain(other) {
        entries_by_record
            .entry((record.start_us, record.user))
            .or_default()
            .extend(record.entries);
    }
    into.extend(
        entries_by_record
            .into_iter()
            .map(|((start_us, user), entries)| Record {
                start_us,
                user,
                entries: unique_in_time_order(entries),
            }),
    );
}

/// The archive's encoded size, given as the parts [`split_bounded`] counts:
/// at most `ARCHIVE_BYTES`, plus `record_bytes` a record, plus
/// `entry_bytes` an entry (an upper bound of what [`encode_archive`] writes:
/// the list, tuple, atom and binary headers of the seed's structure).
const ARCHIVE_BYTES: usize = 32;

fn record_bytes(record: &Record) -> usize {
    // Three {Key, Value} pairs in a list, the start as RFC 3339 text (at
    // most 40 bytes whatever the year) and the user's JID.
    96 + record.user.len()
}

fn entry_bytes(text: &str) -> usize {
    // BINARY_EXT: tag, 4-byte length, the bytes.
    5 + text.len()
}

/// Cuts `records` (as [`merge`] leaves them: ordered) into consecutive
/// pieces whose [`encode_archive`] stays within `max_bytes`, records and
/// entries in their order; a record may be cut across two pieces (as a set
/// the union of the pieces is `records`: [`merge`] puts them back
/// together). Nothing is refused: an entry too large for any piece gets a
/// piece of its own. No piece is empty; none at all for no records.
pub fn split_bounded(records: Vec<Record>, max_bytes: usize) -> Vec<Vec<Record>> {
    let mut pieces = Vec::new();
    let mut piece: Vec<Record> = Vec::new();
    let mut size = ARCHIVE_BYTES;
    for record in records {
        let header = record_bytes(&record);
        let mut part = Record {
            start_us: record.start_us,
            user: record.user.clone(),
            entries: Vec::new(),
        };
        if size + header > max_bytes && !piece.is_empty() {
            pieces.push(std::mem::take(&mut piece));
            size = ARCHIVE_BYTES;
        }
        size += header;
        for entry in record.entries {
            let bytes = entry_bytes(&entry.encode());
            if size + bytes > max_bytes && !(piece.is_empty() && part.entries.is_empty()) {
                if !part.entries.is_empty() {
                    let next = Record {
                        start_us: part.start_us,
                        user: part.user.clone(),
                        entries: Vec::new(),
                    };
                    piece.push(std::mem::replace(&mut part, next));
                }
                pieces.push(std::mem::take(&mut piece));
                size = ARCHIVE_BYTES + header;
            }
            size += bytes;
            part.entries.push(entry);
        }
        piece.push(part);
    }
    if !piece.is_empty() {
        pieces.push(piece);
    }
    pieces
}

/// First occurrences only, then a stable sort by time.
fn unique_in_time_order(mut entries: Vec<Entry>) -> Vec<Entry> {
    let is_first: Vec<bool> = {
        let mut seen = HashSet::with_capacity(entries.len());
        entries.iter().map(|entry| seen.insert(entry)).collect()
    };
    let mut is_first = is_first.into_iter();
    // `retain` visits the elements in order, once each.
    entries.retain(|_| is_first.next().unwrap_or(true));
    entries.sort_by_key(|entry| entry.time_us);
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED_ENTRY: &str = "|current_time^2026-11-25T13:12:00.123456Z|from^v@clients.localhost|to^agent1@helpdesk.localhost|msg^hello|";

    fn entry(time_us: i64, msg: &str) -> Entry {
        Entry {
            time_us,
            from: "v@clients.localhost".to_owned(),
            to: "agent1@helpdesk.localhost".to_owned(),
            msg: msg.to_owned(),
        }
    }

    fn record(start_us: i64, user: &str, entries: Vec<Entry>) -> Record {
        Record {
            start_us,
            user: user.to_owned(),
            entries,
        }
    }

    fn binary(text: &str) -> Term {
        Term::Binary(text.as_bytes().to_vec())
    }

    fn archive_of(records: Vec<Term>) -> Vec<u8> {
        etf::encode(&Term::List(vec![Term::Tuple(vec![
            atom(RECORD),
            Term::List(records),
        ])]))
    }

    fn seed_record() -> Vec<Term> {
        vec![
            pair(CURRENT_TIME, binary("2026-11-25T13:12:00.000000Z")),
            pair(USER, binary("v@clients.localhost")),
            pair(CONVERSATION, Term::List(vec![binary(SEED_ENTRY)])),
        ]
    }

    #[test]
    fn encodes_the_seed_structure() {
        let records = vec![record(
            1_795_612_320_000_000,
            "v@clients.localhost",
            vec![entry(1_795_612_320_123_456, "hello")],
        )];
        let bytes = encode_archive(&records);
        assert_eq!(bytes, archive_of(vec![Term::List(seed_record())]));
        assert_eq!(decode_archive(&bytes), Ok(records));
    }

    #[test]
    fn empty_archive_and_empty_conversation() {
        assert_eq!(encode_archive(&[]), archive_of(vec![]));
        assert_eq!(decode_archive(&encode_archive(&[])), Ok(vec![]));
        let records = vec![record(0, "v@c", vec![])];
        assert_eq!(decode_archive(&encode_archive(&records)), Ok(records));
    }

    #[test]
    fn proplist_order_is_free() {
        let mut fields = seed_record();
        fields.reverse();
        let decoded = decode_archive(&archive_of(vec![Term::List(fields)]));
        assert_eq!(
            decoded,
            Ok(vec![record(
                1_795_612_320_000_000,
                "v@clients.localhost",
                vec![entry(1_795_612_320_123_456, "hello")],
            )])
        );
    }

    #[test]
    fn refuses_other_shapes() {
        let with_fields = |edit: &dyn Fn(&mut Vec<Term>)| {
            let mut fields = seed_record();
            edit(&mut fields);
            archive_of(vec![Term::List(fields)])
        };
        let cases: Vec<(Vec<u8>, RecordsError)> = vec![
            (
                vec![131, 80],
                RecordsError::Term(EtfError::UnsupportedTag { tag: 80, offset: 1 }),
            ),
            (etf::encode(&Term::List(vec![])), RecordsError::NotAnArchive),
            (etf::encode(&atom(RECORD)), RecordsError::NotAnArchive),
            (
                etf::encode(&Term::List(vec![
                    Term::Tuple(vec![atom(RECORD), Term::List(vec![])]),
                    Term::Tuple(vec![atom(RECORD), Term::List(vec![])]),
                ])),
                RecordsError::NotAnArchive,
            ),
            (
                etf::encode(&Term::List(vec![Term::Tuple(vec![
                    atom("records"),
                    Term::List(vec![]),
                ])])),
                RecordsError::NotAnArchive,
            ),
            (
                etf::encode(&Term::List(vec![Term::Tuple(vec![
                    atom(RECORD),
                    binary(""),
                ])])),
                RecordsError::NotAnArchive,
            ),
            (
                archive_of(vec![Term::Tuple(seed_record())]),
                RecordsError::RecordNotProplist { record: 0 },
            ),
            (
                archive_of(vec![
                    Term::List(seed_record()),
                    Term::List(vec![binary("x")]),
                ]),
                RecordsError::RecordNotProplist { record: 1 },
            ),
            (
                with_fields(&|f| f.push(pair("agent", binary("a@h")))),
                RecordsError::UnknownKey { record: 0 },
            ),
            (
                with_fields(&|f| f.push(pair(USER, binary("w@c")))),
                RecordsError::DuplicateKey {
                    record: 0,
                    key: USER,
                },
            ),
            (
                with_fields(&|f| {
                    f.remove(0);
                }),
                RecordsError::MissingKey {
                    record: 0,
                    key: CURRENT_TIME,
                },
            ),
            (
                with_fields(&|f| f[1] = pair(USER, atom("v"))),
                RecordsError::NotText {
                    record: 0,
                    key: USER,
                },
            ),
            (
                with_fields(&|f| f[1] = pair(USER, Term::Binary(vec![0xff]))),
                RecordsError::NotText {
                    record: 0,
                    key: USER,
                },
            ),
            (
                // An Erlang string (a list) where a binary belongs.
                with_fields(&|f| {
                    f[0] = pair(
                        CURRENT_TIME,
                        Term::List(
                            "2026-11-25T13:12:00.000000Z"
                                .bytes()
                                .map(|b| Term::Integer(i64::from(b)))
                                .collect(),
                        ),
                    )
                }),
                RecordsError::NotText {
                    record: 0,
                    key: CURRENT_TIME,
                },
            ),
            (
                with_fields(&|f| f[0] = pair(CURRENT_TIME, binary("2026-11-25T13:12:00Z"))),
                RecordsError::StartTime {
                    record: 0,
                    error: TimeError::Malformed,
                },
            ),
            (
                with_fields(&|f| f[2] = pair(CONVERSATION, binary(SEED_ENTRY))),
                RecordsError::ConversationNotList { record: 0 },
            ),
            (
                with_fields(&|f| {
                    f[2] = pair(
                        CONVERSATION,
                        Term::List(vec![binary(SEED_ENTRY), Term::Integer(1)]),
                    )
                }),
                RecordsError::EntryNotText {
                    record: 0,
                    entry: 1,
                },
            ),
            (
                with_fields(&|f| f[2] = pair(CONVERSATION, Term::List(vec![binary("|msg^hi|")]))),
                RecordsError::Entry {
                    record: 0,
                    entry: 0,
                    error: CodecError::FieldCount { found: 1 },
                },
            ),
        ];
        for (bytes, error) in cases {
            assert_eq!(decode_archive(&bytes), Err(error));
        }
    }

    #[test]
    fn errors_say_where() {
        let error = RecordsError::Entry {
            record: 2,
            entry: 5,
            error: CodecError::BadEscape { field: "msg" },
        };
        assert_eq!(
            error.to_string(),
            "record 2, entry 5: value of \"msg\" has a '%' not followed by 25, 7C or 5E"
        );
        assert!(std::error::Error::source(&error).is_some());
    }

    #[test]
    fn merge_unites_and_orders() {
        let mut archive = vec![
            record(20, "b@c", vec![entry(25, "later")]),
            record(10, "a@c", vec![entry(12, "two"), entry(11, "one")]),
        ];
        merge(
            &mut archive,
            vec![
                record(10, "a@c", vec![entry(11, "one"), entry(13, "three")]),
                record(20, "a@c", vec![entry(21, "other visitor")]),
            ],
        );
        assert_eq!(
            archive,
            vec![
                record(
                    10,
                    "a@c",
                    vec![entry(11, "one"), entry(12, "two"), entry(13, "three")]
                ),
                record(20, "a@c", vec![entry(21, "other visitor")]),
                record(20, "b@c", vec![entry(25, "later")]),
            ]
        );
    }

    #[test]
    fn equal_times_keep_first_seen_order() {
        let mut archive = vec![record(0, "a@c", vec![entry(5, "x"), entry(5, "y")])];
        merge(
            &mut archive,
            vec![record(
                0,
                "a@c",
                vec![entry(5, "z"), entry(5, "x"), entry(4, "w")],
            )],
        );
        assert_eq!(
            archive[0].entries,
            vec![entry(4, "w"), entry(5, "x"), entry(5, "y"), entry(5, "z")]
        );
    }
}
