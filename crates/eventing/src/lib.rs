//! eventing (placeholder).
