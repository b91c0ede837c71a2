//! XML bodies, mapped to the shape adnanh gets from `mxj.NewMapXmlReader` (mxj defaults, the
//! version vendored in webhook 2.8.0), every rule below measured on Debian's webhook 2.8.0:
//!
//! - the root element's local name is the single top-level key; only the first root is read,
//!   whatever follows it is ignored;
//! - attributes become `-name` keys; namespace prefixes are dropped from element and attribute
//!   names (`ns:b` → `b`, `xmlns:ns` → `-ns`, `xmlns` → `-xmlns`); a name with two colons is kept
//!   whole; a repeated attribute keeps its last value;
//! - each run of character data is trimmed of spaces, tabs and newlines; an empty run is
//!   dropped. A run seen while the element has no attribute or child yet becomes the element's
//!   plain string value, and then the element's later children are discarded (mxj's quirk:
//!   `<a>t1<b>x</b>t2</a>` is `{"a":"t1"}`); a run seen after an attribute or child is stored as
//!   `#text` (the last one wins). Comments and CDATA sections split runs;
//! - an element with neither text nor attributes nor children is `""`;
//! - a repeated child element becomes an array, in document order (`b` in
//!   `<a><b>1</b><c/><b>3</b></a>` is `["1","3"]`);
//! - every value is a string; comments, processing instructions and the doctype are skipped;
//!   only the five predefined entities and character references are known, anything else is an
//!   error (no DTD expansion, so entity bombs are inert); `\r\n` and `\r` become `\n`;
//! - a declared encoding other than UTF-8 is an error (Go has no charset reader there), so is
//!   invalid UTF-8, a malformed document and, here only, nesting deeper than [`MAX_DEPTH`].

use std::borrow::Cow;

use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;

use super::body::BodyError;
use super::value::{Map, Value};

/// Element nesting beyond this is refused. Go has no limit here (mxj recurses); we keep the
/// stack and the later JSON rendering bounded.
pub const MAX_DEPTH: usize = 128;

/// One open element: mxj's `n` (the plain text value) and `na` (attributes and children).
struct Frame {
    name: String,
    text: Option<String>,
    fields: Map,
}

/// Parses an XML body into the payload (see the module docs for the mapping).
pub fn parse(body: &[u8]) -> Result<Map, BodyError> {
    let body = body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body);
    let text = std::str::from_utf8(body).map_err(|e| xml_error(format!("invalid UTF-8: {e}")))?;
    let mut reader = Reader::from_str(text);
    reader.config_mut().expand_empty_elements = true;

    let mut stack: Vec<Frame> = Vec::new();
    // Character data is reported in pieces (text, then each entity reference); Go reports one
    // run, so pieces are collected here until any other event ends the run.
    let mut run = String::new();
    loop {
        let event = reader
            .read_event()
            .map_err(|e| xml_error(format!("{e} at byte {}", reader.error_position())))?;
        match event {
            Event::Text(t) => {
                check_chars(&t)?;
                run.push_str(&t);
                continue;
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) if is_xml_char(c) => Cow::Owned(c.to_string()),
                    Ok(None) => match predefined_entity(&r) {
                        Some(s) => Cow::Borrowed(s),
                        None => return Err(xml_error(format!("invalid entity &{};", &*r))),
                    },
                    _ => return Err(xml_error(format!("invalid character entity &{};", &*r))),
                };
                run.push_str(&resolved);
                continue;
            }
            _ => {}
        }
        end_run(&mut stack, &mut run);
        match event {
            Event::Start(start) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(xml_error(format!("nesting deeper than {MAX_DEPTH}")));
                }
                stack.push(open(&start)?);
            }
            Event::End(_) => {
                let Some(frame) = stack.pop() else {
                    return Err(xml_error("unexpected end element".to_owned()));
                };
                let value = match frame.text {
                    Some(text) => Value::String(text),
                    None if frame.fields.is_empty() => Value::String(String::new()),
                    None => Value::Object(frame.fields),
                };
                match stack.last_mut() {
                    Some(parent) => add_child(&mut parent.fields, frame.name, value),
                    None => {
                        let mut root = Map::new();
                        root.insert(frame.name, value);
                        return Ok(root);
                    }
                }
            }
            Event::CData(data) => {
                check_chars(&data)?;
                run.push_str(&data);
                end_run(&mut stack, &mut run);
            }
            Event::Decl(decl) => {
                if let Some(encoding) = decl.encoding() {
                    let encoding = encoding.map_err(|e| xml_error(e.to_string()))?;
                    if !encoding.eq_ignore_ascii_case("utf-8") {
                        return Err(xml_error(format!(
                            "encoding {encoding:?} declared but no charset reader"
                        )));
                    }
                }
            }
            Event::Eof => return Err(xml_error("unexpected end of document".to_owned())),
            // Comments, processing instructions and the doctype only end a text run.
            _ => {}
        }
    }
}

/// Ends a run of character data: mxj trims it and, if anything is left, stores it as the
/// element's plain value (nothing else seen yet) or as `#text`. Text outside the root is
/// dropped.
fn end_run(stack: &mut [Frame], run: &mut String) {
    if run.is_empty() {
        return;
    }
    if let Some(frame) = stack.last_mut() {
        // mxj trims "\t\r\b\n " (a backspace cannot occur: it is not an XML character).
        let trimmed = run.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'));
        if !trimmed.is_empty() {
            let text = normalize_newlines(trimmed);
            if frame.fields.is_empty() {
                frame.text = Some(text);
            } else {
                frame.fields.insert("#text".to_owned(), Value::String(text));
            }
        }
    }
    run.clear();
}

fn open(start: &BytesStart<'_>) -> Result<Frame, BodyError> {
    let name = element_name(start.name().as_ref())?;
    let mut fields = Map::new();
    // Go's decoder does not reject a repeated attribute; the last one wins in mxj's map.
    for attr in start.attributes().with_checks(false) {
        let attr = attr.map_err(|e| xml_error(e.to_string()))?;
        let key = element_name(attr.key.as_ref())?;
        let value = unescape(&attr.value)?;
        fields.insert(format!("-{key}"), Value::String(normalize_newlines(&value)));
    }
    Ok(Frame {
        name,
        text: None,
        fields,
    })
}

/// mxj's list rule: a second child of the same name turns the value into an array.
fn add_child(fields: &mut Map, name: String, value: Value) {
    match fields.get_mut(&name) {
        None => {
            fields.insert(name, value);
        }
        Some(Value::Array(items)) => items.push(value),
        Some(existing) => {
            let first = existing.take();
            *existing = Value::Array(vec![first, value]);
        }
    }
}

/// The local part of a name as Go's decoder splits it: at a single colon with both sides
/// non-empty; otherwise the whole name. Names are checked for Go's name characters, since
/// quick-xml is lenient there (`<-x>` and `< 2` are errors in Go).
fn element_name(name: &str) -> Result<String, BodyError> {
    let mut chars = name.chars();
    let valid_start = chars
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_' || c == ':');
    let valid_rest = chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | ':' | '.' | '-'));
    if !valid_start || !valid_rest {
        return Err(xml_error(format!("invalid name {name:?}")));
    }
    Ok(match name.split_once(':') {
        Some((space, local)) if !space.is_empty() && !local.is_empty() && !local.contains(':') => {
            local.to_owned()
        }
        _ => name.to_owned(),
    })
}

/// Attribute values: the predefined entities and character references, nothing else.
fn unescape(raw: &str) -> Result<String, BodyError> {
    check_chars(raw)?;
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let Some(semi) = after.find(';') else {
            return Err(xml_error("unterminated entity reference".to_owned()));
        };
        let entity = &after[..semi];
        if let Some(s) = predefined_entity(entity) {
            out.push_str(s);
        } else {
            let c = entity
                .strip_prefix("#x")
                .map(|hex| u32::from_str_radix(hex, 16))
                .or_else(|| entity.strip_prefix('#').map(str::parse::<u32>))
                .and_then(Result::ok)
                .and_then(char::from_u32)
                .filter(|&c| is_xml_char(c))
                .ok_or_else(|| xml_error(format!("invalid entity &{entity};")))?;
            out.push(c);
        }
        rest = &after[semi + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn predefined_entity(name: &str) -> Option<&'static str> {
    match name {
        "lt" => Some("<"),
        "gt" => Some(">"),
        "amp" => Some("&"),
        "apos" => Some("'"),
        "quot" => Some("\""),
        _ => None,
    }
}

/// Go's decoder refuses characters outside the XML `Char` production (control characters).
fn check_chars(s: &str) -> Result<(), BodyError> {
    match s.chars().find(|&c| !is_xml_char(c)) {
        Some(c) => Err(xml_error(format!("illegal character code {:?}", c))),
        None => Ok(()),
    }
}

fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | ' '..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
}

/// Go's decoder turns `\r\n` and a lone `\r` into `\n` in text and attribute values.
fn normalize_newlines(s: &str) -> String {
    if s.contains('\r') {
        s.replace("\r\n", "\n").replace('\r', "\n")
    } else {
        s.to_owned()
    }
}

fn xml_error(message: String) -> BodyError {
    BodyError::Xml(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::request::value::map_to_go_json;

    fn shape(xml: &str) -> Option<String> {
        parse(xml.as_bytes()).ok().map(|m| map_to_go_json(&m))
    }

    /// Every row was sent to Debian's webhook 2.8.0 with `entire-payload`; `None` is where it
    /// logged a parse error and passed `null`.
    #[test]
    fn shapes_measured_on_webhook_2_8_0() {
        let cases: &[(&str, Option<&str>)] = &[
            ("<a>text</a>", Some(r#"{"a":"text"}"#)),
            (
                r#"<a x="1">text</a>"#,
                Some(r##"{"a":{"#text":"text","-x":"1"}}"##),
            ),
            (
                "<a><b>1</b><b>2</b><c/></a>",
                Some(r#"{"a":{"b":["1","2"],"c":""}}"#),
            ),
            ("<a><b/></a>", Some(r#"{"a":{"b":""}}"#)),
            ("<a><b></b><c>  </c></a>", Some(r#"{"a":{"b":"","c":""}}"#)),
            ("<a>  hello  </a>", Some(r#"{"a":"hello"}"#)),
            ("<a>\n  text\n</a>", Some(r#"{"a":"text"}"#)),
            ("<a>t1<b>x</b>t2</a>", Some(r#"{"a":"t1"}"#)),
            ("<a>t1<b>x</b></a>", Some(r#"{"a":"t1"}"#)),
            (
                "<a><b>x</b>t2</a>",
                Some(r##"{"a":{"#text":"t2","b":"x"}}"##),
            ),
            (
                r#"<a x="1">t1<b>x</b>t2</a>"#,
                Some(r##"{"a":{"#text":"t2","-x":"1","b":"x"}}"##),
            ),
            ("<a>t1<b>x</b>t2<c>y</c>t3</a>", Some(r#"{"a":"t1"}"#)),
            (
                r#"<ns:a xmlns:ns="urn:x" ns:attr="v"><ns:b>1</ns:b></ns:a>"#,
                Some(r#"{"a":{"-attr":"v","-ns":"urn:x","b":"1"}}"#),
            ),
            (
                r#"<a xmlns="urn:d"><b>1</b></a>"#,
                Some(r#"{"a":{"-xmlns":"urn:d","b":"1"}}"#),
            ),
            ("<a:b:c>1</a:b:c>", Some(r#"{"a:b:c":"1"}"#)),
            (
                "<?xml version=\"1.0\"?><!-- c --><!DOCTYPE a><a><?pi x?><b>&lt;&amp;&#65;</b></a>",
                Some(r#"{"a":{"b":"\u003c\u0026A"}}"#),
            ),
            ("<a><![CDATA[<x>]]></a>", Some(r#"{"a":"\u003cx\u003e"}"#)),
            (r#"<a x="1"/>"#, Some(r#"{"a":{"-x":"1"}}"#)),
            (
                r#"<a><b x="1">t</b><b>u</b></a>"#,
                Some(r##"{"a":{"b":[{"#text":"t","-x":"1"},"u"]}}"##),
            ),
            (
                "<a><b><c>1</c></b><b>2</b></a>",
                Some(r#"{"a":{"b":[{"c":"1"},"2"]}}"#),
            ),
            (
                "<a><b>1</b><c>2</c><b>3</b></a>",
                Some(r#"{"a":{"b":["1","3"],"c":"2"}}"#),
            ),
            (
                r#"<a><b>1</b><b x="2"/><b/></a>"#,
                Some(r#"{"a":{"b":["1",{"-x":"2"},""]}}"#),
            ),
            (
                "<a><b>1</b><b>2</b><b>3</b></a>",
                Some(r#"{"a":{"b":["1","2","3"]}}"#),
            ),
            (
                r#"<a x="1"><x>2</x></a>"#,
                Some(r#"{"a":{"-x":"1","x":"2"}}"#),
            ),
            (r#"<a><b x=""/></a>"#, Some(r#"{"a":{"b":{"-x":""}}}"#)),
            ("<a>  <b>1</b>  </a>", Some(r#"{"a":{"b":"1"}}"#)),
            ("<a>&#x20;x&#x20;</a>", Some(r#"{"a":"x"}"#)),
            ("<a>1 &amp; 2</a>", Some(r#"{"a":"1 \u0026 2"}"#)),
            ("<a>&apos;&quot;&gt;</a>", Some(r#"{"a":"'\"\u003e"}"#)),
            ("<a>1 > 2</a>", Some(r#"{"a":"1 \u003e 2"}"#)),
            ("<a>x<!-- c -->y</a>", Some(r#"{"a":"y"}"#)),
            ("<a>x<![CDATA[ y ]]>z</a>", Some(r#"{"a":"z"}"#)),
            ("<a>1</a><b>2</b>", Some(r#"{"a":"1"}"#)),
            ("<a><b>1</b></a>trailing", Some(r#"{"a":{"b":"1"}}"#)),
            ("   <a>1</a>", Some(r#"{"a":"1"}"#)),
            ("<a><b>x</b>\n</a>", Some(r#"{"a":{"b":"x"}}"#)),
            (r#"<a b="1" b="2"/>"#, Some(r#"{"a":{"-b":"2"}}"#)),
            (
                "<a x=\"a&lt;b\" y=\"l1\nl2\"/>",
                Some(r#"{"a":{"-x":"a\u003cb","-y":"l1\nl2"}}"#),
            ),
            ("<a>l1\r\nl2\rl3</a>", Some(r#"{"a":"l1\nl2\nl3"}"#)),
            ("\u{feff}<a>bom</a>", Some(r#"{"a":"bom"}"#)),
            ("<a><_b.c-d>1</_b.c-d></a>", Some(r#"{"a":{"_b.c-d":"1"}}"#)),
            (
                "<?xml version=\"1.0\" encoding=\"utf-8\"?><a>1</a>",
                Some(r#"{"a":"1"}"#),
            ),
            (
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><a>1</a>",
                Some(r#"{"a":"1"}"#),
            ),
            (
                "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a>1</a>",
                None,
            ),
            ("garbage", None),
            ("<a>&foo;</a>", None),
            ("<a><-x>1</-x></a>", None),
            ("<a x=1>1</a>", None),
            ("<a>x&#0;</a>", None),
            ("<a>1 < 2</a>", None),
            ("<a>", None),
            ("<a></b>", None),
            ("<1a>1</1a>", None),
        ];
        for (xml, want) in cases {
            assert_eq!(shape(xml), want.map(str::to_owned), "{xml:?}");
        }
    }

    #[test]
    fn not_measured_but_refused() {
        for xml in [
            "<a>\u{1}</a>",
            "<a x=\"&bogus;\"/>",
            "<a x=\"&#0;\"/>",
            "</a>",
            "",
        ] {
            assert_eq!(shape(xml), None, "{xml:?}");
        }
        assert!(parse(b"<a>\xff</a>").is_err());
    }

    #[test]
    fn depth_is_limited() {
        let ok = format!("{}{}", "<a>".repeat(MAX_DEPTH), "</a>".repeat(MAX_DEPTH));
        assert!(parse(ok.as_bytes()).is_ok());
        let deep = "<a>".repeat(100_000);
        assert!(matches!(parse(deep.as_bytes()), Err(BodyError::Xml(_))));
    }

    #[test]
    fn entity_bombs_are_inert() {
        let bomb = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>
<lolz>&lol2;</lolz>"#;
        assert!(parse(bomb.as_bytes()).is_err());
    }
}
