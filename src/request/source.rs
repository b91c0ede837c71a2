//! Parameter sources: how an argument object (`{source, name}`) reads a value from a
//! [`Request`](super::Request), with adnanh's string forms.

/// Where an argument's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `payload`: the parsed body, by dotted name.
    Payload,
    /// `header`: a request header, name canonicalised.
    Header,
    /// `url` or `query`: a query-string parameter.
    Query,
    /// `request`: `method` or `remote-addr`.
    Request,
    /// `raw-request-body`: the body bytes as text.
    RawRequestBody,
    /// `entire-payload`: the payload rendered as Go's JSON.
    EntirePayload,
    /// `entire-headers`: all headers rendered as Go's JSON.
    EntireHeaders,
    /// `entire-query`: all query parameters rendered as Go's JSON.
    EntireQuery,
    /// `string`: the name itself, a constant.
    String,
    /// Anything else: a hard error in rules, an empty value elsewhere.
    Other(String),
}

/// adnanh's argument object, used by the three `pass-*` lists, `parse-parameters-as-json` and a
/// match rule's `parameter`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Argument {
    pub source: Source,
    pub name: String,
    /// `envname`: the variable name for the environment and file lists; empty when not given.
    pub envname: String,
    /// `base64decode`: decode the value before writing it to a file (file list only).
    pub base64decode: bool,
}

/// Why an argument has no value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// The named node does not exist; rules count this as "not satisfied".
    #[error("couldn't retrieve argument for {{Source:{from} Name:{name}}}")]
    NotFound { from: String, name: String },
    /// Anything else (unknown source, unsupported `request` name, `null` descended into): a
    /// hard error in rules (500), an empty value in the pass-* lists.
    #[error("{0}")]
    Hard(String),
}

// TEMPORARY stub.
impl Argument {
    pub fn get(&self, req: &super::Request) -> Result<String, ParamError> {
        match self.source {
            Source::String => Ok(self.name.clone()),
            Source::Payload => req
                .payload
                .as_ref()
                .and_then(|p| p.get(&self.name))
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string())
                })
                .ok_or(ParamError::NotFound {
                    from: "payload".into(),
                    name: self.name.clone(),
                }),
            _ => Err(ParamError::Hard("stub".into())),
        }
    }
}
