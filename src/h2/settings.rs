//! The peer's SETTINGS (RFC 9113 §6.5): their defaults, their validation,
//! and what a change means for the rest of the connection.
//!
//! | RFC 9113 | here |
//! |---|---|
//! | §6.5.1 format | [`SettingsParams`] (in `frame`) |
//! | §6.5.2 defined settings, initial values, legal ranges | [`Settings`], [`Settings::apply`] |
//! | §6.5.3 values processed in order | [`Settings::apply`] |
//! | §6.9.2 INITIAL_WINDOW_SIZE changes | [`Changes::initial_window`] |
//!
//! nethttp is a client: every SETTINGS frame applied here is a server's.

use super::frame::{ErrorCode, FrameError, SettingsParams};

/// SETTINGS_HEADER_TABLE_SIZE (§6.5.2).
pub(crate) const HEADER_TABLE_SIZE: u16 = 0x1;
/// SETTINGS_ENABLE_PUSH (§6.5.2).
pub(crate) const ENABLE_PUSH: u16 = 0x2;
/// SETTINGS_MAX_CONCURRENT_STREAMS (§6.5.2).
pub(crate) const MAX_CONCURRENT_STREAMS: u16 = 0x3;
/// SETTINGS_INITIAL_WINDOW_SIZE (§6.5.2).
pub(crate) const INITIAL_WINDOW_SIZE: u16 = 0x4;
/// SETTINGS_MAX_FRAME_SIZE (§6.5.2).
pub(crate) const MAX_FRAME_SIZE: u16 = 0x5;
/// SETTINGS_MAX_HEADER_LIST_SIZE (§6.5.2).
pub(crate) const MAX_HEADER_LIST_SIZE: u16 = 0x6;

/// The peer's settings as they stand. [`Default`] is the initial values of
/// §6.5.2, in force until the peer's first SETTINGS frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Settings {
    /// The most the HPACK encoder's dynamic table may hold (4096).
    pub(crate) header_table_size: u32,
    /// Whether the peer accepts PUSH_PROMISE (true). Meaningless for a
    /// server's settings, and a server may only ever set it to 0.
    pub(crate) enable_push: bool,
    /// How many streams we may open at once; `None` is unlimited.
    pub(crate) max_concurrent_streams: Option<u32>,
    /// Every new stream's send window (65,535).
    pub(crate) initial_window_size: u32,
    /// The largest frame payload the peer accepts (16,384).
    pub(crate) max_frame_size: u32,
    /// Advisory limit on the request header section; `None` is unlimited.
    pub(crate) max_header_list_size: Option<u32>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            header_table_size: 4_096,
            enable_push: true,
            max_concurrent_streams: None,
            initial_window_size: 65_535,
            max_frame_size: 16_384,
            max_header_list_size: None,
        }
    }
}

/// What one SETTINGS frame changed that the connection must act on. Read
/// the new values from [`Settings`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Changes {
    /// The INITIAL_WINDOW_SIZE before the frame, when the frame changed it:
    /// every open stream's send window moves by the difference (§6.9.2),
    /// `window.adjust(old, settings.initial_window_size)`.
    pub(crate) initial_window: Option<u32>,
    /// The smallest HEADER_TABLE_SIZE the frame carried, when it carried
    /// one: the HPACK encoder must bring its dynamic table to at most this
    /// (RFC 7541 §4.2: signal the smallest size since the last block), and
    /// may then use up to `settings.header_table_size`.
    pub(crate) header_table_min: Option<u32>,
    /// MAX_CONCURRENT_STREAMS changed: waiting requests may fit now.
    pub(crate) max_concurrent_streams: bool,
    /// MAX_FRAME_SIZE changed: DATA and field blocks may be cut differently.
    pub(crate) max_frame_size: bool,
}

/// The largest INITIAL_WINDOW_SIZE: 2^31-1 (§6.5.2).
const MAX_INITIAL_WINDOW: u32 = (1 << 31) - 1;

/// The legal MAX_FRAME_SIZE values (§6.5.2).
const FRAME_SIZES: std::ops::RangeInclusive<u32> = 16_384..=16_777_215;

impl Settings {
    /// Applies one SETTINGS frame's params in order (§6.5.3), validating
    /// each (§6.5.2); unknown identifiers are ignored. On an error nothing
    /// is applied (the connection ends anyway).
    ///
    /// - ENABLE_PUSH other than 0 or 1: PROTOCOL_ERROR; and 1 as well, since
    ///   the peer is a server ("A client MUST treat receipt of a SETTINGS
    ///   frame with SETTINGS_ENABLE_PUSH set to 1 as a connection error of
    ///   type PROTOCOL_ERROR").
    /// - INITIAL_WINDOW_SIZE above 2^31-1: FLOW_CONTROL_ERROR.
    /// - MAX_FRAME_SIZE outside 2^14..=2^24-1: PROTOCOL_ERROR.
    ///
    /// A window pushed past 2^31-1 by a new INITIAL_WINDOW_SIZE is the
    /// caller's to find, with `Window::adjust` (§6.9.2).
    pub(crate) fn apply(&mut self, params: SettingsParams<'_>) -> Result<Changes, FrameError> {
        use ErrorCode as E;
        let mut next = *self;
        let mut header_table_min: Option<u32> = None;
        for (id, value) in params.iter() {
            match id {
                HEADER_TABLE_SIZE => {
                    next.header_table_size = value;
                    header_table_min = Some(header_table_min.map_or(value, |m| m.min(value)));
                }
                ENABLE_PUSH => {
                    next.enable_push = match value {
                        0 => false,
                        // §6.5.2: a client MUST treat 1 as a connection error.
                        1 => {
                            return Err(FrameError::Connection(
                                E::PROTOCOL_ERROR,
                                "server sent SETTINGS_ENABLE_PUSH 1",
                            ));
                        }
                        // §6.5.2: any value other than 0 or 1.
                        _ => {
                            return Err(FrameError::Connection(
                                E::PROTOCOL_ERROR,
                                "SETTINGS_ENABLE_PUSH other than 0 or 1",
                            ));
                        }
                    }
                }
                MAX_CONCURRENT_STREAMS => next.max_concurrent_streams = Some(value),
                INITIAL_WINDOW_SIZE => {
                    // §6.5.2: above 2^31-1 is a FLOW_CONTROL_ERROR.
                    if value > MAX_INITIAL_WINDOW {
                        return Err(FrameError::Connection(
                            E::FLOW_CONTROL_ERROR,
                            "SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1",
                        ));
                    }
                    next.initial_window_size = value;
                }
                MAX_FRAME_SIZE => {
                    // §6.5.2: outside 2^14..=2^24-1 is a PROTOCOL_ERROR.
                    if !FRAME_SIZES.contains(&value) {
                        return Err(FrameError::Connection(
                            E::PROTOCOL_ERROR,
                            "SETTINGS_MAX_FRAME_SIZE out of range",
                        ));
                    }
                    next.max_frame_size = value;
                }
                MAX_HEADER_LIST_SIZE => next.max_header_list_size = Some(value),
                // §6.5.2: unknown or unsupported identifiers MUST be ignored.
                _ => {}
            }
        }
        let changes = Changes {
            initial_window: (next.initial_window_size != self.initial_window_size)
                .then_some(self.initial_window_size),
            header_table_min,
            max_concurrent_streams: next.max_concurrent_streams != self.max_concurrent_streams,
            max_frame_size: next.max_frame_size != self.max_frame_size,
        };
        *self = next;
        Ok(changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The params of a SETTINGS payload written from pairs.
    fn payload(pairs: &[(u16, u32)]) -> Vec<u8> {
        pairs
            .iter()
            .flat_map(|&(id, v)| id.to_be_bytes().into_iter().chain(v.to_be_bytes()))
            .collect()
    }

    fn apply(s: &mut Settings, pairs: &[(u16, u32)]) -> Result<Changes, FrameError> {
        s.apply(SettingsParams::new(&payload(pairs)))
    }

    #[test]
    fn defaults_are_the_initial_values() {
        let s = Settings::default();
        assert_eq!(s.header_table_size, 4096);
        assert!(s.enable_push);
        assert_eq!(s.max_concurrent_streams, None);
        assert_eq!(s.initial_window_size, 65_535);
        assert_eq!(s.max_frame_size, 16_384);
        assert_eq!(s.max_header_list_size, None);
    }

    #[test]
    fn every_setting_applies() {
        let mut s = Settings::default();
        let changes = apply(
            &mut s,
            &[
                (HEADER_TABLE_SIZE, 0),
                (ENABLE_PUSH, 0),
                (MAX_CONCURRENT_STREAMS, 100),
                (INITIAL_WINDOW_SIZE, 1 << 20),
                (MAX_FRAME_SIZE, 1 << 20),
                (MAX_HEADER_LIST_SIZE, 8192),
            ],
        )
        .unwrap();
        let want = Settings {
            header_table_size: 0,
            enable_push: false,
            max_concurrent_streams: Some(100),
            initial_window_size: 1 << 20,
            max_frame_size: 1 << 20,
            max_header_list_size: Some(8192),
        };
        assert_eq!(s, want);
        assert_eq!(
            changes,
            Changes {
                initial_window: Some(65_535),
                header_table_min: Some(0),
                max_concurrent_streams: true,
                max_frame_size: true,
            }
        );
        // The same again changes nothing, but a table size is still reported.
        let again = apply(
            &mut s,
            &[(INITIAL_WINDOW_SIZE, 1 << 20), (HEADER_TABLE_SIZE, 0)],
        );
        assert_eq!(
            again,
            Ok(Changes {
                header_table_min: Some(0),
                ..Changes::default()
            })
        );
        assert_eq!(s, want);
    }

    #[rustfmt::skip]
    const INVALID: &[((u16, u32), ErrorCode)] = &[
        ((ENABLE_PUSH, 1), ErrorCode::PROTOCOL_ERROR),
        ((ENABLE_PUSH, 2), ErrorCode::PROTOCOL_ERROR),
        ((ENABLE_PUSH, u32::MAX), ErrorCode::PROTOCOL_ERROR),
        ((INITIAL_WINDOW_SIZE, 0x8000_0000), ErrorCode::FLOW_CONTROL_ERROR),
        ((INITIAL_WINDOW_SIZE, u32::MAX), ErrorCode::FLOW_CONTROL_ERROR),
        ((MAX_FRAME_SIZE, 0), ErrorCode::PROTOCOL_ERROR),
        ((MAX_FRAME_SIZE, 16_383), ErrorCode::PROTOCOL_ERROR),
        ((MAX_FRAME_SIZE, 16_777_216), ErrorCode::PROTOCOL_ERROR),
        ((MAX_FRAME_SIZE, u32::MAX), ErrorCode::PROTOCOL_ERROR),
    ];

    #[test]
    fn invalid_values_are_connection_errors_and_change_nothing() {
        for &(param, code) in INVALID {
            let mut s = Settings::default();
            // A valid change before the bad one is not applied either.
            let got = apply(&mut s, &[(INITIAL_WINDOW_SIZE, 1), param]);
            match got {
                Err(FrameError::Connection(c, _)) => assert_eq!(c, code, "{param:?}"),
                other => panic!("{param:?}: {other:?}"),
            }
            assert_eq!(s, Settings::default(), "{param:?}");
        }
    }

    #[rustfmt::skip]
    const VALID_EDGES: &[(u16, u32)] = &[
        (ENABLE_PUSH, 0),
        (INITIAL_WINDOW_SIZE, 0),
        (INITIAL_WINDOW_SIZE, 0x7fff_ffff),
        (MAX_FRAME_SIZE, 16_384),
        (MAX_FRAME_SIZE, 16_777_215),
        (MAX_CONCURRENT_STREAMS, 0),
        (MAX_CONCURRENT_STREAMS, u32::MAX),
        (HEADER_TABLE_SIZE, u32::MAX),
        (MAX_HEADER_LIST_SIZE, 0),
        // Unknown identifiers, whatever their value, are ignored (§6.5.2).
        (0, u32::MAX),
        (0x7, 5),
        (0x8, 1), // SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441)
        (0xffff, 0),
    ];

    #[test]
    fn valid_edges_are_accepted() {
        for &param in VALID_EDGES {
            let mut s = Settings::default();
            assert!(apply(&mut s, &[param]).is_ok(), "{param:?}");
        }
        let mut s = Settings::default();
        assert_eq!(
            apply(&mut s, &[(0x7, 5), (0xffff, 0)]),
            Ok(Changes::default())
        );
        assert_eq!(s, Settings::default());
    }

    #[test]
    fn values_apply_in_order() {
        let mut s = Settings::default();
        let changes = apply(
            &mut s,
            &[
                (HEADER_TABLE_SIZE, 100),
                (INITIAL_WINDOW_SIZE, 10),
                (HEADER_TABLE_SIZE, 0),
                (INITIAL_WINDOW_SIZE, 20),
                (HEADER_TABLE_SIZE, 8192),
            ],
        )
        .unwrap();
        assert_eq!(s.initial_window_size, 20);
        assert_eq!(s.header_table_size, 8192);
        assert_eq!(changes.initial_window, Some(65_535));
        assert_eq!(changes.header_table_min, Some(0));

        // Changed and changed back within one frame: nothing to adjust.
        let changes = apply(
            &mut s,
            &[(INITIAL_WINDOW_SIZE, 7), (INITIAL_WINDOW_SIZE, 20)],
        );
        assert_eq!(changes, Ok(Changes::default()));
    }

    #[test]
    fn empty_frame_changes_nothing() {
        let mut s = Settings::default();
        assert_eq!(s.apply(SettingsParams::empty()), Ok(Changes::default()));
        assert_eq!(s, Settings::default());
    }
}
