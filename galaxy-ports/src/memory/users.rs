//! (being written)

/// Placeholder until written.
#[derive(Debug, Default)]
pub struct MemoryUserStore;
