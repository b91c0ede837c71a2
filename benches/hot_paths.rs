//! Micro-benchmarks of the per-request pure functions: body parsing, parameter lookup, rule
//! evaluation and signature verification, on the payloads `bench/run` sends.
//!
//! Run with `cargo bench --bench hot_paths`. These time functions alone; `bench/run` compares
//! whole servers.

use std::hint::black_box;
use std::path::Path;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hookwire::config::{LoadOptions, compile::compile_file};
use hookwire::pipeline::request::json::{self, Selection};
use hookwire::pipeline::request::{Map, Request, Value, form, value, xml};
use hookwire::pipeline::rules;
use hookwire::pipeline::signature::preset::{self, PresetConfig, Provider};
use hookwire::pipeline::signature::{self, HmacAlgorithm};
use hookwire::secret::Secret;

const SECRET: &str = "bench-secret-7f3a";

/// The GitHub push fixture of `bench/`, and the same push grown past 1 MiB with more commits.
fn payloads() -> (Vec<u8>, Vec<u8>) {
    let push = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/github-push.json"))
        .expect("bench/github-push.json");
    let mut large: serde_json::Value = serde_json::from_slice(&push).expect("valid fixture");
    let commit = large["commits"][0].clone();
    let commits = large["commits"].as_array_mut().expect("commits");
    while commits.len() < 1200 {
        commits.push(commit.clone());
    }
    (push, serde_json::to_vec(&large).expect("serialisable"))
}

fn request(body: &[u8], payload: Option<Map>) -> Request {
    let signature = format!(
        "sha256={}",
        signature::hmac_hex(HmacAlgorithm::Sha256, SECRET.as_bytes(), &[body])
    );
    let mut headers = Map::new();
    headers.insert("X-Hub-Signature-256".into(), Value::String(signature));
    headers.insert(
        "Content-Type".into(),
        Value::String("application/json".into()),
    );
    Request {
        id: "bench".into(),
        method: "POST".into(),
        remote_addr: "127.0.0.1:40000".parse().expect("address"),
        headers,
        query: Map::new(),
        content_type: "application/json".into(),
        body: Bytes::copy_from_slice(body),
        payload,
    }
}

fn body_parsing(c: &mut Criterion) {
    let (push, large) = payloads();
    let hook_keys = Selection::for_names([
        "ref",
        "head_commit.id",
        "pusher.name",
        "repository.full_name",
    ]);
    let mut group = c.benchmark_group("json");
    for (name, body) in [("push", &push), ("large", &large)] {
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(BenchmarkId::new("full", name), body, |b, body| {
            b.iter(|| json::parse(black_box(body)))
        });
        group.bench_with_input(BenchmarkId::new("selected", name), body, |b, body| {
            b.iter(|| json::parse_selected(black_box(body), &hook_keys))
        });
    }
    group.finish();

    let form_body = b"token=abc&name=Ada+Lovelace&email=ada%40example.com&message=hello%20world";
    c.bench_function("form", |b| b.iter(|| form::parse(black_box(form_body))));
    let xml_body =
        br#"<app id="1"><users><user name="a"/><user name="b"/></users><note>hi</note></app>"#;
    c.bench_function("xml", |b| b.iter(|| xml::parse(black_box(xml_body))));
}

fn lookup(c: &mut Criterion) {
    let (push, _) = payloads();
    let payload = json::parse(&push).expect("valid").expect("object");
    c.bench_function("lookup/head_commit.author.email", |b| {
        b.iter(|| value::lookup_in_map(black_box(&payload), "head_commit.author.email"))
    });
    c.bench_function("lookup/commits.0.id", |b| {
        b.iter(|| value::lookup_in_map(black_box(&payload), "commits.0.id"))
    });
}

fn rule_evaluation(c: &mut Criterion) {
    let (push, _) = payloads();
    let hooks_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/hooks.yaml");
    let file = compile_file(
        &hooks_path,
        &std::fs::read(&hooks_path).expect("bench/hooks.yaml"),
        &LoadOptions::default(),
    )
    .expect("bench hooks load");
    let hook = file
        .hooks
        .iter()
        .find(|h| h.id == "deploy")
        .expect("deploy hook");
    let rule = hook.trigger_rule.as_ref().expect("a rule");
    let request = request(&push, json::parse(&push).expect("valid"));
    c.bench_function("rules/hmac-and-value", |b| {
        b.iter(|| rules::evaluate(black_box(rule), &request, false))
    });
}

fn signatures(c: &mut Criterion) {
    let (push, large) = payloads();
    let secret = Secret::new(SECRET);
    let mut group = c.benchmark_group("signature");
    for (name, body) in [("push", &push), ("large", &large)] {
        let header = format!(
            "sha256={}",
            signature::hmac_hex(HmacAlgorithm::Sha256, SECRET.as_bytes(), &[body])
        );
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(
            BenchmarkId::new("payload-hmac-sha256", name),
            body,
            |b, body| {
                b.iter(|| {
                    signature::check_payload_signature(
                        HmacAlgorithm::Sha256,
                        &secret,
                        black_box(body),
                        &header,
                    )
                })
            },
        );
        let config = PresetConfig::new(Provider::Github, vec![secret.clone()]);
        let headers = [("X-Hub-Signature-256".to_string(), header.clone())];
        group.bench_with_input(BenchmarkId::new("preset-github", name), body, |b, body| {
            b.iter(|| {
                preset::verify(
                    &config,
                    &headers[..],
                    black_box(body),
                    std::time::SystemTime::now(),
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, body_parsing, lookup, rule_evaluation, signatures);
criterion_main!(benches);
