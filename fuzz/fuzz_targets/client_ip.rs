//! `--trusted-proxies` parsing and the X-Forwarded-For walk over arbitrary headers.
#![no_main]

use hookwire::pipeline::client_ip::TrustedProxies;
use hookwire_fuzz::FuzzRequest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (String, FuzzRequest)| {
    let (flag, request) = input;
    let trusted = TrustedProxies::parse(&flag)
        .unwrap_or_else(|_| TrustedProxies::parse("0.0.0.0/0,::/0").unwrap_or_default());
    let received = request.received();
    let client = trusted.client_addr(received.remote_addr, &received.headers);
    // An untrusted peer is always its own client.
    assert!(trusted.contains(received.remote_addr.ip()) || client == received.remote_addr);
});
