//! Reading a secret field of the hooks file: a plain string or a reference to the environment, a
//! file or a systemd credential, resolved at once through [`crate::secret`].

use std::path::{Path, PathBuf};

use super::Diagnostic;
use super::format::{Kind, Node};
use super::schema::{Object, ObjectKind, Reader};
use crate::secret::{Reference, Secret};

/// A secret reference object: exactly one of its keys.
const REFERENCE: ObjectKind = ObjectKind {
    name: "secret reference",
    keys: &["env", "file", "credential"],
    extensions: &[],
};

/// Reads the secret at `node` (a string or a reference object) and resolves it. A missing
/// secret is an error at the node, naming the hook and field.
pub(crate) fn read(
    reader: &mut Reader<'_>,
    node: &Node,
    path: &str,
) -> Result<Secret, Box<Diagnostic>> {
    let Kind::Map(_) = &node.kind else {
        // A plain string (numbers and bools become their text, as for any string field).
        return Ok(Secret::new(reader.string_value(node, path)?));
    };
    let object = reader
        .object(node, &REFERENCE, path)?
        .unwrap_or_else(|| Object::empty(node.pos, path));
    let mut given = REFERENCE
        .keys
        .iter()
        .filter(|key| object.present(key).is_some());
    let (Some(key), None) = (given.next(), given.next()) else {
        return Err(Box::new(reader.diagnostic(
            node.pos,
            path,
            "a secret reference needs exactly one of `env`, `file`, `credential`",
            Some("write e.g. `{env: GITHUB_SECRET}`, or the secret itself as a string".into()),
        )));
    };
    let name = reader.string(&object, key)?;
    if name.is_empty() {
        return Err(Box::new(reader.diagnostic(
            object.pos_of(key),
            &object.path_of(key),
            format!("`{key}` is empty"),
            None,
        )));
    }
    let reference = match *key {
        "env" => Reference::Env(name),
        "file" => Reference::File(PathBuf::from(name)),
        _ => Reference::Credential(name),
    };
    let base = reader.file().parent().unwrap_or(Path::new("."));
    reference.resolve(base).map_err(|error| {
        Box::new(reader.diagnostic(
            object.pos_of(key),
            path,
            format!("secret not available: {error}"),
            Some(error.hint()),
        ))
    })
}

/// Reads an optional secret field of `object`; absent or null is an empty secret.
pub(crate) fn read_field(
    reader: &mut Reader<'_>,
    object: &Object<'_>,
    key: &str,
) -> Result<Secret, Box<Diagnostic>> {
    match object.present(key) {
        Some(node) => read(reader, node, &object.path_of(key)),
        None => Ok(Secret::default()),
    }
}

/// Reads a secret or a list of secrets (rotation: any of them may match).
pub(crate) fn read_list(
    reader: &mut Reader<'_>,
    node: &Node,
    path: &str,
) -> Result<Vec<Secret>, Box<Diagnostic>> {
    match &node.kind {
        Kind::Seq(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| read(reader, item, &format!("{path}[{i}]")))
            .collect(),
        _ => read(reader, node, path).map(|secret| vec![secret]),
    }
}
