//! Header block encoding (RFC 7541 §6), with a simple strategy:
//!
//! - a field found whole in a table is indexed (§6.1);
//! - any other is a literal with incremental indexing (§6.2.1), its name
//!   indexed when a table has it (static table first), unless the entry
//!   would not fit in the table at all (then §6.2.2, without indexing, so
//!   one huge field does not flush the table for nothing);
//! - a sensitive field is a never-indexed literal (§6.2.3, §7.1.3), so no
//!   intermediary compresses it either.
//!
//! Strings are Huffman coded when that is strictly shorter (§5.2). The
//! table never grows past 4096 bytes (the RFC's default), whatever the peer
//! allows: requests from one client repeat a few fields, and memory is
//! spent per connection.

use super::table::{Found, Table, entry_size};
use super::{huffman, integer};

/// The largest dynamic table we use, and the initial size (§4.2, RFC 9113
/// §6.5.2).
const MAX_TABLE_SIZE: usize = 4096;

/// Encodes the header blocks of one direction of one connection, in order.
#[derive(Debug)]
pub(crate) struct Encoder {
    table: Table,
    /// The smallest size set since the last block, when a size change is
    /// waiting to be signalled (§4.2).
    pending_low: Option<usize>,
    /// The maximum size the peer's decoder last heard of.
    announced: usize,
    /// Whether strings may be Huffman coded; off only in tests, to compare
    /// with the RFC's examples without Huffman coding.
    huffman: bool,
}

impl Default for Encoder {
    fn default() -> Encoder {
        Encoder::new()
    }
}

impl Encoder {
    /// Starts with the RFC's default 4096-byte table.
    pub(crate) fn new() -> Encoder {
        Encoder {
            table: Table::new(MAX_TABLE_SIZE),
            pending_low: None,
            announced: MAX_TABLE_SIZE,
            huffman: true,
        }
    }

    /// The peer's SETTINGS_HEADER_TABLE_SIZE changed. The encoder uses
    /// min(size, 4096) and signals it at the start of the next block; if
    /// the size went down and back up between blocks, it signals the
    /// minimum, then the final size (§4.2), so the peer evicts what we did.
    pub(crate) fn set_max_table_size(&mut self, size: usize) {
        let size = size.min(MAX_TABLE_SIZE);
        // Evicting now, as the peer will when it reads the update: at the
        // minimum first, at the final size second.
        self.table.set_max_size(size);
        self.pending_low = Some(self.pending_low.map_or(size, |low| low.min(size)));
    }

    /// Appends one header block to `dst`. `sensitive` fields are encoded
    /// "never indexed" (§6.2.3). The caller orders the fields
    /// (pseudo-headers first) and lower-cases names.
    pub(crate) fn encode<'a>(
        &mut self,
        fields: impl IntoIterator<Item = (&'a [u8], &'a [u8], bool)>,
        dst: &mut Vec<u8>,
    ) {
        if let Some(low) = self.pending_low.take() {
            // §6.3: 001xxxxx, 5-bit prefix.
            if low < self.announced {
                integer::encode(dst, 0x20, 5, low);
                self.announced = low;
            }
            let size = self.table.max_size();
            if size != self.announced {
                integer::encode(dst, 0x20, 5, size);
                self.announced = size;
            }
        }
        for (name, value, sensitive) in fields {
            if sensitive {
                // §6.2.3: 0001xxxx, 4-bit name index.
                let name_index = self.table.find_name(name);
                self.literal(dst, 0x10, 4, name_index, name, value);
                continue;
            }
            let name_index = match self.table.find(name, value) {
                Found::Field(index) => {
                    // §6.1: 1xxxxxxx.
                    integer::encode(dst, 0x80, 7, index);
                    continue;
                }
                Found::Name(index) => Some(index),
                Found::None => None,
            };
            if entry_size(name, value) <= self.table.max_size() {
                // §6.2.1: 01xxxxxx, 6-bit name index.
                self.literal(dst, 0x40, 6, name_index, name, value);
                self.table.insert(Box::from(name), Box::from(value));
            } else {
                // §6.2.2: 0000xxxx, 4-bit name index.
                self.literal(dst, 0x00, 4, name_index, name, value);
            }
        }
    }

    /// A literal representation (§6.2): the pattern in `flags`, the name by
    /// index or as a string, the value as a string.
    fn literal(
        &self,
        dst: &mut Vec<u8>,
        flags: u8,
        prefix: u32,
        name_index: Option<usize>,
        name: &[u8],
        value: &[u8],
    ) {
        match name_index {
            Some(index) => integer::encode(dst, flags, prefix, index),
            None => {
                integer::encode(dst, flags, prefix, 0);
                self.string(dst, name);
            }
        }
        self.string(dst, value);
    }

    /// A string literal (§5.2), Huffman coded when that is shorter.
    fn string(&self, dst: &mut Vec<u8>, s: &[u8]) {
        let huffman_len = huffman::encoded_len(s);
        if self.huffman && huffman_len < s.len() {
            integer::encode(dst, 0x80, 7, huffman_len);
            huffman::encode(s, dst);
        } else {
            integer::encode(dst, 0x00, 7, s.len());
            dst.extend_from_slice(s);
        }
    }

    /// The dynamic table, for the tests and the fuzz target.
    #[cfg(any(test, feature = "_fuzz"))]
    pub(super) fn table(&self) -> &Table {
        &self.table
    }

    /// An encoder that never Huffman codes, as in the RFC's examples C.3
    /// and C.5.
    #[cfg(test)]
    pub(super) fn without_huffman() -> Encoder {
        Encoder {
            huffman: false,
            ..Encoder::new()
        }
    }
}
