//! The configuration file, TOML to typed configuration: never a panic, only a config error
//! naming what is wrong.
#![no_main]

use assetgate::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let no_environment = |_: &str| None;
    let _ = Config::from_toml(text, &no_environment);
});
