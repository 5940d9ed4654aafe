//! SOCKS handshakes (placeholder; being written).
