//! The multipart body parser (any boundary), then payload lookups on the result.
#![no_main]

use hookwire_fuzz::{BodyInput, parse_and_look_up};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (String, BodyInput)| {
    let (boundary, input) = input;
    parse_and_look_up(&format!("multipart/form-data; boundary={boundary}"), &input);
});
