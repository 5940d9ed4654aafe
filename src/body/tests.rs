//! `Accept-Encoding` and `Content-Encoding` as this build's features make
//! them.

use super::{ACCEPT_ENCODING, Encoding, accept_encoding};

const NAMES: [&str; 4] = ["gzip", "deflate", "br", "zstd"];

#[test]
fn accept_encoding_lists_the_enabled_decoders_in_order() {
    for bits in 0..16u8 {
        let enabled = [bits & 1 != 0, bits & 2 != 0, bits & 4 != 0, bits & 8 != 0];
        let names: Vec<&str> = NAMES
            .iter()
            .zip(enabled)
            .filter_map(|(name, on)| on.then_some(*name))
            .collect();
        let want = (!names.is_empty()).then(|| names.join(", "));
        assert_eq!(
            accept_encoding(enabled).map(str::to_string),
            want,
            "{enabled:?}"
        );
    }
}

#[test]
fn this_builds_accept_encoding_names_its_decoders() {
    let tokens: Vec<&str> = Encoding::ENABLED.iter().map(|e| e.token()).collect();
    let want = (!tokens.is_empty()).then(|| tokens.join(", "));
    assert_eq!(ACCEPT_ENCODING.map(str::to_string), want);
    let features = [
        cfg!(feature = "gzip"),
        cfg!(feature = "deflate"),
        cfg!(feature = "brotli"),
        cfg!(feature = "zstd"),
    ];
    let enabled: Vec<&str> = NAMES
        .iter()
        .zip(features)
        .filter_map(|(name, on)| on.then_some(*name))
        .collect();
    assert_eq!(tokens, enabled);
    if features.iter().all(|on| *on) {
        assert_eq!(ACCEPT_ENCODING, Some("gzip, deflate, br, zstd"));
    }
    if features == [true, false, false, false] {
        assert_eq!(ACCEPT_ENCODING, Some("gzip"));
    }
}

#[test]
fn content_encoding_names_one_enabled_decoder() {
    for &e in Encoding::ENABLED {
        let token = e.token();
        assert_eq!(Encoding::parse(token.as_bytes()), Some(e));
        assert_eq!(Encoding::parse(token.to_uppercase().as_bytes()), Some(e));
        assert_eq!(Encoding::parse(format!(" {token}\t").as_bytes()), Some(e));
        // Stacked encodings are left alone.
        assert_eq!(
            Encoding::parse(format!("{token}, {token}").as_bytes()),
            None
        );
        assert_eq!(Encoding::parse(format!("{token},").as_bytes()), None);
        assert_eq!(
            Encoding::parse(format!("identity, {token}").as_bytes()),
            None
        );
    }
    for other in [
        "",
        "identity",
        "compress",
        "x-compress",
        "gzip2",
        "brotli",
        "zst",
    ] {
        assert_eq!(Encoding::parse(other.as_bytes()), None, "{other}");
    }
    // RFC 9110 §8.4.1.3: x-gzip is gzip.
    #[cfg(feature = "gzip")]
    for x in ["x-gzip", "X-Gzip"] {
        assert_eq!(Encoding::parse(x.as_bytes()), Some(Encoding::Gzip));
    }
    // A coding whose feature is off is unknown.
    for (name, on) in NAMES.iter().zip([
        cfg!(feature = "gzip"),
        cfg!(feature = "deflate"),
        cfg!(feature = "brotli"),
        cfg!(feature = "zstd"),
    ]) {
        assert_eq!(Encoding::parse(name.as_bytes()).is_some(), on, "{name}");
    }
}
