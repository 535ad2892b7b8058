//! The reference interpreter: plain, obviously correct, the oracle for every test.
