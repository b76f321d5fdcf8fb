//! support (placeholder).
