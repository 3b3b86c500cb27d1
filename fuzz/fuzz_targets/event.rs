#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| leadscore_fuzz_targets::event(data));
