//! Every stage before execution (signature preset, body parsing, parse-parameters-as-json,
//! trigger rules with a trace, delivery id, plan) over arbitrary requests, for hooks that use
//! every match type, source and combinator.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use hookwire::config::compile::compile_file;
use hookwire::config::{Hook, LoadOptions};
use hookwire::pipeline::prepare;
use hookwire_fuzz::FuzzRequest;
use libfuzzer_sys::fuzz_target;

const HOOKS: &str = r#"
- id: everything
  execute-command: /bin/true
  pass-arguments-to-command:
    - {source: payload, name: a.b.0.c}
    - {source: header, name: X-Event}
    - {source: query, name: q}
    - {source: request, name: remote-addr}
    - {source: request, name: method}
    - {source: entire-payload}
    - {source: entire-headers}
    - {source: entire-query}
    - {source: raw-request-body}
  pass-environment-to-command:
    - {source: payload, name: ref, envname: REF}
  pass-file-to-command:
    - {source: payload, name: file, envname: FILE, base64decode: true}
  parse-parameters-as-json:
    - {source: payload, name: nested}
    - {source: header, name: X-Json}
    - {source: query, name: json}
  trigger-rule:
    or:
      - and:
          - match: {type: value, value: refs/heads/main, parameter: {source: payload, name: ref}}
          - match: {type: regex, regex: "^v[0-9]+\\.", parameter: {source: query, name: tag}}
          - not: {match: {type: ip-whitelist, ip-range: "10.0.0.0/8 192.168.1.1 2001:db8::/32"}}
      - match: {type: payload-hmac-sha1, secret: s, parameter: {source: header, name: X-Hub-Signature}}
      - match: {type: payload-hmac-sha256, secret: s, parameter: {source: header, name: X-Hub-Signature-256}}
      - match: {type: payload-hmac-sha512, secret: s, parameter: {source: query, name: sig}}
      - match: {type: scalr-signature, secret: s}
      - match: {type: value, value: x, parameter: {source: nowhere, name: y}}
- id: soft
  execute-command: /bin/true
  trigger-signature-soft-failures: true
  incoming-payload-content-type: application/x-www-form-urlencoded
  trigger-rule:
    or:
      - match: {type: payload-hmac-sha256, secret: s, parameter: {source: header, name: X-Sig}}
      - match: {type: value, value: "1", parameter: {source: payload, name: a}}
- id: multipart
  execute-command: /bin/true
  incoming-payload-content-type: "multipart/form-data; boundary=XX"
  parse-parameters-as-json: [{source: payload, name: data}]
  pass-arguments-to-command: [{source: payload, name: data.x}]
- id: xml
  execute-command: /bin/true
  incoming-payload-content-type: application/xml
  pass-arguments-to-command: [{source: payload, name: root.-attr}, {source: payload, name: root.item.1.#text}]
- id: github
  execute-command: /bin/true
  signature: {provider: github, secret: s, allow-sha1: true}
  dedupe: 1h
- id: explicit-delivery
  execute-command: /bin/true
  dedupe: 1h
  delivery-id: {source: payload, name: id}
"#;

fn hooks() -> &'static [Hook] {
    static HOOK_LIST: OnceLock<Vec<Hook>> = OnceLock::new();
    HOOK_LIST.get_or_init(|| {
        compile_file(
            Path::new("rules.yaml"),
            HOOKS.as_bytes(),
            &LoadOptions::default(),
        )
        .map(|file| file.hooks)
        .unwrap_or_default()
    })
}

fuzz_target!(|request: FuzzRequest| {
    assert!(!hooks().is_empty(), "the fixture hooks load");
    let received = request.received();
    for hook in hooks() {
        let prepared = futures_executor::block_on(prepare(hook, &received, true));
        // The trace renders for `hookwire explain`.
        let _ = format!("{:?}", prepared.trace);
    }
});
