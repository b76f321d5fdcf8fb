//! fulfillment (placeholder).
