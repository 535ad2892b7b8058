//! Fuzz target `npy`: `read_npy` on arbitrary bytes (the `--input` files of
//! `tensorc run`).
//!
//! Properties: no panic and no allocation before the data is known to be
//! there (libFuzzer's RSS limit catches that); a file that reads writes back
//! to a file that reads to the same tensor, byte for byte.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tensorc_ir::npy::{read_npy, write_npy};

fuzz_target!(|data: &[u8]| {
    if let Ok(tensor) = read_npy(data) {
        let written = write_npy(&tensor);
        let again = read_npy(&written).expect("read_npy rejects what write_npy wrote");
        assert_eq!(write_npy(&again), written, "write → read → write changed the file");
    }
});
