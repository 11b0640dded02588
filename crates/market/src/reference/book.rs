//! Reference clearing and matching.
