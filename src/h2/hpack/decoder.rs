//! Header block decoding (RFC 7541 §3): representations (§6), integers
//! (§5.1) and string literals (§5.2) read off the block, the dynamic table
//! updated as they say.
//!
//! Memory: a string's length is checked against what is left of the block
//! before anything is read, so nothing is allocated from a length alone;
//! raw strings are passed on as slices of the block; Huffman strings are
//! decoded into two scratch buffers (at most 8/5 of the block: the shortest
//! code is 5 bits), trimmed back after each block.

use super::table::Table;
use super::{DecodeError, huffman, integer};

/// Scratch capacity kept between blocks; a larger one (left by a large
/// Huffman string) is given back.
const SCRATCH_KEEP: usize = 4096;

/// Decodes the header blocks of one direction of one connection, in order.
#[derive(Debug)]
pub(crate) struct Decoder {
    table: Table,
    /// The SETTINGS_HEADER_TABLE_SIZE we advertise: the largest size update
    /// we accept (§6.3).
    max_table_size: usize,
    /// Huffman-decoded name and value of the current field.
    name_buf: Vec<u8>,
    value_buf: Vec<u8>,
}

impl Decoder {
    /// `max_table_size`: the SETTINGS_HEADER_TABLE_SIZE we advertise (4096
    /// default); a size update above it is an error. The dynamic table
    /// starts at that size, as the peer's encoder may assume (RFC 9113
    /// §6.5.2).
    pub(crate) fn new(max_table_size: usize) -> Decoder {
        Decoder {
            table: Table::new(max_table_size),
            max_table_size,
            name_buf: Vec::new(),
            value_buf: Vec::new(),
        }
    }

    /// Decodes one complete header block (HEADERS + CONTINUATION payloads
    /// concatenated), calling `emit(name, value)` for each field, in order.
    /// `max_list_size` bounds the decoded header list (RFC 9113 §6.5.2
    /// accounting: name + value + 32 per field).
    ///
    /// When the bound is exceeded, decoding goes on to the block's end
    /// without emitting more fields (so the dynamic table stays in sync
    /// with the peer's encoder and the connection can go on) and then
    /// returns `Err(HeaderListTooLarge)`. Any other error leaves the decoder
    /// unusable: the connection must die (RFC 9113 §4.3).
    pub(crate) fn decode(
        &mut self,
        block: &[u8],
        max_list_size: usize,
        emit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> Result<(), DecodeError> {
        let result = self.decode_block(block, max_list_size, emit);
        for buf in [&mut self.name_buf, &mut self.value_buf] {
            buf.clear();
            buf.shrink_to(SCRATCH_KEEP);
        }
        result
    }

    fn decode_block(
        &mut self,
        block: &[u8],
        max_list_size: usize,
        emit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> Result<(), DecodeError> {
        let Decoder {
            table,
            max_table_size,
            name_buf,
            value_buf,
        } = self;
        let mut src = block;
        // Sum of name + value + 32 over the fields so far (saturating: past
        // the bound its exact value does not matter).
        let mut list_size = 0usize;
        let mut seen_field = false;
        while let Some(&first) = src.first() {
            if first & 0xe0 == 0x20 {
                // §6.3 dynamic table size update: 001xxxxx. Only before the
                // first field (§4.2); several in a row are allowed (the
                // encoder may signal a minimum, then the final size).
                if seen_field {
                    return Err(DecodeError::LateTableSizeUpdate);
                }
                let size = integer::decode(&mut src, 5)?;
                let size = usize::try_from(size)
                    .ok()
                    .filter(|&size| size <= *max_table_size)
                    .ok_or(DecodeError::TableSizeUpdateTooLarge)?;
                table.set_max_size(size);
                continue;
            }
            seen_field = true;

            let mut account = |name: &[u8], value: &[u8]| {
                let size = name.len().saturating_add(value.len()).saturating_add(32);
                list_size = list_size.saturating_add(size);
                if list_size <= max_list_size {
                    emit(name, value);
                }
            };

            if first & 0x80 != 0 {
                // §6.1 indexed field: 1xxxxxxx.
                let index = integer::decode(&mut src, 7)?;
                let (name, value) = lookup(table, index)?;
                account(name, value);
                continue;
            }

            // §6.2 literals: 01xxxxxx with incremental indexing (6-bit name
            // index), 0000xxxx without indexing and 0001xxxx never indexed
            // (4-bit name index). Never-indexed only matters to an
            // intermediary re-encoding the field; we are the endpoint.
            let (prefix, add_to_table) = if first & 0x40 != 0 {
                (6, true)
            } else {
                (4, false)
            };
            let name_index = integer::decode(&mut src, prefix)?;
            let name = if name_index == 0 {
                read_string(&mut src, name_buf)?
            } else {
                lookup(table, name_index)?.0
            };
            let value = read_string(&mut src, value_buf)?;
            account(name, value);
            if add_to_table {
                // Copied before inserting: the name may be an entry that
                // the insert evicts (§4.4).
                let (name, value) = (Box::from(name), Box::from(value));
                table.insert(name, value);
            }
        }
        if list_size > max_list_size {
            return Err(DecodeError::HeaderListTooLarge);
        }
        Ok(())
    }

    /// The dynamic table, for the tests and the fuzz target.
    #[cfg(any(test, feature = "_fuzz"))]
    pub(super) fn table(&self) -> &Table {
        &self.table
    }
}

/// The field at a decoded index (§2.3.3).
fn lookup(table: &Table, index: u64) -> Result<(&[u8], &[u8]), DecodeError> {
    usize::try_from(index)
        .ok()
        .and_then(|i| table.get(i))
        .ok_or(DecodeError::BadIndex(index))
}

/// Reads one string literal (§5.2): `H` bit, 7-bit-prefix length, octets.
/// A raw string is returned as a slice of the block; a Huffman one is
/// decoded into `scratch`.
fn read_string<'s, 'b: 's>(
    src: &mut &'b [u8],
    scratch: &'s mut Vec<u8>,
) -> Result<&'s [u8], DecodeError> {
    let huffman = src.first().is_some_and(|&b| b & 0x80 != 0);
    let len = integer::decode(src, 7)?;
    // Checked against the block before anything is read or allocated.
    let (data, rest) = usize::try_from(len)
        .ok()
        .and_then(|len| src.split_at_checked(len))
        .ok_or(DecodeError::Truncated)?;
    *src = rest;
    if huffman {
        scratch.clear();
        huffman::decode(data, scratch)?;
        Ok(scratch)
    } else {
        Ok(data)
    }
}
