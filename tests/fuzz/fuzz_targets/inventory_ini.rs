//! `sprayvault::inventory::from_text` on arbitrary text read as an
//! INI inventory; then `to_json` and `select`. Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../common/inventory.rs"]
mod inventory;

fuzz_target!(|data: &[u8]| inventory::run("fuzz.ini", data));
