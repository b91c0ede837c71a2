//! A hook's `notify:` list: what to tell, and whom, after a run ends.
//!
//! ```yaml
//! notify:
//!   - {on: [failed, timed-out], url: {env: SLACK_WEBHOOK_URL}, format: slack}
//!   - {on: [succeeded], execute-command: /usr/local/bin/deploy-done}
//! ```
//!
//! `on` names final outcomes of a run (an attempt that will be retried is not one). A URL is a
//! secret (chat webhooks carry their token in the path), read like every secret: a string,
//! `{env}`, `{file}` or `{credential}`. Every mistake is a load error at its line.

use std::fmt;

use super::Diagnostic;
use super::format::{Kind, Node};
use super::schema::{self, Object, ObjectKind, Reader};
use super::secret;
use crate::secret::Secret;
use crate::store::Status;

/// One `notify:` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The final statuses that trigger it.
    pub on: Vec<Status>,
    pub target: Target,
}

/// Where a notification goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A program run without a shell, with `HOOKWIRE_*` variables and the JSON document on
    /// its standard input.
    Command(String),
    /// An HTTP(S) POST of a body in `format`.
    Url { url: NotifyUrl, format: Format },
}

/// A notification URL, checked at load. The whole URL is a secret; only
/// [`NotifyUrl::origin`] (scheme and host) may be shown.
#[derive(Clone, PartialEq, Eq)]
pub struct NotifyUrl {
    secret: Secret,
    origin: String,
}

impl NotifyUrl {
    /// The URL to send to. Never log it.
    pub fn expose(&self) -> &str {
        // Checked to be UTF-8 at load.
        std::str::from_utf8(self.secret.expose()).unwrap_or_default()
    }

    /// `scheme://host[:port]`: what logs and `check` show.
    pub fn origin(&self) -> &str {
        &self.origin
    }
}

impl fmt::Debug for NotifyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NotifyUrl({}/***)", self.origin)
    }
}

/// The body of a URL notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The run as a JSON object.
    Json,
    /// `{"text": "..."}` (Slack incoming webhooks, Mattermost, Rocket.Chat).
    Slack,
    /// `{"content": "..."}` (Discord webhooks).
    Discord,
}

impl Format {
    pub const NAMES: [&'static str; 3] = ["json", "slack", "discord"];

    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

/// The statuses `on` accepts, as written: the final outcomes of a run.
pub const EVENTS: [Status; 5] = [
    Status::Succeeded,
    Status::Failed,
    Status::TimedOut,
    Status::Interrupted,
    Status::Superseded,
];

const ON_AS_READ_BY_YAML_1_1: &str = "true";

const NOTIFY: ObjectKind = ObjectKind {
    name: "notify entry",
    keys: &["on", "execute-command", "url", "format"],
    // YAML 1.1 reads a plain `on` key as the boolean true, whose text is `true`.
    extensions: &[ON_AS_READ_BY_YAML_1_1],
};

/// Reads a hook's `notify` list (absent: none).
pub(crate) fn compile(
    reader: &mut Reader<'_>,
    object: &Object<'_>,
) -> Result<Vec<Notification>, Box<Diagnostic>> {
    let items = reader.list(object, "notify")?;
    let path = object.path_of("notify");
    items
        .iter()
        .enumerate()
        .map(|(i, item)| entry(reader, item, &format!("{path}[{i}]")))
        .collect()
}

fn entry(
    reader: &mut Reader<'_>,
    node: &Node,
    path: &str,
) -> Result<Notification, Box<Diagnostic>> {
    let object = reader
        .object(node, &NOTIFY, path)?
        .unwrap_or_else(|| Object::empty(node.pos, path));
    let on = events(reader, &object)?;
    let command = object.present("execute-command");
    let url = object.present("url");
    let target = match (command, url) {
        (Some(node), None) => {
            let command = reader.string_value(node, &object.path_of("execute-command"))?;
            if command.is_empty() {
                return Err(error(
                    reader,
                    node,
                    &object.path_of("execute-command"),
                    "is empty",
                    "name the program to run",
                ));
            }
            if let Some(format) = object.present("format") {
                reader.warn(
                    format.pos,
                    &object.path_of("format"),
                    "has no effect on a command, which gets the JSON document on its standard input",
                    Some("remove it".to_owned()),
                );
            }
            Target::Command(command)
        }
        (None, Some(node)) => Target::Url {
            url: notify_url(reader, node, &object.path_of("url"))?,
            format: format(reader, &object)?,
        },
        _ => {
            return Err(Box::new(
                reader.diagnostic(
                    object.pos,
                    path,
                    "a notify entry needs exactly one of `url` and `execute-command`",
                    Some(
                        "write e.g. `{on: [failed], url: {env: SLACK_WEBHOOK_URL}, format: slack}`"
                            .to_owned(),
                    ),
                ),
            ));
        }
    };
    Ok(Notification { on, target })
}

fn events(reader: &Reader<'_>, object: &Object<'_>) -> Result<Vec<Status>, Box<Diagnostic>> {
    let names = EVENTS.map(Status::as_str);
    let path = object.path_of("on");
    let given = object
        .present("on")
        .or_else(|| object.present(ON_AS_READ_BY_YAML_1_1));
    let Some(node) = given else {
        return Err(Box::new(reader.diagnostic(
            object.pos,
            &path,
            "a notify entry needs `on`, the run outcomes it is sent for",
            Some(format!(
                "write e.g. `on: [failed, timed-out]`; the outcomes are {}",
                schema::backticked(&names)
            )),
        )));
    };
    let items: Vec<&Node> = match &node.kind {
        Kind::Seq(items) => items.iter().map(AsRef::as_ref).collect(),
        _ => vec![node],
    };
    let mut on = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let item_path = format!("{path}[{i}]");
        let name = reader.string_value(item, &item_path)?;
        let status = EVENTS
            .into_iter()
            .find(|status| status.as_str() == name)
            .ok_or_else(|| {
                let hint = schema::did_you_mean(&name, names.iter()).map_or_else(
                    || format!("the outcomes are {}", schema::backticked(&names)),
                    |known| format!("did you mean `{known}`?"),
                );
                error(
                    reader,
                    item,
                    &item_path,
                    &format!("unknown run outcome `{name}`"),
                    &hint,
                )
            })?;
        if !on.contains(&status) {
            on.push(status);
        }
    }
    if on.is_empty() {
        return Err(error(
            reader,
            node,
            &path,
            "is empty, so this entry is never sent",
            "list at least one outcome, e.g. `on: [failed]`",
        ));
    }
    Ok(on)
}

fn format(reader: &Reader<'_>, object: &Object<'_>) -> Result<Format, Box<Diagnostic>> {
    let Some(node) = object.present("format") else {
        return Ok(Format::Json);
    };
    let path = object.path_of("format");
    let name = reader.string_value(node, &path)?;
    [Format::Json, Format::Slack, Format::Discord]
        .into_iter()
        .find(|format| format.name() == name)
        .ok_or_else(|| {
            let hint = format!("`format` is one of {}", schema::backticked(&Format::NAMES));
            error(
                reader,
                node,
                &path,
                &format!("unknown format `{name}`"),
                &hint,
            )
        })
}

/// Reads and checks a URL secret. Messages never quote the URL: it is a secret.
fn notify_url(
    reader: &mut Reader<'_>,
    node: &Node,
    path: &str,
) -> Result<NotifyUrl, Box<Diagnostic>> {
    let secret = secret::read(reader, node, path)?;
    let hint = "write a whole URL such as `https://hooks.example.com/...`";
    let text = std::str::from_utf8(secret.expose())
        .map_err(|_| error(reader, node, path, "is not text", hint))?;
    let uri: http::Uri = text
        .trim()
        .parse()
        .map_err(|_| error(reader, node, path, "is not a valid URL", hint))?;
    let scheme = uri.scheme_str().unwrap_or_default();
    if !matches!(scheme, "http" | "https") {
        return Err(error(
            reader,
            node,
            path,
            "must start with https:// or http://",
            hint,
        ));
    }
    let Some(authority) = uri.authority() else {
        return Err(error(reader, node, path, "has no host", hint));
    };
    // Credentials in the authority (`user:pass@host`) are not shown.
    let host = authority.as_str().rsplit('@').next().unwrap_or_default();
    Ok(NotifyUrl {
        origin: format!("{scheme}://{host}"),
        secret: Secret::new(text.trim()),
    })
}

fn error(
    reader: &Reader<'_>,
    node: &Node,
    path: &str,
    message: &str,
    hint: &str,
) -> Box<Diagnostic> {
    Box::new(reader.diagnostic(node.pos, path, message, Some(hint.to_owned())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::{first_hook, load_error};

    fn load(yaml: &str) -> Vec<Notification> {
        first_hook(yaml).0.notify
    }

    #[test]
    fn reads_commands_and_urls() {
        let notify = load(
            "- id: x\n  execute-command: /bin/true\n  notify:\n    - {on: [failed, timed-out], url: 'https://user:pw@hooks.example.com/T0/B1/secret', format: slack}\n    - {on: succeeded, execute-command: /bin/done}\n",
        );
        assert_eq!(notify[0].on, [Status::Failed, Status::TimedOut]);
        let Target::Url { url, format } = &notify[0].target else {
            panic!("{notify:?}")
        };
        assert_eq!(*format, Format::Slack);
        assert_eq!(url.origin(), "https://hooks.example.com");
        assert_eq!(
            url.expose(),
            "https://user:pw@hooks.example.com/T0/B1/secret"
        );
        assert!(!format!("{notify:?}").contains("secret"));
        assert_eq!(notify[1].target, Target::Command("/bin/done".into()));
        assert_eq!(notify[1].on, [Status::Succeeded]);
    }

    #[test]
    fn mistakes_are_load_errors_at_their_line() {
        let head = "- id: x\n  execute-command: /bin/true\n  notify:\n";
        for (entry, want) in [
            (
                "    - {on: [failled], execute-command: /bin/x}",
                "hooks.yaml:4:13: hook `x`: `notify[0].on[0]`: unknown run outcome `failled` (hint: did you mean `failed`?)",
            ),
            (
                "    - {on: [cancelled], execute-command: /bin/x}",
                "unknown run outcome `cancelled`",
            ),
            (
                "    - {execute-command: /bin/x}",
                "hooks.yaml:4:7: hook `x`: `notify[0].on`: a notify entry needs `on`",
            ),
            (
                "    - {on: [failed]}",
                "needs exactly one of `url` and `execute-command`",
            ),
            (
                "    - {on: [failed], url: 'ftp://example.com/x'}",
                "hooks.yaml:4:27: hook `x`: `notify[0].url`: must start with https:// or http://",
            ),
            (
                "    - {on: [failed], url: 'https://example.com/x', format: teams}",
                "unknown format `teams` (hint: `format` is one of `json`, `slack`, `discord`)",
            ),
            (
                "    - {on: [failed], url: {env: HOOKWIRE_TEST_SURELY_UNSET}}",
                "secret not available",
            ),
            (
                "    - {on: [], url: 'https://example.com/x'}",
                "is empty, so this entry is never sent",
            ),
        ] {
            let error = load_error(&format!("{head}{entry}\n"));
            assert!(error.contains(want), "{entry}: {error}");
        }
        let error = load_error(&format!(
            "{head}    - {{on: [failed], url: 'https:///token-value'}}\n"
        ));
        assert!(!error.contains("token-value"), "{error}");
    }
}
