use super::table::{Found, STATIC, Table};
use super::*;

// ---- helpers ----

/// Header fields as owned (name, value) pairs.
type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// Header fields or table entries as text, in a case table.
type Pairs = &'static [(&'static str, &'static str)];

/// Bytes from hex, whitespace ignored (so the RFC's dumps paste as they are).
fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .map(|b| match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => panic!("not hex: {s:?}"),
        })
        .collect();
    assert!(digits.len() % 2 == 0, "odd hex: {s:?}");
    digits.chunks(2).map(|d| d[0] << 4 | d[1]).collect()
}

fn fields(list: &[(&str, &str)]) -> Fields {
    list.iter()
        .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect()
}

/// A table's dynamic entries, newest first, as text.
fn entries(table: &Table) -> Vec<(String, String)> {
    table
        .entries()
        .map(|(n, v)| {
            (
                String::from_utf8_lossy(n).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            )
        })
        .collect()
}

fn strings(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

/// Decodes one block: the fields emitted (also before an error) and the
/// result.
fn decode(dec: &mut Decoder, block: &[u8], max_list: usize) -> (Fields, Result<(), DecodeError>) {
    let mut got = Vec::new();
    let result = dec.decode(block, max_list, &mut |n, v| {
        got.push((n.to_vec(), v.to_vec()));
    });
    (got, result)
}

/// Encodes one block of fields, none sensitive.
fn encode(enc: &mut Encoder, list: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    enc.encode(
        list.iter()
            .map(|(n, v)| (n.as_bytes(), v.as_bytes(), false)),
        &mut out,
    );
    out
}

/// A tiny deterministic PRNG (xorshift64) for the randomised tests.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform enough in 0..n.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

// ---- §5.1 integers ----

#[test]
fn integer_examples() {
    // (value, prefix, bytes): C.1.1–C.1.3, then the edges of the prefix.
    let cases: &[(usize, u32, &[u8])] = &[
        (10, 5, &[0x0a]),               // C.1.1
        (1337, 5, &[0x1f, 0x9a, 0x0a]), // C.1.2
        (42, 8, &[0x2a]),               // C.1.3
        (0, 5, &[0x00]),
        (30, 5, &[0x1e]),
        (31, 5, &[0x1f, 0x00]),
        (158, 5, &[0x1f, 0x7f]),
        (159, 5, &[0x1f, 0x80, 0x01]),
        (126, 7, &[0x7e]),
        (127, 7, &[0x7f, 0x00]),
        (128, 7, &[0x7f, 0x01]),
        (14, 4, &[0x0e]),
        (15, 4, &[0x0f, 0x00]),
        (62, 6, &[0x3e]),
        (63, 6, &[0x3f, 0x00]),
        // u32::MAX - 31 = 0xffff_ffe0 in 7-bit groups, low first.
        (u32::MAX as usize, 5, &[0x1f, 0xe0, 0xff, 0xff, 0xff, 0x0f]),
    ];
    for &(value, prefix, bytes) in cases {
        let mut out = Vec::new();
        integer::encode(&mut out, 0, prefix, value);
        assert_eq!(out, bytes, "encode {value} with a {prefix}-bit prefix");

        // Decoding ignores the bits above the prefix and stops at the
        // integer's end.
        let mut input = bytes.to_vec();
        input[0] |= !(u8::MAX >> (8 - prefix));
        input.push(0x55);
        let mut src = input.as_slice();
        assert_eq!(
            integer::decode(&mut src, prefix),
            Ok(value as u64),
            "{bytes:02x?}"
        );
        assert_eq!(src, [0x55]);
    }
}

#[test]
fn integer_errors() {
    let cases: &[(&str, &[u8], DecodeError)] = &[
        ("empty", &[], DecodeError::Truncated),
        (
            "prefix full, nothing after",
            &[0x1f],
            DecodeError::Truncated,
        ),
        ("continuation cut", &[0x1f, 0x80], DecodeError::Truncated),
        (
            "four continuations cut",
            &[0x1f, 0x80, 0x80, 0x80, 0x80],
            DecodeError::Truncated,
        ),
        (
            "sixth continuation byte",
            &[0x1f, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00],
            DecodeError::IntegerOverflow,
        ),
        (
            "10 continuation bytes",
            &[
                0x1f, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00,
            ],
            DecodeError::IntegerOverflow,
        ),
        (
            "u32::MAX + 1",
            &[0x1f, 0xe1, 0xff, 0xff, 0xff, 0x0f],
            DecodeError::IntegerOverflow,
        ),
        (
            "35 bits",
            &[0x1f, 0xff, 0xff, 0xff, 0xff, 0x7f],
            DecodeError::IntegerOverflow,
        ),
    ];
    for &(name, bytes, want) in cases {
        let mut src = bytes;
        assert_eq!(integer::decode(&mut src, 5), Err(want), "{name}");
        assert_eq!(src, bytes, "{name}: input consumed on error");
    }
    // Redundant zero groups are fine while they stay within the bound.
    let mut src: &[u8] = &[0x1f, 0x80, 0x80, 0x80, 0x80, 0x00];
    assert_eq!(integer::decode(&mut src, 5), Ok(31));
}

// ---- §5.2, Appendix B Huffman ----

/// Every Huffman string in Appendix C, with its code.
const HUFFMAN_EXAMPLES: &[(&str, &str)] = &[
    ("www.example.com", "f1e3 c2e5 f23a 6ba0 ab90 f4ff"),
    ("no-cache", "a8eb 1064 9cbf"),
    ("custom-key", "25a8 49e9 5ba9 7d7f"),
    ("custom-value", "25a8 49e9 5bb8 e8b4 bf"),
    ("302", "6402"),
    ("307", "640e ff"),
    ("private", "aec3 771a 4b"),
    (
        "Mon, 21 Oct 2013 20:13:21 GMT",
        "d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff",
    ),
    (
        "Mon, 21 Oct 2013 20:13:22 GMT",
        "d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff",
    ),
    (
        "https://www.example.com",
        "9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3",
    ),
    ("gzip", "9bd9 ab"),
    (
        "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
        "94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07",
    ),
];

#[test]
fn huffman_rfc_examples() {
    for &(text, code) in HUFFMAN_EXAMPLES {
        let code = hex(code);
        let mut out = Vec::new();
        huffman::encode(text.as_bytes(), &mut out);
        assert_eq!(out, code, "encode {text:?}");
        assert_eq!(
            huffman::encoded_len(text.as_bytes()),
            code.len(),
            "{text:?}"
        );
        let mut out = Vec::new();
        assert_eq!(huffman::decode(&code, &mut out), Ok(()), "decode {text:?}");
        assert_eq!(out, text.as_bytes());
    }
}

#[test]
fn huffman_round_trips_every_octet() {
    let all: Vec<u8> = (0..=255).collect();
    let mut reversed = all.clone();
    reversed.reverse();
    let mut inputs: Vec<Vec<u8>> = (0..=255).map(|b| vec![b]).collect();
    inputs.push(all);
    inputs.push(reversed);
    inputs.push(Vec::new());
    // Seventeen bits, so seven bits of padding: the most allowed.
    inputs.push(b"0AA".to_vec());
    for input in inputs {
        let mut code = Vec::new();
        huffman::encode(&input, &mut code);
        assert_eq!(code.len(), huffman::encoded_len(&input), "{input:02x?}");
        let mut out = Vec::new();
        assert_eq!(huffman::decode(&code, &mut out), Ok(()), "{input:02x?}");
        assert_eq!(out, input);
    }
}

/// The table is the canonical code of its lengths (Appendix B is: codes of
/// one length are consecutive in symbol order, each length starting where
/// the shorter ones left off), and the lengths fill the code space exactly
/// (Kraft sum 1). A mistyped code or length breaks one or the other.
#[test]
fn huffman_table_is_canonical_and_complete() {
    let codes = huffman::codes();
    let mut order: Vec<usize> = (0..codes.len()).collect();
    order.sort_by_key(|&sym| (codes[sym].1, sym));
    let mut next = 0u64;
    let mut len = codes[order[0]].1;
    for &sym in &order {
        let (code, l) = codes[sym];
        next <<= l - len;
        len = l;
        assert_eq!(u64::from(code), next, "symbol {sym}");
        next += 1;
    }
    assert_eq!(next, 1 << len, "code space not filled");
    let kraft: u64 = codes.iter().map(|&(_, l)| 1u64 << (30 - l)).sum();
    assert_eq!(kraft, 1 << 30);
    assert_eq!(codes[256], (0x3fff_ffff, 30), "EOS");
    assert_eq!(codes[usize::from(b'0')], (0, 5));
}

#[test]
fn huffman_errors() {
    // (what, code, result)
    let cases: &[(&str, &str, Result<&str, DecodeError>)] = &[
        ("empty", "", Ok("")),
        ("'a' and 3 bits of padding", "1f", Ok("a")),
        ("'&', no padding", "f8", Ok("&")),
        (
            "8 bits of padding alone",
            "ff",
            Err(DecodeError::BadHuffman),
        ),
        (
            "'0' then 11 bits of padding",
            "07ff",
            Err(DecodeError::BadHuffman),
        ),
        (
            "'a' then a full octet of padding",
            "1fff",
            Err(DecodeError::BadHuffman),
        ),
        (
            "padding with a zero bit",
            "06",
            Err(DecodeError::BadHuffman),
        ),
        ("padding all zeros", "00", Err(DecodeError::BadHuffman)),
        ("EOS alone", "ffff ffff", Err(DecodeError::BadHuffman)),
        ("EOS then zeros", "ffff fffc", Err(DecodeError::BadHuffman)),
        ("'a' then EOS", "1fff ffff ff", Err(DecodeError::BadHuffman)),
    ];
    for &(what, code, want) in cases {
        let mut out = Vec::new();
        let got = huffman::decode(&hex(code), &mut out).map(|()| out);
        assert_eq!(got, want.map(|s| s.as_bytes().to_vec()), "{what}");
    }
}

// ---- §2.3, §4 tables ----

#[test]
fn static_table() {
    let table = Table::new(4096);
    let cases: &[(usize, Option<(&str, &str)>)] = &[
        (0, None),
        (1, Some((":authority", ""))),
        (2, Some((":method", "GET"))),
        (8, Some((":status", "200"))),
        (16, Some(("accept-encoding", "gzip, deflate"))),
        (24, Some(("cache-control", ""))),
        (55, Some(("set-cookie", ""))),
        (61, Some(("www-authenticate", ""))),
        (62, None),
    ];
    for &(index, want) in cases {
        let want = want.map(|(n, v)| (n.as_bytes(), v.as_bytes()));
        assert_eq!(table.get(index), want, "index {index}");
    }
    assert_eq!(STATIC.len(), 61);
}

#[test]
fn dynamic_table_insert_evict_and_find() {
    let mut table = Table::new(100);
    let insert =
        |t: &mut Table, n: &str, v: &str| t.insert(n.as_bytes().into(), v.as_bytes().into());
    insert(&mut table, "a", "1"); // 34
    insert(&mut table, "b", "2"); // 68
    assert_eq!(entries(&table), strings(&[("b", "2"), ("a", "1")]));
    assert_eq!(table.size(), 68);
    assert_eq!(table.get(62), Some((&b"b"[..], &b"2"[..])));
    assert_eq!(table.get(63), Some((&b"a"[..], &b"1"[..])));
    assert_eq!(table.get(64), None);

    // §4.4: the oldest goes to make room.
    insert(&mut table, "c", "3");
    assert_eq!(entries(&table), strings(&[("c", "3"), ("b", "2")]));
    assert_eq!(table.size(), 68);

    // Lookups: exact beats name; static first.
    assert_eq!(table.find(b"b", b"2"), Found::Field(63));
    assert_eq!(table.find(b"b", b"9"), Found::Name(63));
    assert_eq!(table.find(b"zz", b""), Found::None);
    assert_eq!(table.find(b":method", b"POST"), Found::Field(3));
    assert_eq!(table.find(b":method", b"PUT"), Found::Name(2));
    assert_eq!(table.find_name(b"c"), Some(62));
    assert_eq!(table.find_name(b"age"), Some(21));
    assert_eq!(table.find_name(b"zz"), None);

    // An entry of exactly the table's size fits, alone.
    insert(&mut table, "d", &"x".repeat(67));
    assert_eq!(table.size(), 100);
    assert_eq!(entries(&table).len(), 1);

    // §4.4: an entry larger than the table empties it.
    insert(&mut table, "a", "1");
    insert(&mut table, "e", &"x".repeat(68));
    assert_eq!(entries(&table), strings(&[]));
    assert_eq!(table.size(), 0);

    // §4.3: a smaller maximum evicts the oldest.
    insert(&mut table, "a", "1");
    insert(&mut table, "b", "2");
    table.set_max_size(40);
    assert_eq!(entries(&table), strings(&[("b", "2")]));
    table.set_max_size(0);
    assert_eq!(entries(&table), strings(&[]));
    assert_eq!(table.size(), 0);
}

// ---- Appendix C.2: one representation each ----

#[test]
fn rfc_c2_representations() {
    // (section, block, fields, dynamic table after, its size)
    let cases: &[(&str, &str, Pairs, Pairs, usize)] = &[
        (
            "C.2.1 literal with indexing",
            "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572",
            &[("custom-key", "custom-header")],
            &[("custom-key", "custom-header")],
            55,
        ),
        (
            "C.2.2 literal without indexing",
            "040c 2f73 616d 706c 652f 7061 7468",
            &[(":path", "/sample/path")],
            &[],
            0,
        ),
        (
            "C.2.3 literal never indexed",
            "1008 7061 7373 776f 7264 0673 6563 7265 74",
            &[("password", "secret")],
            &[],
            0,
        ),
        ("C.2.4 indexed", "82", &[(":method", "GET")], &[], 0),
    ];
    for &(section, block, want, table, size) in cases {
        let mut dec = Decoder::new(4096);
        let (got, result) = decode(&mut dec, &hex(block), usize::MAX);
        assert_eq!(result, Ok(()), "{section}");
        assert_eq!(got, fields(want), "{section}");
        assert_eq!(entries(dec.table()), strings(table), "{section}");
        assert_eq!(dec.table().size(), size, "{section}");
    }
}

/// The encoder writes C.2.1, C.2.3 and C.2.4 as the RFC does (C.2.2 is a
/// literal without indexing, which it only uses for fields too large for
/// the table).
#[test]
fn rfc_c2_encoder() {
    let cases: &[(&str, (&str, &str, bool), &str)] = &[
        (
            "C.2.1",
            ("custom-key", "custom-header", false),
            "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572",
        ),
        (
            "C.2.3",
            ("password", "secret", true),
            "1008 7061 7373 776f 7264 0673 6563 7265 74",
        ),
        ("C.2.4", (":method", "GET", false), "82"),
    ];
    for &(section, (name, value, sensitive), want) in cases {
        let mut enc = Encoder::without_huffman();
        let mut out = Vec::new();
        enc.encode([(name.as_bytes(), value.as_bytes(), sensitive)], &mut out);
        assert_eq!(out, hex(want), "{section}");
    }
}

// ---- Appendix C.3–C.6: sequences on one connection ----

/// One block of an Appendix C sequence.
struct Step {
    /// The RFC's hex dump.
    block: &'static str,
    /// The decoded header list.
    fields: Pairs,
    /// The dynamic table after it, newest first, and the table's size.
    table: Pairs,
    size: usize,
    /// What our encoder writes for `fields` when that differs from the RFC.
    ours: Option<&'static str>,
}

const REQ1: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "http"),
    (":path", "/"),
    (":authority", "www.example.com"),
];
const REQ2: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "http"),
    (":path", "/"),
    (":authority", "www.example.com"),
    ("cache-control", "no-cache"),
];
const REQ3: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "https"),
    (":path", "/index.html"),
    (":authority", "www.example.com"),
    ("custom-key", "custom-value"),
];
const REQ_TABLE1: &[(&str, &str)] = &[(":authority", "www.example.com")];
const REQ_TABLE2: &[(&str, &str)] = &[
    ("cache-control", "no-cache"),
    (":authority", "www.example.com"),
];
const REQ_TABLE3: &[(&str, &str)] = &[
    ("custom-key", "custom-value"),
    ("cache-control", "no-cache"),
    (":authority", "www.example.com"),
];

const DATE1: &str = "Mon, 21 Oct 2013 20:13:21 GMT";
const DATE2: &str = "Mon, 21 Oct 2013 20:13:22 GMT";
const LOCATION: &str = "https://www.example.com";
const COOKIE: &str = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1";

const RESP1: &[(&str, &str)] = &[
    (":status", "302"),
    ("cache-control", "private"),
    ("date", DATE1),
    ("location", LOCATION),
];
const RESP2: &[(&str, &str)] = &[
    (":status", "307"),
    ("cache-control", "private"),
    ("date", DATE1),
    ("location", LOCATION),
];
const RESP3: &[(&str, &str)] = &[
    (":status", "200"),
    ("cache-control", "private"),
    ("date", DATE2),
    ("location", LOCATION),
    ("content-encoding", "gzip"),
    ("set-cookie", COOKIE),
];
const RESP_TABLE1: &[(&str, &str)] = &[
    ("location", LOCATION),
    ("date", DATE1),
    ("cache-control", "private"),
    (":status", "302"),
];
const RESP_TABLE2: &[(&str, &str)] = &[
    (":status", "307"),
    ("location", LOCATION),
    ("date", DATE1),
    ("cache-control", "private"),
];
const RESP_TABLE3: &[(&str, &str)] = &[
    ("set-cookie", COOKIE),
    ("content-encoding", "gzip"),
    ("date", DATE2),
];

/// C.3: requests without Huffman coding.
const C3: &[Step] = &[
    Step {
        block: "8286 8441 0f77 7777 2e65 7861 6d70 6c65
                2e63 6f6d",
        fields: REQ1,
        table: REQ_TABLE1,
        size: 57,
        ours: None,
    },
    Step {
        block: "8286 84be 5808 6e6f 2d63 6163 6865",
        fields: REQ2,
        table: REQ_TABLE2,
        size: 110,
        ours: None,
    },
    Step {
        block: "8287 85bf 400a 6375 7374 6f6d 2d6b 6579
                0c63 7573 746f 6d2d 7661 6c75 65",
        fields: REQ3,
        table: REQ_TABLE3,
        size: 164,
        ours: None,
    },
];

/// C.4: the same requests with Huffman coding.
const C4: &[Step] = &[
    Step {
        block: "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4
                ff",
        fields: REQ1,
        table: REQ_TABLE1,
        size: 57,
        ours: None,
    },
    Step {
        block: "8286 84be 5886 a8eb 1064 9cbf",
        fields: REQ2,
        table: REQ_TABLE2,
        size: 110,
        ours: None,
    },
    Step {
        block: "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925
                a849 e95b b8e8 b4bf",
        fields: REQ3,
        table: REQ_TABLE3,
        size: 164,
        ours: None,
    },
];

/// C.5: responses without Huffman coding, 256-byte table.
const C5: &[Step] = &[
    Step {
        block: "4803 3330 3258 0770 7269 7661 7465 611d
                4d6f 6e2c 2032 3120 4f63 7420 3230 3133
                2032 303a 3133 3a32 3120 474d 546e 1768
                7474 7073 3a2f 2f77 7777 2e65 7861 6d70
                6c65 2e63 6f6d",
        fields: RESP1,
        table: RESP_TABLE1,
        size: 222,
        ours: None,
    },
    Step {
        block: "4803 3330 37c1 c0bf",
        fields: RESP2,
        table: RESP_TABLE2,
        size: 222,
        ours: None,
    },
    Step {
        block: "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420
                3230 3133 2032 303a 3133 3a32 3220 474d
                54c0 5a04 677a 6970 7738 666f 6f3d 4153
                444a 4b48 514b 425a 584f 5157 454f 5049
                5541 5851 5745 4f49 553b 206d 6178 2d61
                6765 3d33 3630 303b 2076 6572 7369 6f6e
                3d31",
        fields: RESP3,
        table: RESP_TABLE3,
        size: 215,
        ours: None,
    },
];

/// C.6: the same responses with Huffman coding.
const C6: &[Step] = &[
    Step {
        block: "4882 6402 5885 aec3 771a 4b61 96d0 7abe
                9410 54d4 44a8 2005 9504 0b81 66e0 82a6
                2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8
                e9ae 82ae 43d3",
        fields: RESP1,
        table: RESP_TABLE1,
        size: 222,
        ours: None,
    },
    Step {
        block: "4883 640e ffc1 c0bf",
        fields: RESP2,
        table: RESP_TABLE2,
        size: 222,
        // "307" is 3 octets Huffman coded too; we only code when shorter.
        ours: Some("4803 3330 37c1 c0bf"),
    },
    Step {
        block: "88c1 6196 d07a be94 1054 d444 a820 0595
                040b 8166 e084 a62d 1bff c05a 839b d9ab
                77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b
                3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
                9587 3160 65c0 03ed 4ee5 b106 3d50 07",
        fields: RESP3,
        table: RESP_TABLE3,
        size: 215,
        ours: None,
    },
];

/// The four sequences: (section, steps, table size, Huffman coding).
const SEQUENCES: &[(&str, &[Step], usize, bool)] = &[
    ("C.3", C3, 4096, false),
    ("C.4", C4, 4096, true),
    ("C.5", C5, 256, false),
    ("C.6", C6, 256, true),
];

/// Decodes each sequence on one decoder, checking the fields and the table
/// after each block; encodes the same lists on one encoder, checking the
/// bytes (the RFC's, or ours where the strategy differs), the encoder's
/// table, and that a second decoder reads our bytes back.
#[test]
fn rfc_c3_to_c6_sequences() {
    for &(section, steps, table_size, huffman) in SEQUENCES {
        let mut dec = Decoder::new(table_size);
        let mut enc = if huffman {
            Encoder::new()
        } else {
            Encoder::without_huffman()
        };
        let mut our_dec = Decoder::new(table_size);
        // A table smaller than the default is announced in the first block
        // (the RFC's examples leave that out).
        let mut update = Vec::new();
        if table_size != 4096 {
            enc.set_max_table_size(table_size);
            update = hex("3fe1 01"); // 256 = 31 + 225: 0xe1, 0x01
        }
        for (i, step) in steps.iter().enumerate() {
            let at = format!("{section}.{}", i + 1);
            let (got, result) = decode(&mut dec, &hex(step.block), usize::MAX);
            assert_eq!(result, Ok(()), "{at}");
            assert_eq!(got, fields(step.fields), "{at}");
            assert_eq!(entries(dec.table()), strings(step.table), "{at}");
            assert_eq!(dec.table().size(), step.size, "{at}");

            let out = encode(&mut enc, step.fields);
            let mut want = if i == 0 { update.clone() } else { Vec::new() };
            want.extend(hex(step.ours.unwrap_or(step.block)));
            assert_eq!(out, want, "{at}: encoder");
            assert_eq!(entries(enc.table()), strings(step.table), "{at}: encoder");

            let (got, result) = decode(&mut our_dec, &out, usize::MAX);
            assert_eq!(result, Ok(()), "{at}: our block");
            assert_eq!(got, fields(step.fields), "{at}: our block");
        }
    }
}

/// Every prefix of every block of C.3–C.6 (on a decoder that read the
/// blocks before it) decodes to a prefix of the block's fields: all of
/// them for the whole block, else fewer, with `Truncated` unless the cut
/// falls between representations.
#[test]
fn truncation_at_every_byte() {
    for &(section, steps, table_size, _) in SEQUENCES {
        for (i, step) in steps.iter().enumerate() {
            let block = hex(step.block);
            let want = fields(step.fields);
            for cut in 0..=block.len() {
                let mut dec = Decoder::new(table_size);
                for earlier in &steps[..i] {
                    assert_eq!(decode(&mut dec, &hex(earlier.block), usize::MAX).1, Ok(()));
                }
                let (got, result) = decode(&mut dec, &block[..cut], usize::MAX);
                let at = format!("{section}.{} cut at {cut}", i + 1);
                assert!(want.starts_with(&got), "{at}: {got:?}");
                if cut == block.len() {
                    assert_eq!((got.len(), result), (want.len(), Ok(())), "{at}");
                } else {
                    assert!(got.len() < want.len(), "{at}");
                    assert!(
                        matches!(result, Ok(()) | Err(DecodeError::Truncated)),
                        "{at}: {result:?}"
                    );
                }
            }
        }
    }
}

// ---- malformed blocks ----

#[test]
fn malformed_blocks() {
    // (what, block, error), each on a fresh decoder with a 4096 limit.
    let cases: &[(&str, &str, DecodeError)] = &[
        ("indexed 0", "80", DecodeError::BadIndex(0)),
        (
            "indexed 62, empty dynamic table",
            "be",
            DecodeError::BadIndex(62),
        ),
        ("indexed 16511", "ff 80 80 01", DecodeError::BadIndex(16511)),
        (
            "incremental indexing, name index 62",
            "7e 01 61",
            DecodeError::BadIndex(62),
        ),
        (
            "never indexed, name index 64",
            "1f 31 01 61",
            DecodeError::BadIndex(64),
        ),
        (
            "without indexing, name index 70",
            "0f 37 01 61",
            DecodeError::BadIndex(70),
        ),
        (
            "index 62 after a field that was not indexed",
            "00 01 61 01 62 be",
            DecodeError::BadIndex(62),
        ),
        (
            "size update 4097",
            "3f e2 1f",
            DecodeError::TableSizeUpdateTooLarge,
        ),
        (
            "size update u32::MAX",
            "3f e0 ff ff ff 0f",
            DecodeError::TableSizeUpdateTooLarge,
        ),
        (
            "size update after a field",
            "82 20",
            DecodeError::LateTableSizeUpdate,
        ),
        (
            "size update after a literal",
            "40 01 61 01 62 3f e1 1f",
            DecodeError::LateTableSizeUpdate,
        ),
        (
            "index with 10 continuation bytes",
            "ff 80 80 80 80 80 80 80 80 80 00",
            DecodeError::IntegerOverflow,
        ),
        (
            "string length with 10 continuation bytes",
            "40 7f 80 80 80 80 80 80 80 80 80 00",
            DecodeError::IntegerOverflow,
        ),
        (
            "index above u32::MAX",
            "ff ff ff ff ff 7f",
            DecodeError::IntegerOverflow,
        ),
        ("index cut", "ff 80", DecodeError::Truncated),
        ("literal without a name", "40", DecodeError::Truncated),
        ("literal without a value", "41", DecodeError::Truncated),
        ("name past the end", "40 05 61 62", DecodeError::Truncated),
        ("value past the end", "41 03 61 62", DecodeError::Truncated),
        (
            "huge string length",
            "40 7f 80 80 80 80 0f 61",
            DecodeError::Truncated,
        ),
        (
            "huffman name, 8 bits of padding",
            "40 81 ff 01 61",
            DecodeError::BadHuffman,
        ),
        (
            "huffman value, padding with a zero",
            "01 81 06",
            DecodeError::BadHuffman,
        ),
        (
            "huffman value, EOS",
            "01 84 ff ff ff ff",
            DecodeError::BadHuffman,
        ),
        (
            "bad huffman in a never-indexed literal",
            "10 01 61 81 00",
            DecodeError::BadHuffman,
        ),
    ];
    for &(what, block, want) in cases {
        let mut dec = Decoder::new(4096);
        let (_, result) = decode(&mut dec, &hex(block), usize::MAX);
        assert_eq!(result, Err(want), "{what}");
    }
}

#[test]
fn size_updates_at_block_start() {
    // (what, block, fields, dynamic table size limit after)
    let cases: &[(&str, &str, Pairs, usize)] = &[
        (
            "one update to the max",
            "3f e1 1f 82",
            &[(":method", "GET")],
            4096,
        ),
        (
            "two updates, minimum then final",
            "20 3f e1 1f 82",
            &[(":method", "GET")],
            4096,
        ),
        ("update to 0 alone", "20", &[], 0),
        ("update to 100", "3f 45 82", &[(":method", "GET")], 100),
    ];
    for &(what, block, want, max) in cases {
        let mut dec = Decoder::new(4096);
        let (got, result) = decode(&mut dec, &hex(block), usize::MAX);
        assert_eq!(result, Ok(()), "{what}");
        assert_eq!(got, fields(want), "{what}");
        assert_eq!(dec.table().max_size(), max, "{what}");
    }

    // An update evicts (§4.3), and the table stays at the new size.
    let mut dec = Decoder::new(4096);
    assert_eq!(decode(&mut dec, &hex(C3[0].block), usize::MAX).1, Ok(()));
    assert_eq!(dec.table().size(), 57);
    let (got, result) = decode(&mut dec, &hex("20 82"), usize::MAX);
    assert_eq!((got, result), (fields(&[(":method", "GET")]), Ok(())));
    assert_eq!(dec.table().size(), 0);
    // ... so indexing with the table at 0 adds nothing, and 62 is gone.
    let block = hex("41 03 61 62 63 be");
    assert_eq!(
        decode(&mut dec, &block, usize::MAX).1,
        Err(DecodeError::BadIndex(62))
    );
}

#[test]
fn decoder_entry_larger_than_table_empties_it() {
    let mut dec = Decoder::new(64);
    // custom-key: custom-header is 55 bytes: fits.
    let c21 = hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572");
    assert_eq!(decode(&mut dec, &c21, usize::MAX).1, Ok(()));
    assert_eq!(dec.table().size(), 55);
    // Naming entry 62 with a longer value: the name is copied before the
    // insert evicts its entry (§4.4), and the new entry (70) does not fit.
    let value = "custom-header-value-too-long";
    let mut block = vec![0x7e, value.len() as u8];
    block.extend_from_slice(value.as_bytes());
    let (got, result) = decode(&mut dec, &block, usize::MAX);
    assert_eq!(result, Ok(()));
    assert_eq!(got, fields(&[("custom-key", value)]));
    assert_eq!(entries(dec.table()), strings(&[]));
    assert_eq!(dec.table().size(), 0);
}

// ---- header list limit ----

#[test]
fn header_list_limit() {
    // C.3.1's list is 42 + 43 + 38 + 57 = 180 bytes by RFC 9113 §6.5.2.
    let block = hex(C3[0].block);
    let mut dec = Decoder::new(4096);
    assert_eq!(
        decode(&mut dec, &block, 180),
        (fields(REQ1), Ok(())),
        "at the limit"
    );

    for (limit, emitted) in [(179, 3), (123, 3), (122, 2), (0, 0)] {
        let mut dec = Decoder::new(4096);
        let (got, result) = decode(&mut dec, &block, limit);
        assert_eq!(
            result,
            Err(DecodeError::HeaderListTooLarge),
            "limit {limit}"
        );
        assert_eq!(got, fields(&REQ1[..emitted]), "limit {limit}");
        // The too-large block still added its entry (never emitted), and
        // the next blocks, which index it, decode as the RFC says.
        assert_eq!(entries(dec.table()), strings(REQ_TABLE1), "limit {limit}");
        for step in &C3[1..] {
            let (got, result) = decode(&mut dec, &hex(step.block), usize::MAX);
            assert_eq!(
                (got, result),
                (fields(step.fields), Ok(())),
                "limit {limit}"
            );
            assert_eq!(entries(dec.table()), strings(step.table), "limit {limit}");
        }
    }

    // Nothing after the field over the limit is emitted, however small:
    // abc: xxxxxxxxx (44 bytes) is over 40, y: z (34) would fit alone.
    let mut dec = Decoder::new(4096);
    let block = hex("4003 616263 09 787878787878787878 0001 79 01 7a");
    let (got, result) = decode(&mut dec, &block, 40);
    assert_eq!(result, Err(DecodeError::HeaderListTooLarge));
    assert_eq!(got, fields(&[]));
    assert_eq!(entries(dec.table()), strings(&[("abc", "xxxxxxxxx")]));
}

// ---- encoder ----

/// Request-like field lists, each encoded as one block; the second round
/// repeats them all, so everything comes from the dynamic table.
#[test]
fn encoder_round_trips_across_blocks() {
    let lists: &[&[(&str, &str)]] = &[
        REQ1,
        REQ2,
        REQ3,
        &[
            (":method", "POST"),
            (":scheme", "https"),
            (":authority", "api.example.com:8443"),
            (":path", "/v1/items?limit=10&offset=20"),
            ("content-type", "application/json"),
            ("content-length", "1234"),
            ("user-agent", "nethttp/0.1.0"),
            ("accept", "*/*"),
            ("accept-encoding", "gzip"),
        ],
        &[
            (":method", "GET"),
            (":scheme", "https"),
            (":authority", "api.example.com:8443"),
            (":path", "/v1/items/1"),
            ("user-agent", "nethttp/0.1.0"),
            ("accept", "*/*"),
            ("accept-encoding", "gzip"),
            ("x-empty", ""),
            ("x-dup", "1"),
            ("x-dup", "2"),
            ("x-dup", "1"),
        ],
        &[],
    ];
    let mut enc = Encoder::new();
    let mut dec = Decoder::new(4096);
    for round in 0..2 {
        for (i, list) in lists.iter().enumerate() {
            let block = encode(&mut enc, list);
            let (got, result) = decode(&mut dec, &block, usize::MAX);
            assert_eq!(
                (got, result),
                (fields(list), Ok(())),
                "round {round}, list {i}"
            );
            assert_eq!(entries(enc.table()), entries(dec.table()));
            if round == 1 {
                // Every field indexed, every index in one octet.
                assert_eq!(block.len(), list.len(), "round {round}, list {i}");
                assert!(block.iter().all(|&b| b & 0x80 != 0));
            }
        }
    }
}

#[test]
fn encoder_sensitive_fields_stay_out_of_the_table() {
    let list: &[(&str, &str, bool)] = &[
        ("authorization", "Bearer secret-token", true),
        ("cookie", "session=abc", true),
        ("x-api-key", "k", true),
        (":method", "GET", true),
        ("accept", "*/*", false),
    ];
    let mut enc = Encoder::new();
    let mut dec = Decoder::new(4096);
    let mut blocks = Vec::new();
    for _ in 0..2 {
        let mut block = Vec::new();
        enc.encode(
            list.iter()
                .map(|&(n, v, s)| (n.as_bytes(), v.as_bytes(), s)),
            &mut block,
        );
        let want: Vec<(&str, &str)> = list.iter().map(|&(n, v, _)| (n, v)).collect();
        let (got, result) = decode(&mut dec, &block, usize::MAX);
        assert_eq!((got, result), (fields(&want), Ok(())));
        assert_eq!(entries(enc.table()), strings(&[("accept", "*/*")]));
        assert_eq!(entries(dec.table()), entries(enc.table()));
        blocks.push(block);
    }
    // Same bytes both times for the sensitive fields (nothing of them was
    // indexed); `accept` is indexed the second time (62).
    let n = blocks[1].len() - 1;
    assert_eq!(blocks[0][..n], blocks[1][..n]);
    assert_eq!(blocks[1][n], 0xbe);
    // Each a never-indexed literal: 0001xxxx, the name indexed when static.
    assert_eq!(blocks[0][0], 0x1f, "authorization is static 23 = 15 + 8");
    assert_eq!(blocks[0][1], 0x08);
    // `:method: GET` is in the static table whole, and still not indexed.
    assert!(blocks[0].windows(5).any(|w| w == hex("12 03 474554")));
}

#[test]
fn encoder_size_update_to_zero_and_back() {
    let mut enc = Encoder::new();
    let mut dec = Decoder::new(4096);
    let block = encode(&mut enc, REQ3);
    assert_eq!(decode(&mut dec, &block, usize::MAX).1, Ok(()));

    enc.set_max_table_size(0);
    enc.set_max_table_size(4096);
    let block = encode(&mut enc, REQ3);
    // 0, then 4096 = 31 + 4065: 0x3f, 0xe1, 0x1f.
    assert_eq!(block[..4], hex("20 3fe1 1f"));
    let (got, result) = decode(&mut dec, &block, usize::MAX);
    assert_eq!((got, result), (fields(REQ3), Ok(())));
    // The table was emptied and refilled by this block alone.
    assert_eq!(
        entries(dec.table()),
        strings(&[
            ("custom-key", "custom-value"),
            (":authority", "www.example.com"),
        ])
    );
    assert_eq!(entries(enc.table()), entries(dec.table()));

    // Nothing pending afterwards, and the table is reused again.
    let block = encode(&mut enc, REQ3);
    assert_eq!(block, hex("82 87 85 bf be"));
    assert_eq!(decode(&mut dec, &block, usize::MAX), (fields(REQ3), Ok(())));
}

#[test]
fn encoder_size_update_signalling() {
    // (sizes set between two blocks, the updates the second block starts with)
    let cases: &[(&[usize], &str)] = &[
        (&[4096], ""),
        (&[65536], ""),
        (&[0], "20"),
        (&[100], "3f 45"),
        (&[100, 4096], "3f 45 3f e1 1f"),
        (&[100, 50, 200], "3f 13 3f a9 01"),
        (&[200, 50, 100], "3f 13 3f 45"),
        (&[0, 65536], "20 3f e1 1f"),
        (&[50, 4096, 60], "3f 13 3f 1d"),
    ];
    for &(sizes, want) in cases {
        let mut enc = Encoder::new();
        let mut dec = Decoder::new(4096);
        let block = encode(&mut enc, REQ2);
        assert_eq!(decode(&mut dec, &block, usize::MAX).1, Ok(()));
        for &size in sizes {
            enc.set_max_table_size(size);
        }
        let block = encode(&mut enc, REQ3);
        let want = hex(want);
        assert_eq!(block[..want.len()], want, "{sizes:?}: {block:02x?}");
        assert_ne!(
            block[want.len()] & 0xe0,
            0x20,
            "{sizes:?}: one update too many"
        );
        assert_eq!(
            decode(&mut dec, &block, usize::MAX),
            (fields(REQ3), Ok(())),
            "{sizes:?}"
        );
        assert_eq!(entries(enc.table()), entries(dec.table()), "{sizes:?}");
        assert_eq!(enc.table().max_size(), dec.table().max_size(), "{sizes:?}");
    }
}

#[test]
fn encoder_smaller_table_evicts() {
    let mut enc = Encoder::new();
    let mut dec = Decoder::new(4096);
    for list in [REQ1, REQ2, REQ3] {
        let block = encode(&mut enc, list);
        assert_eq!(decode(&mut dec, &block, usize::MAX).1, Ok(()));
    }
    assert_eq!(enc.table().size(), 164);

    // Room for the newest entry only (54 bytes).
    enc.set_max_table_size(100);
    assert_eq!(
        entries(enc.table()),
        strings(&[("custom-key", "custom-value")])
    );
    let block = encode(&mut enc, REQ1);
    assert_eq!(decode(&mut dec, &block, usize::MAX), (fields(REQ1), Ok(())));
    assert_eq!(
        entries(dec.table()),
        strings(&[(":authority", "www.example.com")])
    );
    assert_eq!(entries(enc.table()), entries(dec.table()));
}

#[test]
fn encoder_field_too_large_for_the_table() {
    let big = "a".repeat(5000);
    let mut enc = Encoder::new();
    let mut dec = Decoder::new(4096);
    let list = [("cookie", big.as_str()), ("x-big", big.as_str())];
    let block = encode(&mut enc, &list);
    // Without indexing (0000xxxx): cookie is static 32 = 15 + 17.
    assert_eq!(block[..2], [0x0f, 0x11]);
    assert_eq!(
        decode(&mut dec, &block, usize::MAX),
        (fields(&list), Ok(()))
    );
    assert_eq!(entries(enc.table()), strings(&[]));
    assert_eq!(entries(dec.table()), strings(&[]));

    // With the table at 0, nothing is indexed, even a small field.
    enc.set_max_table_size(0);
    let block = encode(&mut enc, &[("x-small", "1")]);
    assert_eq!(block[..2], [0x20, 0x00]);
    assert_eq!(
        decode(&mut dec, &block, usize::MAX),
        (fields(&[("x-small", "1")]), Ok(()))
    );
}

#[test]
fn encoder_random_round_trips() {
    const NAMES: &[&str] = &[
        ":method",
        ":path",
        ":authority",
        "content-type",
        "user-agent",
        "accept",
        "cookie",
        "authorization",
        "x-a",
        "x-request-id",
        "",
    ];
    const SIZES: &[usize] = &[0, 1, 33, 64, 100, 256, 1000, 4096, 65536, usize::MAX];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut enc = Encoder::new();
    let mut dec = Decoder::new(4096);
    for block_no in 0..400 {
        if rng.below(8) == 0 {
            for _ in 0..=rng.below(3) {
                let size = if rng.below(2) == 0 {
                    SIZES[rng.below(SIZES.len())]
                } else {
                    rng.below(5000)
                };
                enc.set_max_table_size(size);
            }
        }
        let mut list: Fields = Vec::new();
        let mut sensitive = Vec::new();
        for _ in 0..rng.below(12) {
            let name = match rng.below(4) {
                0 => {
                    let len = rng.below(20);
                    rng.bytes(len)
                }
                _ => NAMES[rng.below(NAMES.len())].as_bytes().to_vec(),
            };
            let value = match rng.below(8) {
                // Repeats, so the dynamic table gets hits.
                0..=2 => format!("v{}", rng.below(4)).into_bytes(),
                3 => {
                    let len = rng.below(5000);
                    rng.bytes(len)
                }
                _ => {
                    let len = rng.below(40);
                    rng.bytes(len)
                }
            };
            list.push((name, value));
            sensitive.push(rng.below(8) == 0);
        }
        let mut block = Vec::new();
        enc.encode(
            list.iter()
                .zip(&sensitive)
                .map(|((n, v), &s)| (n.as_slice(), v.as_slice(), s)),
            &mut block,
        );
        let (got, result) = decode(&mut dec, &block, usize::MAX);
        assert_eq!(result, Ok(()), "block {block_no}");
        assert_eq!(got, list, "block {block_no}");
        assert!(
            enc.table().entries().eq(dec.table().entries()),
            "block {block_no}: tables differ"
        );
        assert_eq!(enc.table().size(), dec.table().size());
    }
}

// ---- no panics ----

/// The fuzz entry point on the RFC's blocks, on random bytes and on the
/// RFC's blocks with random octets changed.
#[test]
fn fuzz_decode_never_panics() {
    let mut valid: Vec<Vec<u8>> = SEQUENCES
        .iter()
        .flat_map(|&(_, steps, _, _)| steps.iter().map(|s| hex(s.block)))
        .collect();
    valid.push(hex(
        "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572",
    ));
    for block in &valid {
        fuzz_decode(block);
    }
    let mut rng = Rng(42);
    for _ in 0..3000 {
        let len = rng.below(48);
        fuzz_decode(&rng.bytes(len));
    }
    for _ in 0..3000 {
        let mut block = valid[rng.below(valid.len())].clone();
        for _ in 0..=rng.below(3) {
            let at = rng.below(block.len());
            block[at] = rng.next() as u8;
        }
        fuzz_decode(&block);
    }
}

#[test]
fn display() {
    let cases: &[(DecodeError, &str)] = &[
        (DecodeError::Truncated, "hpack: header block truncated"),
        (DecodeError::IntegerOverflow, "hpack: integer overflow"),
        (DecodeError::BadIndex(70), "hpack: index 70 out of range"),
        (DecodeError::BadHuffman, "hpack: invalid huffman code"),
        (
            DecodeError::TableSizeUpdateTooLarge,
            "hpack: dynamic table size update above the limit",
        ),
        (
            DecodeError::LateTableSizeUpdate,
            "hpack: dynamic table size update after a field",
        ),
        (
            DecodeError::HeaderListTooLarge,
            "hpack: header list too large",
        ),
    ];
    for &(error, want) in cases {
        assert_eq!(error.to_string(), want);
    }
}
