//! The evaluator: walks the tree with its variable stack and applies the functions.

use super::funcs::{
    Func, Value, cat, credential, eq, html_escape, js_escape, le, lt, query_escape, sprint, sprintf,
};
use super::parse::{Node, Operand, Pipeline, error_at};
use super::{FuncError, Host, MAX_TEXT, TemplateError};

/// Runs the tree: the output so far and the variables in scope (Go's stack, searched from the
/// top; each structure drops what it pushed at its `{{end}}`).
pub(super) struct Exec<'h> {
    pub(super) host: &'h dyn Host,
    pub(super) vars: Vec<(String, Value)>,
    pub(super) out: String,
}

impl Exec<'_> {
    pub(super) fn walk(&mut self, nodes: &[Node<'_>], dot: &Value) -> Result<(), TemplateError> {
        for node in nodes {
            match node {
                // Text adds at most the file's own size: each node runs at most once.
                Node::Text(text) => self.out.push_str(text),
                Node::Action { line, pipeline } => {
                    let value = self.pipeline(pipeline, dot, *line)?;
                    if pipeline.vars.is_empty() {
                        let text = value.output();
                        if self.out.len() + text.len() > MAX_TEXT {
                            return Err(error_at(*line, too_large()));
                        }
                        self.out.push_str(&text);
                    }
                }
                Node::If {
                    branches,
                    otherwise,
                } => {
                    let scope = self.vars.len();
                    let mut taken = false;
                    for branch in branches {
                        if self.pipeline(&branch.pipeline, dot, branch.line)?.truthy() {
                            self.walk(&branch.body, dot)?;
                            taken = true;
                            break;
                        }
                    }
                    if !taken {
                        self.walk(otherwise, dot)?;
                    }
                    self.vars.truncate(scope);
                }
                Node::With { branch, otherwise } => {
                    let scope = self.vars.len();
                    let value = self.pipeline(&branch.pipeline, dot, branch.line)?;
                    if value.truthy() {
                        self.walk(&branch.body, &value)?;
                    } else {
                        self.walk(otherwise, dot)?;
                    }
                    self.vars.truncate(scope);
                }
                Node::Range {
                    line,
                    pipeline,
                    otherwise,
                } => {
                    let scope = self.vars.len();
                    let value = self.pipeline(pipeline, dot, *line)?;
                    if value != Value::Nil {
                        return Err(error_at(
                            *line,
                            format!("range can't iterate over {}", value.print()),
                        ));
                    }
                    self.walk(otherwise, dot)?;
                    self.vars.truncate(scope);
                }
            }
        }
        Ok(())
    }

    fn pipeline(
        &mut self,
        pipeline: &Pipeline,
        dot: &Value,
        line: usize,
    ) -> Result<Value, TemplateError> {
        let mut piped = None;
        for command in &pipeline.commands {
            piped = Some(self.command(command, dot, piped.take(), line)?);
        }
        let value = piped.unwrap_or(Value::Nil);
        for name in &pipeline.vars {
            if !pipeline.assign {
                self.vars.push((name.clone(), value.clone()));
                continue;
            }
            match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                Some((_, slot)) => *slot = value.clone(),
                None => return Err(error_at(line, format!("undefined variable: {name}"))),
            }
        }
        Ok(value)
    }

    /// A command: a function applied to its arguments (plus the piped value, last), a field
    /// (which takes arguments as a method would), or a value.
    fn command(
        &mut self,
        command: &[Operand],
        dot: &Value,
        piped: Option<Value>,
        line: usize,
    ) -> Result<Value, TemplateError> {
        let Some((first, args)) = command.split_first() else {
            return Err(error_at(line, "missing value for command"));
        };
        match first {
            Operand::Function(func) => self.call(*func, args, piped, dot, line),
            // Go looks fields up on nil as nil, arguments unused; nothing else has fields.
            Operand::Field(..) => self.operand(first, dot, line),
            Operand::Nil => Err(error_at(line, "nil is not a command")),
            _ if !args.is_empty() || piped.is_some() => Err(error_at(
                line,
                "can't give argument to non-function (only functions take arguments)",
            )),
            _ => self.operand(first, dot, line),
        }
    }

    /// An operand's value (a function named alone is called without arguments).
    fn operand(
        &mut self,
        operand: &Operand,
        dot: &Value,
        line: usize,
    ) -> Result<Value, TemplateError> {
        match operand {
            Operand::Literal(value) => Ok(value.clone()),
            Operand::Nil => Ok(Value::Nil),
            Operand::Dot => Ok(dot.clone()),
            Operand::Variable(name) => self
                .vars
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map(|(_, value)| value.clone())
                .ok_or_else(|| error_at(line, format!("undefined variable: {name}"))),
            Operand::Field(base, fields) => {
                let receiver = self.operand(base, dot, line)?;
                match (receiver, fields.first()) {
                    (Value::Nil, _) | (_, None) => Ok(Value::Nil),
                    (receiver, Some(field)) => Err(error_at(
                        line,
                        format!(
                            "can't evaluate field {field} in type {}",
                            receiver.type_name()
                        ),
                    )),
                }
            }
            Operand::Function(func) => self.call(*func, &[], None, dot, line),
            Operand::Pipeline(pipeline) => self.pipeline(pipeline, dot, line),
        }
    }

    fn call(
        &mut self,
        func: Func,
        args: &[Operand],
        piped: Option<Value>,
        dot: &Value,
        line: usize,
    ) -> Result<Value, TemplateError> {
        let error = |message: String| error_at(line, message);
        let count = args.len() + usize::from(piped.is_some());
        let name = func.name();
        match func.arity() {
            (want, false) if count != want => {
                return Err(error(format!(
                    "wrong number of args for {name}: want {want} got {count}"
                )));
            }
            (want, true) if count < want => {
                return Err(error(format!(
                    "wrong number of args for {name}: want at least {want} got {count}"
                )));
            }
            _ => {}
        }
        if matches!(func, Func::And | Func::Or) {
            // Go 1.18+: arguments run only until one decides, which is the result.
            let mut last = Value::Nil;
            for arg in args {
                last = self.operand(arg, dot, line)?;
                if last.truthy() == (func == Func::Or) {
                    return Ok(last);
                }
            }
            return Ok(piped.unwrap_or(last));
        }
        let mut values = Vec::with_capacity(count);
        for arg in args {
            values.push(self.operand(arg, dot, line)?);
        }
        values.extend(piped);
        if values.iter().map(Value::size).sum::<usize>() > MAX_TEXT {
            return Err(error(too_large()));
        }
        let value = apply(func, &values, self.host).map_err(|e| error(e.to_string()))?;
        if value.size() > MAX_TEXT {
            return Err(error(too_large()));
        }
        Ok(value)
    }
}

fn too_large() -> String {
    format!("the rendered template would exceed {} MiB", MAX_TEXT >> 20)
}

/// Applies a function (other than `and` and `or`) to its evaluated arguments, whose number
/// [`Exec::call`] has checked.
fn apply(func: Func, args: &[Value], host: &dyn Host) -> Result<Value, FuncError> {
    let name = func.name();
    let first = args.first().unwrap_or(&Value::Nil);
    let second = args.get(1).unwrap_or(&Value::Nil);
    let rest = args.get(1..).unwrap_or_default();
    Ok(match func {
        Func::Getenv => Value::str(host.getenv(string_arg(first)?).unwrap_or_default()),
        Func::Cat => Value::str(cat(host, string_arg(first)?)),
        Func::Credential => Value::str(credential(host, string_arg(first)?)),
        Func::Payload | Func::Header | Func::Query | Func::Request => {
            Value::str(host.request(name, string_arg(first)?)?)
        }
        Func::Js => Value::str(js_escape(&escaper_text(args))),
        Func::Html => Value::str(html_escape(&escaper_text(args))),
        Func::Urlquery => Value::str(query_escape(&escaper_text(args))),
        Func::Print => Value::str(sprint(args)),
        Func::Println => {
            let words: Vec<String> = args.iter().map(Value::print).collect();
            Value::str(words.join(" ") + "\n")
        }
        Func::Printf => Value::str(sprintf(string_arg(first)?, rest)?),
        Func::And | Func::Or => return Err(FuncError::Lazy(name)),
        Func::Not => Value::Bool(!first.truthy()),
        Func::Len => match first {
            Value::Str(s) => Value::Int(i64::try_from(s.len()).unwrap_or(i64::MAX)),
            Value::Nil => return Err(FuncError::LenOfNil),
            other => return Err(FuncError::LenOfType(other.type_name())),
        },
        Func::Eq => Value::Bool(eq(first, rest).map_err(|e| calling(name, e))?),
        Func::Ne => Value::Bool(!eq(first, rest).map_err(|e| calling(name, e))?),
        Func::Lt => Value::Bool(lt(first, second).map_err(|e| calling(name, e))?),
        Func::Le => Value::Bool(le(first, second).map_err(|e| calling(name, e))?),
        Func::Gt => Value::Bool(!le(first, second).map_err(|e| calling(name, e))?),
        Func::Ge => Value::Bool(!lt(first, second).map_err(|e| calling(name, e))?),
    })
}

fn calling(function: &'static str, reason: &'static str) -> FuncError {
    FuncError::Comparison { function, reason }
}

/// An argument Go's signature types as `string`.
fn string_arg(value: &Value) -> Result<&str, FuncError> {
    match value {
        Value::Str(s) => Ok(s),
        Value::Nil => Err(FuncError::NilForString),
        other => Err(FuncError::NotString(other.type_name())),
    }
}

/// What Go's `js`, `html` and `urlquery` escape: a lone string as is, else the arguments
/// printed, nil as `<no value>`.
fn escaper_text(args: &[Value]) -> String {
    match args {
        [Value::Str(s)] => s.to_string(),
        _ => {
            let printable: Vec<Value> = args
                .iter()
                .map(|arg| match arg {
                    Value::Nil => Value::str("<no value>"),
                    other => other.clone(),
                })
                .collect();
            sprint(&printable)
        }
    }
}
