//! TEMPORARY stub.
use super::Map;
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("json {0}")]
    Json(String),
    #[error("form {0}")]
    Form(String),
    #[error("xml {0}")]
    Xml(String),
    #[error("multipart {0}")]
    Multipart(String),
}
impl BodyError {
    pub fn is_multipart(&self) -> bool {
        matches!(self, Self::Multipart(_))
    }
}
pub async fn parse_payload(
    content_type: &str,
    body: &bytes::Bytes,
    _json: &[String],
) -> Result<Option<Map>, BodyError> {
    if content_type.contains("json") && !body.is_empty() {
        return serde_json::from_slice(body)
            .map(Some)
            .map_err(|e| BodyError::Json(e.to_string()));
    }
    Ok(None)
}
