//! tensorc passes.
