//! orders (placeholder).
