//! Prefixed integers (RFC 7541 §5.1): the value in the low `prefix` bits of
//! the first octet if it fits below the all-ones pattern, else that pattern
//! followed by the rest, 7 bits per octet, least significant group first,
//! the high bit marking "more follows".
//!
//! The format has no upper bound; ours is `u32::MAX`, far above anything a
//! table index, a table size or a string length in one header block needs,
//! and it is reached within [`MAX_CONTINUATION`] octets, so a peer cannot
//! make us read an integer forever or overflow the arithmetic.

use super::DecodeError;

/// Most continuation octets we read: 5 × 7 bits on top of an 8-bit prefix
/// covers every value up to `u32::MAX` (with room for redundant zero
/// groups); a sixth is [`DecodeError::IntegerOverflow`].
pub(super) const MAX_CONTINUATION: u32 = 5;

/// The largest value we accept.
const MAX_VALUE: u64 = u32::MAX as u64;

/// The all-ones mask of a `prefix`-bit prefix; callers pass constants in
/// 1..=8.
const fn mask(prefix: u32) -> u8 {
    u8::MAX >> (8 - prefix)
}

/// Reads one integer with a `prefix`-bit prefix from the front of `src`
/// (the bits above the prefix in the first octet are the caller's), and
/// advances `src` past it. On error `src` is left as it was.
pub(super) fn decode(src: &mut &[u8], prefix: u32) -> Result<u64, DecodeError> {
    let mask = mask(prefix);
    let (&first, mut rest) = src.split_first().ok_or(DecodeError::Truncated)?;
    let mut value = u64::from(first & mask);
    if value == u64::from(mask) {
        let mut shift = 0;
        loop {
            if shift == 7 * MAX_CONTINUATION {
                return Err(DecodeError::IntegerOverflow);
            }
            let (&byte, tail) = rest.split_first().ok_or(DecodeError::Truncated)?;
            rest = tail;
            // At most 255 + 127 × (1 + 2^7 + ... + 2^28) < 2^36: no u64
            // overflow before the bound check below.
            value += u64::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                break;
            }
        }
        if value > MAX_VALUE {
            return Err(DecodeError::IntegerOverflow);
        }
    }
    *src = rest;
    Ok(value)
}

/// Appends `value` with a `prefix`-bit prefix; `flags` are the first
/// octet's bits above the prefix (the representation's pattern).
pub(super) fn encode(dst: &mut Vec<u8>, flags: u8, prefix: u32, value: usize) {
    let mask = mask(prefix);
    let max = usize::from(mask);
    if value < max {
        // Fits in the prefix: value < mask <= 255.
        dst.push(flags | value as u8);
        return;
    }
    dst.push(flags | mask);
    let mut rest = value - max;
    while rest >= 0x80 {
        dst.push(0x80 | (rest & 0x7f) as u8);
        rest >>= 7;
    }
    dst.push(rest as u8);
}
