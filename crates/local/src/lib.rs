//! local (placeholder).
