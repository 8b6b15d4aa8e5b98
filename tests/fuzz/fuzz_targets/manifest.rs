//! `sprayvault::vault::manifest::Manifest::parse` on arbitrary bytes. It may
//! reject them, but what it accepts must be in canonical form: `to_text()`
//! gives back the very same bytes, and they parse to an equal manifest.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sprayvault::vault::manifest::Manifest;

fuzz_target!(|data: &[u8]| {
    let Ok(manifest) = Manifest::parse(data) else {
        return;
    };
    let text = manifest.to_text();
    let again = Manifest::parse(text.as_bytes())
        .unwrap_or_else(|e| panic!("to_text() output does not parse: {e}\n{text}"));
    assert_eq!(again, manifest, "manifest changed in a round trip");
    assert!(
        text.as_bytes() == data,
        "accepted manifest is not canonical:\n input: {:?}\noutput: {:?}",
        String::from_utf8_lossy(data),
        text
    );
});
