//! Reference settlement.
