//! HPACK, the field compression of HTTP/2 (RFC 7541): a pure codec over
//! byte slices. Nothing here does I/O, spawns, locks or allocates beyond
//! the dynamic table, the output and the strings being decoded, so every
//! rule tests on bytes alone (RFC 7541 map):
//!
//! | RFC 7541 | here |
//! |---|---|
//! | §2.3.1, Appendix A static table | [`table::STATIC`] |
//! | §2.3.2, §2.3.3 dynamic table, index address space | [`table::Table`] |
//! | §3.2 header field representation processing | [`Decoder::decode`] |
//! | §4.1 entry size, §4.3, §4.4 eviction | [`table::Table::insert`], [`table::Table::set_max_size`] |
//! | §4.2, §6.3 dynamic table size updates | [`Decoder::decode`], [`Encoder::set_max_table_size`] |
//! | §5.1 prefixed integers | [`integer`] |
//! | §5.2 string literals | [`decoder`], [`Encoder::encode`] |
//! | Appendix B Huffman code | [`huffman`] |
//! | §6.1, §6.2 field representations | [`Decoder::decode`], [`Encoder::encode`] |
//! | §7.1.3 never-indexed literals | `sensitive` in [`Encoder::encode`] |
//!
//! From RFC 9113 (HTTP/2) only two things reach in here: the header list
//! size accounting of §6.5.2 (name + value + 32 per field), which
//! [`Decoder::decode`] bounds, and the rule of §4.3 that a decoding error is
//! a connection error, which is why only [`DecodeError::HeaderListTooLarge`]
//! leaves a decoder worth keeping.

use std::fmt;

mod decoder;
mod encoder;
pub(crate) mod huffman;
mod integer;
mod table;

pub(crate) use decoder::Decoder;
pub(crate) use encoder::Encoder;

#[cfg(test)]
mod tests;

/// An HPACK decoding error. All are connection errors of type
/// COMPRESSION_ERROR (RFC 9113 §4.3), except `HeaderListTooLarge`, after
/// which the decoder's state is still in sync (see [`Decoder::decode`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// The block ends inside a representation.
    Truncated,
    /// An integer does not fit in 32 bits, or has too many continuation
    /// bytes (§5.1 lets it run on forever; we stop at
    /// [`integer::MAX_CONTINUATION`]).
    IntegerOverflow,
    /// Index 0, or past the static and dynamic tables (§2.3.3).
    BadIndex(u64),
    /// A Huffman string with EOS in it, or padding longer than 7 bits or
    /// not all ones (§5.2).
    BadHuffman,
    /// A dynamic table size update above the limit we advertised (§6.3).
    TableSizeUpdateTooLarge,
    /// A dynamic table size update after the block's first field (§4.2).
    LateTableSizeUpdate,
    /// The decoded header list is over the caller's bound (RFC 9113 §6.5.2
    /// accounting); the block was still decoded to its end.
    HeaderListTooLarge,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated => f.write_str("hpack: header block truncated"),
            DecodeError::IntegerOverflow => f.write_str("hpack: integer overflow"),
            DecodeError::BadIndex(index) => write!(f, "hpack: index {index} out of range"),
            DecodeError::BadHuffman => f.write_str("hpack: invalid huffman code"),
            DecodeError::TableSizeUpdateTooLarge => {
                f.write_str("hpack: dynamic table size update above the limit")
            }
            DecodeError::LateTableSizeUpdate => {
                f.write_str("hpack: dynamic table size update after a field")
            }
            DecodeError::HeaderListTooLarge => f.write_str("hpack: header list too large"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Entry point for a fuzz target (feature `_fuzz`): decodes `data` as one
/// header block with a 4096-byte table and a small list bound (so the
/// bound's edge is reachable). Whatever the bytes, nothing panics, and:
///
/// - the fields emitted (also before an error) stay within the bound;
/// - when the block decodes, encoding those fields with a fresh [`Encoder`]
///   (every third field sensitive) and decoding that with a fresh
///   [`Decoder`] gives the same fields, and the two tables agree.
#[cfg(any(test, feature = "_fuzz"))]
pub(crate) fn fuzz_decode(data: &[u8]) {
    const MAX_LIST: usize = 2048;
    let mut fields: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut decoder = Decoder::new(4096);
    let result = decoder.decode(data, MAX_LIST, &mut |n, v| {
        fields.push((n.to_vec(), v.to_vec()));
    });
    let list_size: usize = fields.iter().map(|(n, v)| n.len() + v.len() + 32).sum();
    assert!(list_size <= MAX_LIST, "emitted {list_size} bytes of fields");
    if result.is_err() {
        return;
    }

    let mut encoder = Encoder::new();
    let mut block = Vec::new();
    encoder.encode(
        fields
            .iter()
            .enumerate()
            .map(|(i, (n, v))| (n.as_slice(), v.as_slice(), i % 3 == 2)),
        &mut block,
    );
    let mut again = Vec::new();
    let mut decoder = Decoder::new(4096);
    let result = decoder.decode(&block, MAX_LIST, &mut |n, v| {
        again.push((n.to_vec(), v.to_vec()));
    });
    assert_eq!(result, Ok(()), "re-encoded block: {block:02x?}");
    assert_eq!(again, fields, "re-encoded block: {block:02x?}");
    assert!(
        encoder.table().entries().eq(decoder.table().entries()),
        "tables differ after {block:02x?}"
    );
    assert_eq!(encoder.table().size(), decoder.table().size());
}
