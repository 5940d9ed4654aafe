//! Flow-control arithmetic (RFC 9113 §5.2, §6.9), no I/O.
//!
//! | RFC 9113 | here |
//! |---|---|
//! | §6.9.1 the window, its 2^31-1 ceiling | [`Window`], [`MAX_WINDOW`] |
//! | §6.9.2 SETTINGS_INITIAL_WINDOW_SIZE changes, negative windows | [`Window::adjust`] |
//! | §6.9 a receiver's WINDOW_UPDATEs, §5.2.2 not too small ones | [`Credit`] |
//!
//! A connection keeps a [`Window`] per direction for itself and for each
//! stream: the send side spends what the peer's WINDOW_UPDATEs give; the
//! receive side spends what the peer's DATA takes (`flow_len`, padding
//! included) and a [`Credit`] decides when to give it back.

use std::fmt;

use super::frame::ErrorCode;

/// The largest legal window: 2^31-1 (§6.9.1).
pub(crate) const MAX_WINDOW: i64 = (1 << 31) - 1;

/// Why a window operation failed; either way a FLOW_CONTROL_ERROR (§6.9),
/// on the stream or the connection whose window it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlowError {
    /// More was spent than the window holds: on the receive side, a peer
    /// sending beyond the window we gave it (§6.9.1).
    Exceeded,
    /// The window would grow past 2^31-1 (§6.9.1, §6.9.2).
    Overflow,
}

impl FlowError {
    /// The code to send in the RST_STREAM or GOAWAY.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn code(self) -> ErrorCode {
        ErrorCode::FLOW_CONTROL_ERROR
    }
}

impl fmt::Display for FlowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FlowError::Exceeded => "flow-control window exceeded",
            FlowError::Overflow => "flow-control window above 2^31-1",
        })
    }
}

/// A flow-control window. `i64` inside: legal values are at most 2^31-1 and
/// may go negative after a SETTINGS_INITIAL_WINDOW_SIZE decrease (§6.9.2),
/// down to -(2^31-1); every sum of two such values and a `u32` fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window(i64);

impl Window {
    /// A window of `initial` bytes; above 2^31-1 is clamped (a validated
    /// SETTINGS_INITIAL_WINDOW_SIZE never is).
    pub(crate) fn new(initial: u32) -> Window {
        Window(i64::from(initial).min(MAX_WINDOW))
    }

    /// What may be spent now: 0 when the window is negative.
    pub(crate) fn available(&self) -> u32 {
        u32::try_from(self.0.max(0)).unwrap_or(u32::MAX)
    }

    /// The window's value, negative after an INITIAL_WINDOW_SIZE decrease.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn get(&self) -> i64 {
        self.0
    }

    /// Spends `n` bytes; more than [`available`](Self::available) is
    /// [`FlowError::Exceeded`] and leaves the window as it was. Spending 0
    /// always works (§6.9.1: an empty DATA frame with END_STREAM may be
    /// sent with no window).
    pub(crate) fn consume(&mut self, n: u32) -> Result<(), FlowError> {
        if n > self.available() {
            return Err(FlowError::Exceeded);
        }
        self.0 -= i64::from(n);
        Ok(())
    }

    /// A WINDOW_UPDATE of `n`: above 2^31-1 is [`FlowError::Overflow`]
    /// (§6.9.1) and leaves the window as it was.
    pub(crate) fn increase(&mut self, n: u32) -> Result<(), FlowError> {
        self.set(self.0 + i64::from(n))
    }

    /// SETTINGS_INITIAL_WINDOW_SIZE went from `old` to `new`: the window
    /// moves by the difference, maybe below zero (§6.9.2); above 2^31-1 is
    /// [`FlowError::Overflow`] (a connection error, §6.9.2) and leaves the
    /// window as it was.
    pub(crate) fn adjust(&mut self, old: u32, new: u32) -> Result<(), FlowError> {
        self.set(self.0 + i64::from(new) - i64::from(old))
    }

    fn set(&mut self, value: i64) -> Result<(), FlowError> {
        if value > MAX_WINDOW {
            return Err(FlowError::Overflow);
        }
        self.0 = value;
        Ok(())
    }
}

/// The receive side's bookkeeping for WINDOW_UPDATEs: bytes the application
/// consumed are given back to the peer in batches, not one update per read
/// (§5.2.2: avoid WINDOW_UPDATEs with very small increments).
///
/// The rule: credit accumulates until it reaches half the `target` window
/// (at least 1 byte), then all of it is returned at once. So the peer never
/// sees its window below half the target for long when the reader keeps
/// up, and we send one 13-byte frame per target/2 bytes. (Go's `inflow`
/// instead returns credit once it reaches 4 KiB or the peer's remaining
/// window, whichever is less: more updates on fast streams with large
/// windows; ours needs no view of the peer's window, as the receiving
/// [`Window`] holds it.)
///
/// Bytes received and then dropped (a reset stream's DATA, a body nobody
/// reads) must be reported too, at least to the connection's `Credit`,
/// or the connection window shrinks for good.
#[derive(Debug, Clone)]
pub(crate) struct Credit {
    /// Credit is returned once it reaches this.
    threshold: u32,
    /// Consumed and not yet returned.
    unreturned: u32,
}

impl Credit {
    /// Batching for a window we keep at `target` bytes.
    pub(crate) fn new(target: u32) -> Self {
        Credit {
            threshold: (target / 2).max(1),
            unreturned: 0,
        }
    }

    /// `n` more bytes were consumed: `Some(increment)` when a WINDOW_UPDATE
    /// is due (never 0, never above 2^31-1; any excess stays for the next
    /// one), `None` while the credit is still below the threshold.
    pub(crate) fn consumed(&mut self, n: u32) -> Option<u32> {
        self.unreturned = self.unreturned.saturating_add(n);
        if self.unreturned < self.threshold {
            return None;
        }
        let increment = self.unreturned.min(MAX_WINDOW as u32);
        self.unreturned -= increment;
        Some(increment)
    }

    /// Consumed bytes not yet returned.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn pending(&self) -> u32 {
        self.unreturned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_and_available() {
        assert_eq!(Window::new(65_535).available(), 65_535);
        assert_eq!(Window::new(0).available(), 0);
        assert_eq!(Window::new(u32::MAX).get(), MAX_WINDOW);
        assert_eq!(Window::new(u32::MAX).available(), 0x7fff_ffff);
    }

    /// `(initial, spends, result of each, final value)`.
    type ConsumeCase = (u32, &'static [u32], &'static [Result<(), FlowError>], i64);

    #[test]
    fn consume_table() {
        #[rustfmt::skip]
        let cases: &[ConsumeCase] = &[
            (10, &[4, 6], &[Ok(()), Ok(())], 0),
            (10, &[11], &[Err(FlowError::Exceeded)], 10),
            (10, &[4, 7, 6], &[Ok(()), Err(FlowError::Exceeded), Ok(())], 0),
            (0, &[0, 0], &[Ok(()), Ok(())], 0),
            (0, &[1], &[Err(FlowError::Exceeded)], 0),
            (65_535, &[u32::MAX], &[Err(FlowError::Exceeded)], 65_535),
        ];
        for &(initial, spends, want, end) in cases {
            let mut w = Window::new(initial);
            let got: Vec<_> = spends.iter().map(|&n| w.consume(n)).collect();
            assert_eq!(got, want, "{initial} {spends:?}");
            assert_eq!(w.get(), end, "{initial} {spends:?}");
        }
    }

    #[test]
    fn increase_up_to_the_maximum() {
        let mut w = Window::new(65_535);
        assert_eq!(w.increase(0x7fff_ffff - 65_535), Ok(()));
        assert_eq!(w.get(), MAX_WINDOW);
        assert_eq!(w.increase(1), Err(FlowError::Overflow));
        assert_eq!(w.get(), MAX_WINDOW, "unchanged by the failure");
        assert_eq!(w.increase(u32::MAX), Err(FlowError::Overflow));
        assert_eq!(w.consume(0x7fff_ffff), Ok(()));
        assert_eq!(w.increase(u32::MAX), Err(FlowError::Overflow));
        assert_eq!(w.increase(0x7fff_ffff), Ok(()));
    }

    #[test]
    fn adjust_to_negative_and_back() {
        // §6.9.2's example: 60 KB sent, then the initial window drops to 16 KB.
        let mut w = Window::new(65_535);
        w.consume(60_000).unwrap();
        assert_eq!(w.adjust(65_535, 16_384), Ok(()));
        assert_eq!(w.get(), 16_384 - 60_000);
        assert_eq!(w.available(), 0);
        // Nothing may be spent but an empty frame.
        assert_eq!(w.consume(1), Err(FlowError::Exceeded));
        assert_eq!(w.consume(0), Ok(()));
        // A WINDOW_UPDATE that leaves it negative still leaves nothing.
        w.increase(40_000).unwrap();
        assert_eq!(w.get(), -3_616);
        assert_eq!(w.available(), 0);
        // The setting going back up restores the lot.
        w.adjust(16_384, 65_535).unwrap();
        assert_eq!(w.get(), 65_535 - 60_000 + 40_000);
        assert_eq!(w.available(), 45_535);
    }

    #[test]
    fn adjust_limits() {
        let mut w = Window::new(0);
        assert_eq!(w.adjust(0, 0x7fff_ffff), Ok(()));
        assert_eq!(w.adjust(0, 1), Err(FlowError::Overflow));
        assert_eq!(w.get(), MAX_WINDOW);
        // The most negative a window gets: a full one spent, then the
        // setting drops from 2^31-1 to 0.
        let mut w = Window::new(0x7fff_ffff);
        w.consume(0x7fff_ffff).unwrap();
        w.adjust(0x7fff_ffff, 0).unwrap();
        assert_eq!(w.get(), -MAX_WINDOW);
        assert_eq!(w.available(), 0);
        assert_eq!(w.increase(u32::MAX), Err(FlowError::Overflow));
        w.increase(0x7fff_ffff).unwrap();
        assert_eq!(w.get(), 0);
    }

    #[test]
    fn flow_error_is_flow_control_error() {
        assert_eq!(FlowError::Exceeded.code(), ErrorCode::FLOW_CONTROL_ERROR);
        assert_eq!(FlowError::Overflow.code(), ErrorCode::FLOW_CONTROL_ERROR);
        assert_eq!(
            FlowError::Overflow.to_string(),
            "flow-control window above 2^31-1"
        );
    }

    /// `(target, reads, what each read returns)`.
    type CreditCase = (u32, &'static [u32], &'static [Option<u32>]);

    #[test]
    fn credit_batches_at_half_the_target() {
        #[rustfmt::skip]
        let cases: &[CreditCase] = &[
            (100, &[10, 39, 1, 10], &[None, None, Some(50), None]),
            (100, &[49, 2], &[None, Some(51)]),
            (100, &[50, 50, 50], &[Some(50), Some(50), Some(50)]),
            (100, &[1000], &[Some(1000)]),
            (100, &[0, 0], &[None, None]),
            (65_535, &[16_384, 16_384, 1], &[None, Some(32_768), None]),
            (1, &[1, 1], &[Some(1), Some(1)]),
            (0, &[0, 1], &[None, Some(1)]),
        ];
        for &(target, reads, want) in cases {
            let mut c = Credit::new(target);
            let got: Vec<_> = reads.iter().map(|&n| c.consumed(n)).collect();
            assert_eq!(got, want, "target {target}, reads {reads:?}");
        }
    }

    #[test]
    fn credit_never_returns_more_than_a_window() {
        let mut c = Credit::new(u32::MAX);
        assert_eq!(c.consumed(u32::MAX), Some(0x7fff_ffff));
        assert_eq!(c.pending(), 0x8000_0000);
        assert_eq!(c.consumed(u32::MAX), Some(0x7fff_ffff));
        assert_eq!(c.pending(), 0x8000_0000);
    }

    #[test]
    fn credit_keeps_the_window_full() {
        // A receiver with a 64 KiB window: the peer sends as much as the
        // window allows, the application reads in 1000-byte pieces, and
        // every increment goes back into the window. The peer's window
        // never stalls for good and never exceeds the target.
        const TARGET: u32 = 65_536;
        let mut window = Window::new(TARGET);
        let mut credit = Credit::new(TARGET);
        let mut buffered = 0u32;
        let mut updates = 0;
        let mut total_read = 0u32;
        for _ in 0..10_000 {
            let sent = window.available().min(5_000);
            window.consume(sent).unwrap();
            buffered += sent;
            let read = buffered.min(1_000);
            buffered -= read;
            total_read += read;
            if let Some(inc) = credit.consumed(read) {
                window.increase(inc).unwrap();
                updates += 1;
            }
            assert!(
                window.get() + i64::from(buffered) + i64::from(credit.pending())
                    == i64::from(TARGET)
            );
        }
        assert!(window.available() > 0);
        // Nearly 10 MB read; an update every 33 reads, the first time the
        // credit reaches 32 KiB.
        assert!(total_read > 9_900_000, "{total_read}");
        assert_eq!(updates, total_read / 33_000);
    }
}
