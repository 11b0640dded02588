//! Joule's peer-to-peer transport (being written).
