//! The config loader on arbitrary YAML: errors are fine, panics and hangs are not.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(src) = std::str::from_utf8(data) {
        // Every `os.environ/X` resolves, so substitution paths run too.
        let _ = gatehouse_config::load_str(src, "fuzz.yaml", &|name| Some(format!("v-{name}")));
    }
});
