//! The JSON body parser, then payload lookups and parse-parameters-as-json on the result.
#![no_main]

use hookwire_fuzz::{BodyInput, parse_and_look_up};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: BodyInput| parse_and_look_up("application/json", &input));
