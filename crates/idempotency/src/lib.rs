//! idempotency (placeholder).
