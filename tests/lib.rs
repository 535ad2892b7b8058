//! The integration-test package of tensorc. All tests live in the single test
//! target `integration` (so MLIR is linked into one binary only); this empty
//! library exists because a package needs a target of its own.
