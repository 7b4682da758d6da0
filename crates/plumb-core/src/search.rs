//! MLflow's search DSL: lexer, parser and per-entity resolution of filters and `order_by` to an AST.
//!
//! The AST is rendered to SQL (with bound values only) by each store; nothing here knows SQL.

use crate::error::{Error, Result};

/// What a comparison looks at.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Metric(String),
    Param(String),
    Tag(String),
    /// Canonical attribute name (e.g. `start_time`, `run_name`, `name`, `experiment_id`).
    Attribute(String),
    /// `name`, `digest` or `context`.
    Dataset(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Like,
    ILike,
    In,
    NotIn,
    IsNull,
    IsNotNull,
}

impl Op {
    /// The comparator as written in a filter (`ILIKE`, `IS NULL`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Like => "LIKE",
            Op::ILike => "ILIKE",
            Op::In => "IN",
            Op::NotIn => "NOT IN",
            Op::IsNull => "IS NULL",
            Op::IsNotNull => "IS NOT NULL",
        }
    }
    fn is_numeric(self) -> bool {
        matches!(self, Op::Eq | Op::Ne | Op::Lt | Op::Le | Op::Gt | Op::Ge)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Num(f64),
    List(Vec<String>),
    None,
}

/// One `AND`-joined clause.
#[derive(Debug, Clone, PartialEq)]
pub struct Clause {
    pub target: Target,
    pub op: Op,
    pub value: Value,
}

/// One `order_by` key.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderKey {
    pub target: Target,
    pub ascending: bool,
}

// ---------------------------------------------------------------------------------------------
// Lexer

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    /// Backtick-quoted.
    Quoted(String),
    /// Double-quoted: an identifier part or a string value.
    DQuoted(String),
    Str(String),
    Num(f64, String),
    Cmp(&'static str),
    LParen,
    RParen,
    Comma,
}

fn lex(input: &str) -> Result<Vec<Tok>> {
    let chars: Vec<char> = input.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' || c == '"' || c == '`' {
            let start = i + 1;
            let mut j = start;
            while j < chars.len() && chars[j] != c {
                j += 1;
            }
            if j >= chars.len() {
                return Err(Error::invalid(format!(
                    "Invalid filter string '{input}': unterminated quote {c} at position {i}"
                )));
            }
            let s: String = chars[start..j].iter().collect();
            toks.push(match c {
                '\'' => Tok::Str(s),
                '"' => Tok::DQuoted(s),
                _ => Tok::Quoted(s),
            });
            i = j + 1;
        } else if c == '(' {
            toks.push(Tok::LParen);
            i += 1;
        } else if c == ')' {
            toks.push(Tok::RParen);
            i += 1;
        } else if c == ',' {
            toks.push(Tok::Comma);
            i += 1;
        } else if matches!(c, '=' | '!' | '<' | '>') {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let (op, len) = match two.as_str() {
                "!=" => ("!=", 2),
                "<>" => ("!=", 2),
                "<=" => ("<=", 2),
                ">=" => (">=", 2),
                "==" => ("=", 2),
                _ => match c {
                    '=' => ("=", 1),
                    '<' => ("<", 1),
                    '>' => (">", 1),
                    _ => {
                        return Err(Error::invalid(format!(
                            "Invalid filter string '{input}': unexpected '!' at position {i}"
                        )))
                    }
                },
            };
            toks.push(Tok::Cmp(op));
            i += len;
        } else if c.is_ascii_digit()
            || ((c == '-' || c == '+' || c == '.')
                && chars
                    .get(i + 1)
                    .is_some_and(|n| n.is_ascii_digit() || *n == '.'))
        {
            let start = i;
            i += 1;
            while i < chars.len() {
                let d = chars[i];
                let prev = chars[i - 1];
                if d.is_ascii_digit()
                    || d == '.'
                    || d == 'e'
                    || d == 'E'
                    || ((d == '-' || d == '+') && (prev == 'e' || prev == 'E'))
                {
                    i += 1;
                } else {
                    break;
                }
            }
            let text: String = chars[start..i].iter().collect();
            let n: f64 = text.parse().map_err(|_| {
                Error::invalid(format!(
                    "Invalid filter string '{input}': bad number '{text}'"
                ))
            })?;
            toks.push(Tok::Num(n, text));
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '.')) {
                i += 1;
            }
            toks.push(Tok::Word(chars[start..i].iter().collect()));
        } else {
            return Err(Error::invalid(format!(
                "Invalid filter string '{input}': unexpected character '{c}' at position {i}"
            )));
        }
    }
    Ok(toks)
}

// ---------------------------------------------------------------------------------------------
// Generic parser: `ident op value (AND ident op value)*`

/// An identifier before resolution: the entity as written (maybe empty) and the key.
#[derive(Debug, Clone, PartialEq)]
struct RawIdent {
    entity: String,
    key: String,
}

struct Parser<'a> {
    toks: Vec<Tok>,
    pos: usize,
    input: &'a str,
}

fn is_kw(tok: Option<&Tok>, kw: &str) -> bool {
    matches!(tok, Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn err(&self, what: &str) -> Error {
        Error::invalid(format!("Invalid filter string '{}': {what}", self.input))
    }

    fn ident(&mut self) -> Result<RawIdent> {
        match self.next() {
            Some(Tok::Word(w)) => {
                if let Some(entity) = w.strip_suffix('.') {
                    // `tags.`k``, or a nested key whose last part is quoted:
                    // `span.attributes.`mlflow.spanType``.
                    let (entity, prefix) = match entity.split_once('.') {
                        None => (entity, ""),
                        Some((e, rest)) => (e, rest),
                    };
                    return match self.next() {
                        Some(Tok::Quoted(k)) | Some(Tok::DQuoted(k)) => Ok(RawIdent {
                            entity: entity.to_string(),
                            key: if prefix.is_empty() {
                                k
                            } else {
                                format!("{prefix}.{k}")
                            },
                        }),
                        _ => Err(self.err(&format!("expected a key after '{w}'"))),
                    };
                }
                match w.split_once('.') {
                    Some((e, k)) if !k.is_empty() => Ok(RawIdent {
                        entity: e.to_string(),
                        key: k.to_string(),
                    }),
                    Some(_) => Err(self.err(&format!("invalid identifier '{w}'"))),
                    None => Ok(RawIdent {
                        entity: String::new(),
                        key: w,
                    }),
                }
            }
            Some(Tok::Quoted(k)) | Some(Tok::DQuoted(k)) => Ok(RawIdent {
                entity: String::new(),
                key: k,
            }),
            Some(t) => Err(self.err(&format!("expected an identifier, found {}", describe(&t)))),
            None => Err(self.err("expected an identifier")),
        }
    }

    fn op(&mut self) -> Result<Op> {
        match self.next() {
            Some(Tok::Cmp(c)) => Ok(match c {
                "=" => Op::Eq,
                "!=" => Op::Ne,
                "<" => Op::Lt,
                "<=" => Op::Le,
                ">" => Op::Gt,
                _ => Op::Ge,
            }),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("like") => Ok(Op::Like),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("ilike") => Ok(Op::ILike),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("in") => Ok(Op::In),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("not") => {
                if is_kw(self.peek(), "in") {
                    self.pos += 1;
                    Ok(Op::NotIn)
                } else {
                    Err(self.err("expected IN after NOT"))
                }
            }
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("is") => {
                let negated = is_kw(self.peek(), "not");
                if negated {
                    self.pos += 1;
                }
                if is_kw(self.peek(), "null") {
                    self.pos += 1;
                    Ok(if negated { Op::IsNotNull } else { Op::IsNull })
                } else {
                    Err(self.err("expected NULL after IS"))
                }
            }
            Some(t) => Err(Error::invalid(format!(
                "Invalid comparator '{}' in filter string '{}'",
                describe(&t),
                self.input
            ))),
            None => Err(self.err("expected a comparator")),
        }
    }

    fn value(&mut self, op: Op) -> Result<Value> {
        match op {
            Op::IsNull | Op::IsNotNull => return Ok(Value::None),
            Op::In | Op::NotIn => {
                if self.next() != Some(Tok::LParen) {
                    return Err(self.err("expected '(' after IN"));
                }
                let mut items = Vec::new();
                loop {
                    match self.next() {
                        Some(Tok::Str(s)) | Some(Tok::DQuoted(s)) => items.push(s),
                        Some(Tok::Num(_, text)) => items.push(text),
                        _ => return Err(self.err("expected a quoted string in the IN list")),
                    }
                    match self.next() {
                        Some(Tok::Comma) => continue,
                        Some(Tok::RParen) => break,
                        _ => return Err(self.err("expected ',' or ')' in the IN list")),
                    }
                }
                return Ok(Value::List(items));
            }
            _ => {}
        }
        match self.next() {
            Some(Tok::Str(s)) | Some(Tok::DQuoted(s)) => Ok(Value::Str(s)),
            Some(Tok::Num(n, _)) => Ok(Value::Num(n)),
            Some(Tok::Word(w)) => Err(Error::invalid(format!(
                "Expected a quoted string value for attributes, params or tags (e.g. 'my-value'). Got value {w}"
            ))),
            Some(t) => Err(self.err(&format!("unexpected {}", describe(&t)))),
            None => Err(self.err("expected a value")),
        }
    }

    fn clauses(&mut self) -> Result<Vec<(RawIdent, Op, Value)>> {
        let mut out = Vec::new();
        if self.toks.is_empty() {
            return Ok(out);
        }
        loop {
            let ident = self.ident()?;
            let op = self.op()?;
            let value = self.value(op)?;
            out.push((ident, op, value));
            match self.next() {
                None => return Ok(out),
                Some(Tok::Word(w)) if w.eq_ignore_ascii_case("and") => {}
                Some(t) => {
                    return Err(Error::invalid(format!(
                        "Invalid clause(s) in filter string: '{}'",
                        describe(&t)
                    )))
                }
            }
        }
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Word(w) => w.clone(),
        Tok::Quoted(s) => format!("`{s}`"),
        Tok::DQuoted(s) => format!("\"{s}\""),
        Tok::Str(s) => format!("'{s}'"),
        Tok::Num(_, s) => s.clone(),
        Tok::Cmp(c) => (*c).to_string(),
        Tok::LParen => "(".into(),
        Tok::RParen => ")".into(),
        Tok::Comma => ",".into(),
    }
}

fn parse_raw(filter: &str) -> Result<Vec<(RawIdent, Op, Value)>> {
    let toks = lex(filter)?;
    Parser {
        toks,
        pos: 0,
        input: filter,
    }
    .clauses()
}

// ---------------------------------------------------------------------------------------------
// Traces (MLflow's trace search: attributes, tags, metadata)

/// What a trace filter or `order_by` key looks at.
#[derive(Debug, Clone, PartialEq)]
pub enum TraceTarget {
    /// `trace_id`, `timestamp_ms`, `execution_time_ms`, `status`, `client_request_id`, `name`,
    /// `run_id` (the `mlflow.sourceRun` metadata or a run the trace is linked to), or
    /// `experiment_id` (order only).
    Attribute(&'static str),
    Tag(String),
    Metadata(String),
    /// A property of one of the trace's spans; the span clauses of a filter hold for one span.
    Span(SpanKey),
    /// A valid feedback or expectation of that name (`feedback.rating >= 4`).
    Assessment {
        kind: AssessmentKind,
        name: String,
    },
}

/// What a `span.` key of a trace filter names.
#[derive(Debug, Clone, PartialEq)]
pub enum SpanKey {
    Name,
    Type,
    Status,
    /// The span as stored (MLflow's span dictionary), for `LIKE` (`text`, `span.content`).
    Content,
    /// `span.attributes.<name>`.
    Attribute(String),
}

impl SpanKey {
    /// The key as written after `span.`.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Name => "name",
            Self::Type => "type",
            Self::Status => "status",
            Self::Content => "content",
            Self::Attribute(a) => a,
        }
    }
}

/// An assessment's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssessmentKind {
    Feedback,
    Expectation,
}

impl AssessmentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Feedback => "feedback",
            Self::Expectation => "expectation",
        }
    }
}

/// One `AND`-joined clause of a trace filter.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceClause {
    pub target: TraceTarget,
    pub op: Op,
    pub value: Value,
}

/// One `order_by` key of a trace search.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceOrder {
    pub target: TraceTarget,
    pub ascending: bool,
}

const TRACE_NUMERIC: &[&str] = &["timestamp_ms", "execution_time_ms", "end_time_ms"];

/// The canonical attribute of a trace search key (`timestamp` is `timestamp_ms`, ...).
fn trace_attr(key: &str, order: bool) -> Option<&'static str> {
    Some(match key {
        "request_id" | "trace_id" => "trace_id",
        "timestamp" | "timestamp_ms" => "timestamp_ms",
        "execution_time" | "execution_time_ms" => "execution_time_ms",
        "end_time" | "end_time_ms" => "end_time_ms",
        "status" | "state" => "status",
        "client_request_id" => "client_request_id",
        "name" => "name",
        "run_id" => "run_id",
        "experiment_id" if order => "experiment_id",
        _ => return None,
    })
}

fn trace_target(entity: &str, key: String, order: bool) -> Result<TraceTarget> {
    match entity.to_ascii_lowercase().as_str() {
        "" | "attribute" | "attributes" | "attr" | "trace" if !order && key == "text" => {
            // Full-text search over the spans.
            Ok(TraceTarget::Span(SpanKey::Content))
        }
        "" | "attribute" | "attributes" | "attr" | "trace" => trace_attr(&key, order)
            .map(TraceTarget::Attribute)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "Invalid attribute key '{key}' specified. Valid keys are 'request_id', \
                     'timestamp', 'timestamp_ms', 'execution_time', 'execution_time_ms', \
                     'end_time', 'end_time_ms', 'status', 'client_request_id', 'name', \
                     'run_id', 'text'"
                ))
            }),
        "tag" | "tags" => Ok(TraceTarget::Tag(key)),
        "metadata" | "request_metadata" => Ok(TraceTarget::Metadata(key)),
        "span" if !order => Ok(TraceTarget::Span(match key.as_str() {
            "name" => SpanKey::Name,
            "type" => SpanKey::Type,
            "status" => SpanKey::Status,
            "content" => SpanKey::Content,
            k => match k.strip_prefix("attributes.") {
                Some(a) if !a.is_empty() => SpanKey::Attribute(a.to_string()),
                Some(_) => {
                    return Err(Error::invalid(
                        "Span attribute name cannot be empty after 'attributes.'",
                    ))
                }
                None => {
                    return Err(Error::invalid(format!(
                        "Invalid span attribute '{key}'. Supported attributes: name, status, \
                         type, attributes.<attribute_name>."
                    )))
                }
            },
        })),
        "feedback" | "expectation" if !order => {
            if key.is_empty() {
                return Err(Error::invalid("Assessment field name cannot be empty"));
            }
            let kind = if entity.eq_ignore_ascii_case("feedback") {
                AssessmentKind::Feedback
            } else {
                AssessmentKind::Expectation
            };
            Ok(TraceTarget::Assessment { kind, name: key })
        }
        other => Err(Error::invalid(format!(
            "Invalid entity type '{other}'. Valid values are 'attribute', 'tag', 'metadata'{}",
            if order {
                ""
            } else {
                ", 'span', 'feedback', 'expectation'"
            }
        ))),
    }
}

/// Parses a trace search filter: `AND`-joined comparisons of attributes (`trace.status = 'OK'`,
/// `timestamp_ms > 1700000000000`, `trace.name LIKE 'chat%'`, `run_id = '...'`), tags and
/// metadata (`tags.env = 'prod'`, ``metadata.`mlflow.user` = 'me'``).
pub fn parse_trace_filter(filter: &str) -> Result<Vec<TraceClause>> {
    let mut out = Vec::new();
    for (ident, op, value) in parse_raw(filter)? {
        let target = trace_target(&ident.entity, ident.key, false)?;
        let ok = match &target {
            TraceTarget::Attribute(a) if TRACE_NUMERIC.contains(a) => {
                op.is_numeric() && matches!(value, Value::Num(_))
            }
            TraceTarget::Attribute(_) => {
                matches!(op, Op::Eq | Op::Ne | Op::Like | Op::ILike)
                    && matches!(value, Value::Str(_))
                    || matches!(op, Op::In | Op::NotIn) && matches!(value, Value::List(_))
            }
            TraceTarget::Tag(_) | TraceTarget::Metadata(_) => {
                matches!(op, Op::Eq | Op::Ne | Op::Like | Op::ILike)
                    && matches!(value, Value::Str(_))
                    || matches!(op, Op::IsNull | Op::IsNotNull)
            }
            TraceTarget::Span(SpanKey::Content) => {
                matches!(op, Op::Like | Op::ILike) && matches!(value, Value::Str(_))
            }
            TraceTarget::Span(_) => {
                matches!(op, Op::Eq | Op::Ne | Op::Like | Op::ILike)
                    && matches!(value, Value::Str(_))
                    || matches!(op, Op::In | Op::NotIn) && matches!(value, Value::List(_))
            }
            TraceTarget::Assessment { .. } => match op {
                Op::IsNull | Op::IsNotNull => true,
                Op::Lt | Op::Le | Op::Gt | Op::Ge => matches!(value, Value::Num(_)),
                Op::Eq | Op::Ne | Op::Like | Op::ILike => {
                    matches!(value, Value::Str(_) | Value::Num(_))
                }
                Op::In | Op::NotIn => false,
            },
        };
        if !ok {
            return Err(Error::invalid(format!(
                "Invalid comparator '{}' or value for {} in the trace filter '{filter}'",
                op.as_str(),
                match &target {
                    TraceTarget::Attribute(a) => format!("attribute '{a}'"),
                    TraceTarget::Tag(k) => format!("tag '{k}'"),
                    TraceTarget::Metadata(k) => format!("metadata '{k}'"),
                    TraceTarget::Span(k) => format!("span.{}", k.as_str()),
                    TraceTarget::Assessment { kind, name } => format!("{} '{name}'", kind.as_str()),
                }
            )));
        }
        out.push(TraceClause { target, op, value });
    }
    Ok(out)
}

/// Parses a trace search's `order_by` (`timestamp_ms DESC`, `execution_time ASC`, `tags.k`).
pub fn parse_trace_order_by(order_by: &[String]) -> Result<Vec<TraceOrder>> {
    if order_by.len() > MAX_ORDER_BY_KEYS {
        return Err(Error::invalid(format!(
            "Invalid order_by: {} keys given, at most {MAX_ORDER_BY_KEYS} are allowed.",
            order_by.len()
        )));
    }
    order_by
        .iter()
        .map(|clause| {
            let bad = || {
                Error::invalid(format!(
                    "Invalid order_by clause '{clause}'. Could not be parsed."
                ))
            };
            let toks = lex(clause).map_err(|_| bad())?;
            let mut p = Parser {
                toks,
                pos: 0,
                input: clause,
            };
            let ident = p.ident().map_err(|_| bad())?;
            let ascending = match p.next() {
                None => true,
                Some(Tok::Word(w)) if w.eq_ignore_ascii_case("asc") => true,
                Some(Tok::Word(w)) if w.eq_ignore_ascii_case("desc") => false,
                Some(_) => return Err(bad()),
            };
            if p.next().is_some() {
                return Err(bad());
            }
            let target = trace_target(&ident.entity, ident.key, true)?;
            Ok(TraceOrder { target, ascending })
        })
        .collect()
}

/// One filter of a trace-metrics query (MLflow's `view.entity[.key] = 'value'`, one clause
/// each, equality only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricFilter {
    TraceStatus(String),
    TraceTag(String, String),
    TraceMetadata(String, String),
    SpanName(String),
    SpanStatus(String),
    SpanType(String),
    AssessmentName(String),
    AssessmentType(String),
}

impl MetricFilter {
    /// `trace`, `span` or `assessment`.
    pub fn view(&self) -> &'static str {
        match self {
            Self::TraceStatus(_) | Self::TraceTag(..) | Self::TraceMetadata(..) => "trace",
            Self::SpanName(_) | Self::SpanStatus(_) | Self::SpanType(_) => "span",
            Self::AssessmentName(_) | Self::AssessmentType(_) => "assessment",
        }
    }
}

/// Parses one trace-metrics filter: `trace.status = 'OK'`, `trace.tag.env = 'prod'`,
/// `trace.metadata.k = 'v'`, `span.name|status|type = '...'`, `assessment.name|type = '...'`.
pub fn parse_metric_filter(filter: &str) -> Result<MetricFilter> {
    let mut clauses = parse_raw(filter)?;
    if clauses.len() != 1 {
        return Err(Error::invalid(format!(
            "Invalid filter: '{filter}'. Expected one filter clause."
        )));
    }
    let (ident, op, value) = clauses.remove(0);
    let bad_ident = || {
        Error::invalid(format!(
            "Invalid identifier '{}.{}'. Columns should be specified as 'trace.<key>', \
             'span.<key>', 'assessment.<key>'.",
            ident.entity, ident.key
        ))
    };
    let (entity, key) = match ident.key.split_once('.') {
        Some((e, k)) => (e.to_string(), Some(k.to_string())),
        None => (ident.key.clone(), None),
    };
    let Value::Str(v) = value else {
        return Err(Error::invalid(format!(
            "Invalid filter: '{filter}'. Expected a quoted value."
        )));
    };
    if op != Op::Eq {
        return Err(Error::invalid(format!(
            "Invalid comparator '{}' in '{filter}': trace metric filters compare with '='",
            op.as_str()
        )));
    }
    let needs_key = |what: &str| {
        Error::invalid(format!(
            "Filtering by {what} requires a key, e.g. '{}.{what}.<key> = <value>'",
            ident.entity
        ))
    };
    let no_key = |what: &str| {
        Error::invalid(format!(
            "Filtering by {what} does not require a key, use '{}.{what}' instead",
            ident.entity
        ))
    };
    Ok(match (ident.entity.as_str(), entity.as_str(), key) {
        ("trace", "status", None) => MetricFilter::TraceStatus(v),
        ("trace", "tag", Some(k)) => MetricFilter::TraceTag(k, v),
        ("trace", "metadata", Some(k)) => MetricFilter::TraceMetadata(k, v),
        ("trace", e @ ("tag" | "metadata"), None) => return Err(needs_key(e)),
        ("trace", "status", Some(_)) => return Err(no_key("status")),
        ("span", "name", None) => MetricFilter::SpanName(v),
        ("span", "status", None) => MetricFilter::SpanStatus(v),
        ("span", "type", None) => MetricFilter::SpanType(v),
        ("assessment", "name", None) => MetricFilter::AssessmentName(v),
        ("assessment", "type", None) => MetricFilter::AssessmentType(v),
        ("trace" | "span" | "assessment", e, _) => {
            return Err(Error::invalid(format!(
                "Invalid entity '{e}' specified for view type '{}'. Valid entities are {}",
                ident.entity,
                match ident.entity.as_str() {
                    "trace" => "['status', 'tag', 'metadata']",
                    "span" => "['name', 'status', 'type']",
                    _ => "['name', 'type']",
                }
            )))
        }
        ("", _, _) => return Err(bad_ident()),
        (other, _, _) => {
            return Err(Error::invalid(format!(
                "Invalid view type '{other}'. Valid values are ['trace', 'span', 'assessment']"
            )))
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Per-entity resolution

/// Which search the filter belongs to; each has its own entities, attributes and comparators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Domain {
    Runs,
    Experiments,
    LoggedModels,
    RegisteredModels,
    ModelVersions,
}

impl Domain {
    /// Registry searches have no metrics or params.
    fn has_run_data(self) -> bool {
        matches!(self, Domain::Runs | Domain::LoggedModels)
    }
}

const RUN_STRING_ATTRS: &[&str] = &["run_id", "run_name", "status", "user_id", "artifact_uri"];
const RUN_NUMERIC_ATTRS: &[&str] = &["start_time", "end_time"];
const EXP_STRING_ATTRS: &[&str] = &["name", "experiment_id"];
const EXP_NUMERIC_ATTRS: &[&str] = &["creation_time", "last_update_time"];
const LM_STRING_ATTRS: &[&str] = &["name", "model_id", "model_type", "status", "source_run_id"];
const LM_NUMERIC_ATTRS: &[&str] = &["creation_timestamp", "last_updated_timestamp"];
const RM_STRING_ATTRS: &[&str] = &["name"];
const RM_NUMERIC_ATTRS: &[&str] = &["last_updated_timestamp"];
const MV_STRING_ATTRS: &[&str] = &["name", "run_id", "source_path"];
const MV_NUMERIC_ATTRS: &[&str] = &[
    "version_number",
    "creation_timestamp",
    "last_updated_timestamp",
];
const DATASET_FIELDS: &[&str] = &["name", "digest", "context"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Metric,
    Param,
    Tag,
    Attribute,
    Dataset,
}

fn entity_kind(domain: Domain, entity: &str) -> Result<Kind> {
    let e = entity.to_ascii_lowercase();
    let kind = match e.as_str() {
        "" | "attribute" | "attributes" | "attr" => Some(Kind::Attribute),
        "run" if domain == Domain::Runs => Some(Kind::Attribute),
        "metric" | "metrics" if domain.has_run_data() => Some(Kind::Metric),
        "param" | "params" | "parameter" | "parameters" if domain.has_run_data() => {
            Some(Kind::Param)
        }
        "tag" | "tags" => Some(Kind::Tag),
        "dataset" | "datasets" if domain == Domain::Runs => Some(Kind::Dataset),
        _ => None,
    };
    kind.ok_or_else(|| {
        let valid = match domain {
            Domain::Runs => "['metric', 'parameter', 'tag', 'attribute', 'dataset']",
            Domain::Experiments | Domain::RegisteredModels | Domain::ModelVersions => {
                "['tag', 'attribute']"
            }
            Domain::LoggedModels => "['metric', 'parameter', 'tag', 'attribute']",
        };
        Error::invalid(format!(
            "Invalid entity type '{entity}'. Valid values are {valid}"
        ))
    })
}

fn canonical_attr(domain: Domain, key: &str) -> Result<(String, bool)> {
    let (strings, numbers) = match domain {
        Domain::Runs => (RUN_STRING_ATTRS, RUN_NUMERIC_ATTRS),
        Domain::Experiments => (EXP_STRING_ATTRS, EXP_NUMERIC_ATTRS),
        Domain::LoggedModels => (LM_STRING_ATTRS, LM_NUMERIC_ATTRS),
        Domain::RegisteredModels => (RM_STRING_ATTRS, RM_NUMERIC_ATTRS),
        Domain::ModelVersions => (MV_STRING_ATTRS, MV_NUMERIC_ATTRS),
    };
    let aliased = match (domain, key) {
        (Domain::Runs, "run name" | "Run name" | "Run Name") => "run_name",
        (Domain::Runs, "created" | "Created") => "start_time",
        (Domain::LoggedModels, "creation_time") => "creation_timestamp",
        (Domain::LoggedModels, "last_updated_time") => "last_updated_timestamp",
        (Domain::RegisteredModels, "timestamp") => "last_updated_timestamp",
        _ => key,
    };
    if strings.contains(&aliased) {
        Ok((aliased.to_string(), false))
    } else if numbers.contains(&aliased) {
        Ok((aliased.to_string(), true))
    } else {
        let mut all: Vec<&str> = strings.iter().chain(numbers.iter()).copied().collect();
        all.sort_unstable();
        Err(Error::invalid(format!(
            "Invalid attribute key '{key}' specified. Valid keys are '{all:?}'"
        )))
    }
}

fn bad_comparator(op: Op, what: &str, allowed: &[Op]) -> Error {
    let list: Vec<&str> = allowed.iter().map(|o| o.as_str()).collect();
    Error::invalid(format!(
        "Invalid comparator '{}' not one of '{list:?}' for {what}",
        op.as_str()
    ))
}

const NUMERIC_OPS: &[Op] = &[Op::Eq, Op::Ne, Op::Lt, Op::Le, Op::Gt, Op::Ge];
const STRING_OPS: &[Op] = &[Op::Eq, Op::Ne, Op::Like, Op::ILike];
const NULLABLE_STRING_OPS: &[Op] = &[
    Op::Eq,
    Op::Ne,
    Op::Like,
    Op::ILike,
    Op::IsNull,
    Op::IsNotNull,
];

fn expect_string(value: Value, what: &str) -> Result<Value> {
    match value {
        Value::Str(_) | Value::List(_) | Value::None => Ok(value),
        Value::Num(n) => Err(Error::invalid(format!(
            "Expected a quoted string value for {what} (e.g. 'my-value'). Got value {n}"
        ))),
    }
}

fn expect_number(value: Value, what: &str) -> Result<Value> {
    match value {
        Value::Num(_) => Ok(value),
        Value::Str(s) => match s.parse::<f64>() {
            Ok(n) if what != "metric" => Ok(Value::Num(n)),
            _ => Err(Error::invalid(format!(
                "Expected numeric value type for {what}. Found '{s}'"
            ))),
        },
        other => Err(Error::invalid(format!(
            "Expected numeric value type for {what}. Found {other:?}"
        ))),
    }
}

fn resolve(domain: Domain, ident: RawIdent, op: Op, value: Value) -> Result<Clause> {
    let kind = entity_kind(domain, &ident.entity)?;
    let key = ident.key;
    let (target, value) = match kind {
        Kind::Metric => {
            if !op.is_numeric() {
                if matches!(op, Op::IsNull | Op::IsNotNull) {
                    return Err(Error::invalid(format!(
                        "IS NULL / IS NOT NULL is only supported for tags and params, not for 'metric' '{key}'"
                    )));
                }
                return Err(bad_comparator(op, "metrics", NUMERIC_OPS));
            }
            (Target::Metric(key), expect_number(value, "metric")?)
        }
        Kind::Param | Kind::Tag => {
            let allowed = if domain == Domain::Runs || domain == Domain::Experiments {
                NULLABLE_STRING_OPS
            } else {
                STRING_OPS
            };
            let what = if kind == Kind::Param {
                "params"
            } else {
                "tags"
            };
            if !allowed.contains(&op) {
                return Err(bad_comparator(op, what, allowed));
            }
            let value = expect_string(
                value,
                if kind == Kind::Param {
                    "parameter"
                } else {
                    "tag"
                },
            )?;
            let target = if kind == Kind::Param {
                Target::Param(key)
            } else {
                Target::Tag(key)
            };
            (target, value)
        }
        Kind::Dataset => {
            if !DATASET_FIELDS.contains(&key.as_str()) {
                return Err(Error::invalid(format!(
                    "Invalid dataset key '{key}' specified. Valid keys are '{DATASET_FIELDS:?}'"
                )));
            }
            let allowed = [Op::Eq, Op::Ne, Op::Like, Op::ILike, Op::In, Op::NotIn];
            if !allowed.contains(&op) {
                return Err(bad_comparator(op, "datasets", &allowed));
            }
            (Target::Dataset(key), expect_string(value, "datasets")?)
        }
        Kind::Attribute => {
            let (attr, numeric) = canonical_attr(domain, &key)?;
            if numeric {
                if !op.is_numeric() {
                    return Err(bad_comparator(op, "numeric attributes", NUMERIC_OPS));
                }
                let value = expect_number(value, "numeric attribute")?;
                (Target::Attribute(attr), value)
            } else {
                let list_ok = matches!(
                    (domain, attr.as_str()),
                    (Domain::Runs, "run_id")
                        | (Domain::Experiments, "experiment_id")
                        | (Domain::LoggedModels, _)
                        | (Domain::RegisteredModels, "name")
                        | (Domain::ModelVersions, "name" | "run_id")
                );
                let mut allowed = vec![Op::Eq, Op::Ne, Op::Like, Op::ILike];
                if list_ok {
                    allowed.extend([Op::In, Op::NotIn]);
                }
                if domain == Domain::Experiments && attr == "experiment_id" {
                    allowed = vec![Op::Eq, Op::Ne, Op::In, Op::NotIn];
                }
                if !allowed.contains(&op) {
                    if matches!(op, Op::In | Op::NotIn) {
                        return Err(Error::invalid(
                            "Only ['run_id'] attributes support comparison with a list of quoted string values.",
                        ));
                    }
                    return Err(bad_comparator(op, "string attributes", &allowed));
                }
                let value = expect_string(value, "attributes")?;
                (Target::Attribute(attr), value)
            }
        }
    };
    Ok(Clause { target, op, value })
}

/// The most `AND`-joined clauses one filter may have. Each metric, param or tag clause joins a
/// table in the search query: SQLite refuses a join of more than 64 tables, and PostgreSQL's
/// planner time grows steeply with the join count, so a longer filter is a 400, not a 5xx.
pub const MAX_FILTER_CLAUSES: usize = 40;
/// The most `order_by` keys one search may have (each may join a table too).
pub const MAX_ORDER_BY_KEYS: usize = 10;
/// The most values all `IN (...)` lists of one filter may hold together (bound values: SQLite
/// takes at most 32,766 per statement, PostgreSQL 65,535).
pub const MAX_FILTER_LIST_VALUES: usize = 10_000;

/// Parses a filter string for `domain`; an empty or blank filter gives no clauses.
pub fn parse_filter(domain: Domain, filter: &str) -> Result<Vec<Clause>> {
    let raw = parse_raw(filter)?;
    if raw.len() > MAX_FILTER_CLAUSES {
        return Err(Error::invalid(format!(
            "Invalid filter: {} clauses given, at most {MAX_FILTER_CLAUSES} are allowed.",
            raw.len()
        )));
    }
    let listed: usize = raw
        .iter()
        .map(|(_, _, v)| match v {
            Value::List(items) => items.len(),
            _ => 0,
        })
        .sum();
    if listed > MAX_FILTER_LIST_VALUES {
        return Err(Error::invalid(format!(
            "Invalid filter: its IN lists hold {listed} values, at most {MAX_FILTER_LIST_VALUES} are allowed."
        )));
    }
    raw.into_iter()
        .map(|(ident, op, value)| resolve(domain, ident, op, value))
        .collect()
}

/// Parses `order_by` strings (`<identifier> [ASC|DESC]`) for `domain`.
pub fn parse_order_by(domain: Domain, order_by: &[String]) -> Result<Vec<OrderKey>> {
    if order_by.len() > MAX_ORDER_BY_KEYS {
        return Err(Error::invalid(format!(
            "Invalid order_by: {} keys given, at most {MAX_ORDER_BY_KEYS} are allowed.",
            order_by.len()
        )));
    }
    let mut keys: Vec<OrderKey> = Vec::new();
    for clause in order_by {
        let toks = lex(clause).map_err(|_| {
            Error::invalid(format!(
                "Invalid order_by clause '{clause}'. Could not be parsed."
            ))
        })?;
        let mut p = Parser {
            toks,
            pos: 0,
            input: clause,
        };
        let ident = p.ident().map_err(|_| {
            Error::invalid(format!(
                "Invalid order_by clause '{clause}'. Could not be parsed."
            ))
        })?;
        let ascending = match p.next() {
            None => true,
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("asc") => true,
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("desc") => false,
            Some(_) => {
                return Err(Error::invalid(format!(
                    "Invalid ordering key in order_by clause '{clause}'."
                )))
            }
        };
        if p.next().is_some() {
            return Err(Error::invalid(format!(
                "Invalid order_by clause '{clause}'. Could not be parsed."
            )));
        }
        let target = match entity_kind(domain, &ident.entity)? {
            Kind::Metric => Target::Metric(ident.key),
            Kind::Param => Target::Param(ident.key),
            Kind::Tag => Target::Tag(ident.key),
            Kind::Dataset => {
                return Err(Error::invalid(format!(
                    "Invalid order_by clause '{clause}'. Datasets cannot be ordered by."
                )))
            }
            Kind::Attribute => {
                let (attr, _) = canonical_attr(domain, &ident.key).map_err(|_| {
                    Error::invalid(format!(
                        "Invalid order_by clause '{clause}': unknown attribute '{}'",
                        ident.key
                    ))
                })?;
                Target::Attribute(attr)
            }
        };
        if keys.iter().any(|k| k.target == target) {
            return Err(Error::invalid(format!(
                "`order_by` contains duplicate fields: ['{clause}']"
            )));
        }
        keys.push(OrderKey { target, ascending });
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(domain: Domain, f: &str) -> Clause {
        let mut v = parse_filter(domain, f).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_eq!(v.len(), 1, "{f}");
        v.remove(0)
    }

    #[test]
    fn run_filters_parse() {
        let table: &[(&str, Target, Op, Value)] = &[
            (
                "metrics.acc > 0.5",
                Target::Metric("acc".into()),
                Op::Gt,
                Value::Num(0.5),
            ),
            (
                "metric.acc>=1e-3",
                Target::Metric("acc".into()),
                Op::Ge,
                Value::Num(1e-3),
            ),
            (
                "metrics.loss < -1",
                Target::Metric("loss".into()),
                Op::Lt,
                Value::Num(-1.0),
            ),
            (
                "params.lr = '0.1'",
                Target::Param("lr".into()),
                Op::Eq,
                Value::Str("0.1".into()),
            ),
            (
                "param.lr != \"x\"",
                Target::Param("lr".into()),
                Op::Ne,
                Value::Str("x".into()),
            ),
            (
                "tags.`my tag` LIKE 'a%'",
                Target::Tag("my tag".into()),
                Op::Like,
                Value::Str("a%".into()),
            ),
            (
                "tags.\"x.y\" ilike '%B'",
                Target::Tag("x.y".into()),
                Op::ILike,
                Value::Str("%B".into()),
            ),
            (
                "tags.x.y = 'v'",
                Target::Tag("x.y".into()),
                Op::Eq,
                Value::Str("v".into()),
            ),
            (
                "tags.t IS NULL",
                Target::Tag("t".into()),
                Op::IsNull,
                Value::None,
            ),
            (
                "params.p is not null",
                Target::Param("p".into()),
                Op::IsNotNull,
                Value::None,
            ),
            (
                "attributes.status = 'FINISHED'",
                Target::Attribute("status".into()),
                Op::Eq,
                Value::Str("FINISHED".into()),
            ),
            (
                "status != 'FAILED'",
                Target::Attribute("status".into()),
                Op::Ne,
                Value::Str("FAILED".into()),
            ),
            (
                "attribute.`Run name` = 'x'",
                Target::Attribute("run_name".into()),
                Op::Eq,
                Value::Str("x".into()),
            ),
            (
                "run_id IN ('a', 'b')",
                Target::Attribute("run_id".into()),
                Op::In,
                Value::List(vec!["a".into(), "b".into()]),
            ),
            (
                "attributes.run_id not in ('a')",
                Target::Attribute("run_id".into()),
                Op::NotIn,
                Value::List(vec!["a".into()]),
            ),
            (
                "attributes.created > 10",
                Target::Attribute("start_time".into()),
                Op::Gt,
                Value::Num(10.0),
            ),
            (
                "datasets.context = 'training'",
                Target::Dataset("context".into()),
                Op::Eq,
                Value::Str("training".into()),
            ),
            (
                "datasets.name IN ('a','b')",
                Target::Dataset("name".into()),
                Op::In,
                Value::List(vec!["a".into(), "b".into()]),
            ),
        ];
        for (f, target, op, value) in table {
            let c = one(Domain::Runs, f);
            assert_eq!((&c.target, c.op, &c.value), (target, *op, value), "{f}");
        }
    }

    #[test]
    fn and_joins_and_blank_is_empty() {
        assert!(parse_filter(Domain::Runs, "  ").unwrap().is_empty());
        let v = parse_filter(
            Domain::Runs,
            "metrics.a > 1 and params.b = 'x' AND tags.c != 'y'",
        )
        .unwrap();
        assert_eq!(v.len(), 3);
    }

    #[test]
    fn run_filter_errors_point_at_the_problem() {
        let table: &[(&str, &str)] = &[
            (
                "metrics.a > 1 OR metrics.b < 2",
                "Invalid clause(s) in filter string: 'OR'",
            ),
            ("foo.a = 'x'", "Invalid entity type 'foo'"),
            (
                "attributes.lifecycle_stage = 'active'",
                "Invalid attribute key 'lifecycle_stage'",
            ),
            (
                "metrics.a = 'x'",
                "Expected numeric value type for metric. Found 'x'",
            ),
            ("params.a = 1", "Expected a quoted string value"),
            (
                "metrics.a IS NULL",
                "IS NULL / IS NOT NULL is only supported for tags and params",
            ),
            (
                "status IN ('A')",
                "Only ['run_id'] attributes support comparison",
            ),
            ("metrics.a LIKE '1'", "Invalid comparator 'LIKE'"),
            ("params.a = 'unterminated", "unterminated quote"),
            ("metrics.a >> 1", "Invalid filter string"),
            ("metrics.a", "expected a comparator"),
            ("(metrics.a > 1)", "expected an identifier"),
        ];
        for (f, needle) in table {
            let e = parse_filter(Domain::Runs, f).expect_err(f);
            assert!(e.message.contains(needle), "{f}: {}", e.message);
        }
    }

    #[test]
    fn experiment_filters() {
        let c = one(Domain::Experiments, "name LIKE 'exp%'");
        assert_eq!(c.target, Target::Attribute("name".into()));
        let c = one(Domain::Experiments, "experiment_id IN ('1','2')");
        assert_eq!(c.op, Op::In);
        let c = one(Domain::Experiments, "creation_time > 5");
        assert_eq!(c.value, Value::Num(5.0));
        assert!(parse_filter(Domain::Experiments, "metrics.a > 1").is_err());
        assert!(parse_filter(Domain::Experiments, "tags.k IS NULL").is_ok());
    }

    #[test]
    fn order_by() {
        let keys = parse_order_by(
            Domain::Runs,
            &[
                "metrics.acc DESC".into(),
                "params.`a b`".into(),
                "start_time asc".into(),
            ],
        )
        .unwrap();
        assert_eq!(
            keys[0],
            OrderKey {
                target: Target::Metric("acc".into()),
                ascending: false
            }
        );
        assert_eq!(keys[1].target, Target::Param("a b".into()));
        assert!(keys[2].ascending);
        assert!(parse_order_by(Domain::Runs, &["metrics.a up".into()]).is_err());
        assert!(parse_order_by(Domain::Runs, &["metrics.a desc x".into()]).is_err());
        let e = parse_order_by(Domain::Runs, &["metrics.a".into(), "metrics.a desc".into()])
            .unwrap_err();
        assert!(e.message.contains("duplicate"));
    }

    /// Every answer to fuzzed input is a value or a client error (never a panic, never a 5xx).
    fn client_error_only<T>(r: Result<T>) {
        if let Err(e) = r {
            assert!(e.code.http_status() < 500, "{e:?}");
        }
    }

    const DOMAINS: [Domain; 5] = [
        Domain::Runs,
        Domain::Experiments,
        Domain::LoggedModels,
        Domain::RegisteredModels,
        Domain::ModelVersions,
    ];

    // Fuzz targets (`fuzz_` names): a few hundred cases in the test command, more by hand with
    // `PROPTEST_CASES=200000 cargo nextest run -E 'test(/fuzz_/)'`.
    proptest::proptest! {
        #[test]
        fn fuzz_filter_and_order_by_any_text(s in "\\PC{0,80}") {
            for domain in DOMAINS {
                client_error_only(parse_filter(domain, &s));
                client_error_only(parse_order_by(domain, std::slice::from_ref(&s)));
            }
        }

        #[test]
        fn fuzz_filter_and_order_by_grammar_like(
            parts in proptest::collection::vec(
                proptest::sample::select(vec![
                    "metrics.a", "params.`b c`", "tags.\"x\"", "attributes.run_id", "=", "!=", ">=",
                    "LIKE", "ilike", "IN", "NOT", "IS", "NULL", "AND", "OR", "(", ")", ",", "'v'",
                    "\"w\"", "1.5", "-2e3", "datasets.name", "`", "'", ".", "status", "name",
                    "tags.mlflow.prompt.is_prompt", "version_number", "run_id", "ASC", "DESC",
                    "1e400", "NaN", "-", "\u{0}", "\\", "%",
                ]),
                0..16,
            )
        ) {
            let s = parts.join(" ");
            for domain in DOMAINS {
                client_error_only(parse_filter(domain, &s));
                client_error_only(parse_order_by(domain, std::slice::from_ref(&s)));
                client_error_only(parse_order_by(domain, &parts.iter().map(|p| p.to_string()).collect::<Vec<_>>()));
            }
        }
    }

    #[test]
    fn filter_and_order_by_sizes_are_capped() {
        let clauses = |n: usize| {
            (0..n)
                .map(|i| format!("metrics.m{i} > 0"))
                .collect::<Vec<_>>()
                .join(" and ")
        };
        assert!(parse_filter(Domain::Runs, &clauses(MAX_FILTER_CLAUSES)).is_ok());
        for n in [MAX_FILTER_CLAUSES + 1, 10_000] {
            let e = parse_filter(Domain::Runs, &clauses(n)).expect_err("too many clauses");
            assert_eq!(e.code, crate::ErrorCode::InvalidParameterValue);
            assert!(e.message.contains("at most 40"), "{}", e.message);
        }
        let list = |n: usize| {
            let items: Vec<String> = (0..n).map(|i| format!("'{i}'")).collect();
            format!("attributes.run_id IN ({})", items.join(","))
        };
        assert!(parse_filter(Domain::Runs, &list(MAX_FILTER_LIST_VALUES)).is_ok());
        let e = parse_filter(Domain::Runs, &list(MAX_FILTER_LIST_VALUES + 1))
            .expect_err("too many list values");
        assert!(e.message.contains("IN lists"), "{}", e.message);
        let keys = |n: usize| (0..n).map(|i| format!("metrics.m{i}")).collect::<Vec<_>>();
        assert!(parse_order_by(Domain::Runs, &keys(MAX_ORDER_BY_KEYS)).is_ok());
        let e = parse_order_by(Domain::Runs, &keys(MAX_ORDER_BY_KEYS + 1)).expect_err("too many");
        assert!(e.message.contains("at most 10"), "{}", e.message);
    }

    #[test]
    fn trace_filters() {
        let f = parse_trace_filter(
            "trace.status = 'OK' AND timestamp > 5 AND tags.k LIKE 'a%' \
             AND metadata.mlflow.sourceRun = 'r' AND run_id IN ('a', 'b')",
        )
        .expect("parse");
        assert_eq!(f[0].target, TraceTarget::Attribute("status"));
        assert_eq!(f[1].target, TraceTarget::Attribute("timestamp_ms"));
        assert_eq!(f[2].target, TraceTarget::Tag("k".into()));
        assert_eq!(
            f[3].target,
            TraceTarget::Metadata("mlflow.sourceRun".into())
        );
        assert_eq!(f[4].op, Op::In);
        assert!(parse_trace_filter("").expect("empty").is_empty());
        let f = parse_trace_filter(
            "span.attributes.`mlflow.spanType` = 'LLM' AND feedback.`my score` >= 4 \
             AND text LIKE '%a%' AND span.status IN ('OK')",
        )
        .expect("spans and assessments");
        assert_eq!(
            f[0].target,
            TraceTarget::Span(SpanKey::Attribute("mlflow.spanType".into()))
        );
        assert_eq!(
            f[1].target,
            TraceTarget::Assessment {
                kind: AssessmentKind::Feedback,
                name: "my score".into()
            }
        );
        assert_eq!(f[2].target, TraceTarget::Span(SpanKey::Content));
        for bad in [
            "span.nope = 'x'",
            "span.attributes. = 'x'",
            "span.content = 'x'",
            "span.name > 'x'",
            "feedback.rating > 'x'",
            "feedback.rating IN ('a')",
            "issue.id = 'x'",
            "trace.nope = 'x'",
            "timestamp_ms LIKE 'x'",
            "status > 'OK'",
            "tags.k > 3",
            "trace.status = 'OK' OR trace.status = 'ERROR'",
            "status = 'OK'; DROP TABLE plumb_traces",
        ] {
            assert!(parse_trace_filter(bad).is_err(), "{bad}");
        }
        let o = parse_trace_order_by(&["timestamp_ms ASC".into(), "tags.k DESC".into()])
            .expect("order");
        assert!(o[0].ascending && !o[1].ascending);
        assert!(parse_trace_order_by(&["trace.status sideways".into()]).is_err());
        assert!(parse_trace_order_by(&["experiment_id".into()]).is_ok());
        assert!(parse_trace_order_by(&["span.name".into()]).is_err());
        assert_eq!(
            parse_metric_filter("trace.tag.`env.name` = 'prod'").expect("tag"),
            MetricFilter::TraceTag("env.name".into(), "prod".into())
        );
        assert_eq!(
            parse_metric_filter("span.type = 'LLM'").expect("span"),
            MetricFilter::SpanType("LLM".into())
        );
        for bad in [
            "trace.status = 'OK' AND span.name = 'x'",
            "trace.tag = 'x'",
            "trace.status.k = 'x'",
            "trace.nope = 'x'",
            "spans.name = 'x'",
            "span.name != 'x'",
            "span.name = 3",
            "name = 'x'",
        ] {
            assert!(parse_metric_filter(bad).is_err(), "{bad}");
        }
        assert!(parse_trace_order_by(&["feedback.rating".into()]).is_err());
        assert!(parse_trace_filter("experiment_id = '1'").is_err());
    }
}
