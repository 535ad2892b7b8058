//! The tensorc library facade.
