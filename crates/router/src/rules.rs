//! Routing rules (`router_settings.routing_rules`): what LiteLLM users write as Python
//! hooks (a pre-call hook that changes the model, a custom strategy that picks the
//! deployment), said in config instead, in a small expression language.
//!
//! ```yaml
//! routing_rules:
//!   - name: research-gets-opus
//!     when: 'request.headers["x-team"] == "research" && request.tokens > 2000'
//!     model: claude-opus            # send the request to this group instead
//!   - when: 'key.metadata.tier == "free"'
//!     prefer: '"cheap" in deployment.tags && deployment.latency_ms < 800'
//! ```
//!
//! Rules are tried in order. The first matching rule with `model` sends the request to
//! that group (the server applies it only when the key may use the group: a rule never
//! widens a key's access); the first matching rule with `prefer` orders the group's
//! deployments: those for which the expression holds are tried first, in the strategy's
//! order, the others after them (a preference never makes a group unavailable).
//!
//! The language: literals (`"text"`, `'text'`, numbers, `true`, `false`, `null`,
//! `["a", "b"]`), variables (below), `==` `!=` `<` `<=` `>` `>=`, `in` (an item of a list,
//! or a substring), `&&` `||` `!`, parentheses, and the methods `.contains(x)`,
//! `.startsWith(x)`, `.endsWith(x)`. A missing value is `null`; comparing values of
//! different types is false, never an error. Every variable name is checked when the
//! config loads, so a typo fails start-up instead of never matching.
//!
//! Variables of `when`: `request.model`, `request.tokens` (estimated prompt tokens),
//! `request.stream`, `request.user`, `request.tags`, `request.headers.<name>` (or
//! `request.headers["<name>"]`; names are case-insensitive), `request.metadata.<name>`,
//! `key.alias`, `key.user_id`, `key.team_id`, `key.is_admin`, `key.metadata.<name>`.
//! Variables of `prefer` (per deployment): `deployment.id`, `deployment.tags`,
//! `deployment.in_flight` (every replica), `deployment.latency_ms` (null until measured),
//! `deployment.requests_this_minute`, `deployment.tokens_this_minute`,
//! `deployment.cost_per_token`, `deployment.order`, `deployment.rpm`, `deployment.tpm`,
//! `deployment.max_input_tokens`.

use std::sync::Arc;

use serde_json::Value;

use crate::member::Member;

/// The facts about a request that `when` reads; the server implements it over the
/// headers, the body and the key.
pub trait RequestFacts {
    fn model(&self) -> &str;
    fn tokens(&self) -> u64;
    fn stream(&self) -> bool;
    fn user(&self) -> Option<&str>;
    fn tags(&self) -> &[String];
    /// A request header (name given lower-case).
    fn header(&self, name: &str) -> Option<&str>;
    /// A field of the body's `metadata`.
    fn metadata(&self, name: &str) -> Option<&Value>;
    fn key_alias(&self) -> Option<&str>;
    fn key_user_id(&self) -> Option<&str>;
    fn key_team_id(&self) -> Option<&str>;
    fn key_is_admin(&self) -> bool;
    fn key_metadata(&self, name: &str) -> Option<&Value>;
}

/// A rule that did not parse, with where.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("routing_rules[{index}]{}: {message}", if field.is_empty() { String::new() } else { format!(".{field}") })]
pub struct RuleError {
    pub index: usize,
    /// `when`, `model`, `prefer`, or empty for the rule as a whole.
    pub field: &'static str,
    pub message: String,
}

#[derive(Debug)]
pub struct Rule {
    pub name: String,
    when: Expr,
    pub action: Action,
}

#[derive(Debug, Clone)]
pub enum Action {
    /// Send the request to this group.
    Model(String),
    /// Try the deployments for which this holds first.
    Prefer(Prefer),
}

/// A deployment preference chosen for one request.
#[derive(Debug, Clone)]
pub struct Prefer(Arc<Expr>);

impl Prefer {
    pub(crate) fn holds<D>(&self, member: &Member<D>, minute: u64) -> bool {
        self.0.eval(&Scope::Deployment(member, minute)).truthy()
    }
}

#[derive(Debug, Default)]
pub struct Rules {
    rules: Vec<Rule>,
}

impl Rules {
    /// Reads `routing_rules` (a list of `{name?, when, model | prefer}`).
    pub fn parse(value: Option<&Value>) -> Result<Self, RuleError> {
        let Some(value) = value else {
            return Ok(Self::default());
        };
        let err = |index, field, message: String| RuleError {
            index,
            field,
            message,
        };
        let Some(items) = value.as_array() else {
            return Err(err(0, "", "must be a list of rules".into()));
        };
        let mut rules = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            let Some(map) = item.as_object() else {
                return Err(err(
                    index,
                    "",
                    "must be a map with `when` and `model` or `prefer`".into(),
                ));
            };
            for key in map.keys() {
                if !["name", "when", "model", "prefer"].contains(&key.as_str()) {
                    return Err(err(
                        index,
                        "",
                        format!("unknown field `{key}` (expected name, when, model, prefer)"),
                    ));
                }
            }
            let text = |field: &'static str| -> Result<Option<&str>, RuleError> {
                match map.get(field) {
                    None => Ok(None),
                    Some(Value::String(s)) => Ok(Some(s)),
                    Some(Value::Bool(true)) if field == "when" => Ok(Some("true")),
                    Some(_) => Err(err(index, field, "must be a string".into())),
                }
            };
            let when = Expr::parse(text("when")?.unwrap_or("true"), Context::Request)
                .map_err(|m| err(index, "when", m))?;
            let action = match (text("model")?, text("prefer")?) {
                (Some(model), None) => Action::Model(model.to_owned()),
                (None, Some(prefer)) => Action::Prefer(Prefer(Arc::new(
                    Expr::parse(prefer, Context::Deployment)
                        .map_err(|m| err(index, "prefer", m))?,
                ))),
                _ => {
                    return Err(err(
                        index,
                        "",
                        "needs exactly one of `model` or `prefer`".into(),
                    ));
                }
            };
            let name = text("name")?
                .map(str::to_owned)
                .unwrap_or_else(|| format!("rule {index}"));
            rules.push(Rule { name, when, action });
        }
        Ok(Self { rules })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter()
    }

    /// The groups `model` rules send to (checked against `model_list` at start-up).
    pub fn targets(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().filter_map(|r| match &r.action {
            Action::Model(m) => Some(m.as_str()),
            Action::Prefer(_) => None,
        })
    }

    /// The first matching `prefer` rule's preference.
    pub fn preference(&self, facts: &dyn RequestFacts) -> Option<Prefer> {
        self.rules.iter().find_map(|r| match &r.action {
            Action::Prefer(p) if r.matches(facts) => Some(p.clone()),
            _ => None,
        })
    }
}

impl Rule {
    pub fn matches(&self, facts: &dyn RequestFacts) -> bool {
        self.when.eval(&Scope::<()>::Request(facts)).truthy()
    }
}

// ---------------------------------------------------------------------------------------
// Expressions
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq)]
enum Context {
    Request,
    Deployment,
}

#[derive(Debug, Clone, PartialEq)]
enum Var {
    Model,
    Tokens,
    Stream,
    User,
    Tags,
    Header(String),
    Metadata(String),
    KeyAlias,
    KeyUserId,
    KeyTeamId,
    KeyIsAdmin,
    KeyMetadata(String),
    DeploymentId,
    DeploymentTags,
    InFlight,
    LatencyMs,
    RequestsThisMinute,
    TokensThisMinute,
    CostPerToken,
    Order,
    Rpm,
    Tpm,
    MaxInputTokens,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    And,
    Or,
    Contains,
    StartsWith,
    EndsWith,
}

#[derive(Debug)]
enum Expr {
    Lit(Lit),
    List(Vec<Expr>),
    Var(Var),
    Not(Box<Expr>),
    Bin(Op, Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone, PartialEq)]
enum Lit {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
}

/// A value during evaluation, borrowed where it can be.
#[derive(Debug, Clone, PartialEq)]
enum Val<'a> {
    Null,
    Bool(bool),
    Num(f64),
    Str(&'a str),
    List(Vec<Val<'a>>),
}

impl<'a> Val<'a> {
    fn truthy(&self) -> bool {
        matches!(self, Val::Bool(true))
    }

    fn from_json(v: Option<&'a Value>) -> Self {
        match v {
            None | Some(Value::Null) => Val::Null,
            Some(Value::Bool(b)) => Val::Bool(*b),
            Some(Value::Number(n)) => n.as_f64().map_or(Val::Null, Val::Num),
            Some(Value::String(s)) => Val::Str(s),
            Some(Value::Array(items)) => {
                Val::List(items.iter().map(|i| Val::from_json(Some(i))).collect())
            }
            Some(Value::Object(_)) => Val::Null,
        }
    }

    fn opt_str(s: Option<&'a str>) -> Self {
        s.map_or(Val::Null, Val::Str)
    }

    fn opt_num(n: Option<f64>) -> Self {
        n.map_or(Val::Null, Val::Num)
    }

    fn strs(items: &'a [String]) -> Self {
        Val::List(items.iter().map(|s| Val::Str(s)).collect())
    }
}

enum Scope<'a, D> {
    Request(&'a dyn RequestFacts),
    Deployment(&'a Member<D>, u64),
}

impl Expr {
    fn parse(text: &str, context: Context) -> Result<Self, String> {
        let tokens = lex(text)?;
        let mut p = Parser {
            tokens,
            pos: 0,
            context,
            depth: 0,
        };
        let expr = p.or()?;
        match p.tokens.get(p.pos) {
            None => Ok(expr),
            Some(t) => Err(format!("unexpected {t:?} at token {}", p.pos + 1)),
        }
    }

    fn eval<'a, D>(&'a self, scope: &Scope<'a, D>) -> Val<'a> {
        match self {
            Expr::Lit(Lit::Null) => Val::Null,
            Expr::Lit(Lit::Bool(b)) => Val::Bool(*b),
            Expr::Lit(Lit::Num(n)) => Val::Num(*n),
            Expr::Lit(Lit::Str(s)) => Val::Str(s),
            Expr::List(items) => Val::List(items.iter().map(|i| i.eval(scope)).collect()),
            Expr::Var(var) => lookup(var, scope),
            Expr::Not(e) => Val::Bool(!e.eval(scope).truthy()),
            Expr::Bin(Op::And, a, b) => Val::Bool(a.eval(scope).truthy() && b.eval(scope).truthy()),
            Expr::Bin(Op::Or, a, b) => Val::Bool(a.eval(scope).truthy() || b.eval(scope).truthy()),
            Expr::Bin(op, a, b) => Val::Bool(compare(*op, &a.eval(scope), &b.eval(scope))),
        }
    }
}

fn lookup<'a, D>(var: &'a Var, scope: &Scope<'a, D>) -> Val<'a> {
    match scope {
        Scope::Request(f) => match var {
            Var::Model => Val::Str(f.model()),
            Var::Tokens => Val::Num(f.tokens() as f64),
            Var::Stream => Val::Bool(f.stream()),
            Var::User => Val::opt_str(f.user()),
            Var::Tags => Val::strs(f.tags()),
            Var::Header(name) => Val::opt_str(f.header(name)),
            Var::Metadata(name) => Val::from_json(f.metadata(name)),
            Var::KeyAlias => Val::opt_str(f.key_alias()),
            Var::KeyUserId => Val::opt_str(f.key_user_id()),
            Var::KeyTeamId => Val::opt_str(f.key_team_id()),
            Var::KeyIsAdmin => Val::Bool(f.key_is_admin()),
            Var::KeyMetadata(name) => Val::from_json(f.key_metadata(name)),
            _ => Val::Null,
        },
        Scope::Deployment(m, minute) => {
            let (spec, stats) = (m.spec(), m.stats());
            match var {
                Var::DeploymentId => Val::Str(m.id()),
                Var::DeploymentTags => Val::strs(&spec.tags),
                Var::InFlight => Val::Num(stats.in_flight_everywhere() as f64),
                Var::LatencyMs => Val::opt_num(stats.latency().map(|l| l.as_secs_f64() * 1e3)),
                Var::RequestsThisMinute => Val::Num(stats.usage(*minute).0 as f64),
                Var::TokensThisMinute => Val::Num(stats.usage(*minute).1 as f64),
                Var::CostPerToken => Val::opt_num(spec.cost_per_token),
                Var::Order => Val::opt_num(spec.order.map(f64::from)),
                Var::Rpm => Val::opt_num(spec.rpm.map(|n| n as f64)),
                Var::Tpm => Val::opt_num(spec.tpm.map(|n| n as f64)),
                Var::MaxInputTokens => Val::opt_num(spec.max_input_tokens.map(|n| n as f64)),
                _ => Val::Null,
            }
        }
    }
}

fn compare(op: Op, a: &Val<'_>, b: &Val<'_>) -> bool {
    match op {
        Op::Eq => a == b,
        Op::Ne => a != b,
        Op::Lt | Op::Le | Op::Gt | Op::Ge => {
            let ordering = match (a, b) {
                (Val::Num(x), Val::Num(y)) => x.partial_cmp(y),
                (Val::Str(x), Val::Str(y)) => Some(x.cmp(y)),
                _ => None,
            };
            ordering.is_some_and(|o| match op {
                Op::Lt => o.is_lt(),
                Op::Le => o.is_le(),
                Op::Gt => o.is_gt(),
                _ => o.is_ge(),
            })
        }
        Op::In => compare(Op::Contains, b, a),
        Op::Contains => match (a, b) {
            (Val::List(items), needle) => items.contains(needle),
            (Val::Str(s), Val::Str(needle)) => s.contains(needle),
            _ => false,
        },
        Op::StartsWith => matches!((a, b), (Val::Str(s), Val::Str(p)) if s.starts_with(p)),
        Op::EndsWith => matches!((a, b), (Val::Str(s), Val::Str(p)) if s.ends_with(p)),
        Op::And | Op::Or => false,
    }
}

// ---------------------------------------------------------------------------------------
// Lexer and parser
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(f64),
    Sym(&'static str),
}

/// Expressions longer than this are refused: a rule is a line of config, not a program.
const MAX_LEN: usize = 4096;

fn lex(text: &str) -> Result<Vec<Tok>, String> {
    if text.len() > MAX_LEN {
        return Err(format!("longer than {MAX_LEN} characters"));
    }
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '"' || c == '\'' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err("unterminated string".into()),
                    Some(&q) if q == c => break,
                    Some('\\') => {
                        i += 1;
                        match chars.get(i) {
                            Some(&e) => s.push(e),
                            None => return Err("unterminated string".into()),
                        }
                    }
                    Some(&ch) => s.push(ch),
                }
                i += 1;
            }
            i += 1;
            out.push(Tok::Str(s));
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let s: String = chars[start..i].iter().collect();
            out.push(Tok::Num(s.parse().map_err(|_| format!("bad number {s}"))?));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '-')
            {
                i += 1;
            }
            out.push(Tok::Ident(chars[start..i].iter().collect()));
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let sym = ["==", "!=", "<=", ">=", "&&", "||"]
                .into_iter()
                .find(|s| *s == two);
            if let Some(sym) = sym {
                out.push(Tok::Sym(sym));
                i += 2;
            } else {
                let one = ["<", ">", "!", "(", ")", "[", "]", ",", "."]
                    .into_iter()
                    .find(|s| s.starts_with(c))
                    .ok_or_else(|| format!("unexpected character '{c}'"))?;
                out.push(Tok::Sym(one));
                i += 1;
            }
        }
    }
    Ok(out)
}

/// Nesting deeper than this is refused (the parser recurses).
const MAX_DEPTH: usize = 64;

struct Parser {
    tokens: Vec<Tok>,
    pos: usize,
    context: Context,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos)
    }

    fn eat(&mut self, sym: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Sym(s)) if *s == sym) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, sym: &str) -> Result<(), String> {
        if self.eat(sym) {
            Ok(())
        } else {
            Err(format!("expected '{sym}', found {:?}", self.peek()))
        }
    }

    /// Runs `f` one nesting level deeper, refusing past [`MAX_DEPTH`].
    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, String>) -> Result<T, String> {
        if self.depth >= MAX_DEPTH {
            return Err(format!("nested deeper than {MAX_DEPTH}"));
        }
        self.depth += 1;
        let out = f(self);
        self.depth -= 1;
        out
    }

    fn or(&mut self) -> Result<Expr, String> {
        self.nested(|p| {
            let mut left = p.and()?;
            while p.eat("||") {
                left = Expr::Bin(Op::Or, Box::new(left), Box::new(p.and()?));
            }
            Ok(left)
        })
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.not()?;
        while self.eat("&&") {
            left = Expr::Bin(Op::And, Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Expr, String> {
        if self.eat("!") {
            return self.nested(|p| Ok(Expr::Not(Box::new(p.not()?))));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, String> {
        let left = self.postfix()?;
        let op = match self.peek() {
            Some(Tok::Sym("==")) => Op::Eq,
            Some(Tok::Sym("!=")) => Op::Ne,
            Some(Tok::Sym("<")) => Op::Lt,
            Some(Tok::Sym("<=")) => Op::Le,
            Some(Tok::Sym(">")) => Op::Gt,
            Some(Tok::Sym(">=")) => Op::Ge,
            Some(Tok::Ident(w)) if w == "in" => Op::In,
            Some(Tok::Ident(w)) if w == "contains" => Op::Contains,
            _ => return Ok(left),
        };
        self.pos += 1;
        let right = self.postfix()?;
        Ok(Expr::Bin(op, Box::new(left), Box::new(right)))
    }

    /// A primary followed by method calls: `x.startsWith("a")`.
    fn postfix(&mut self) -> Result<Expr, String> {
        let mut expr = self.primary()?;
        while self.eat(".") {
            let method = match self.peek() {
                Some(Tok::Ident(m)) => m.clone(),
                other => return Err(format!("expected a method after '.', found {other:?}")),
            };
            self.pos += 1;
            let op = match method.as_str() {
                "contains" => Op::Contains,
                "startsWith" => Op::StartsWith,
                "endsWith" => Op::EndsWith,
                _ => {
                    return Err(format!(
                        "unknown method '{method}' (contains, startsWith, endsWith)"
                    ));
                }
            };
            self.expect("(")?;
            let arg = self.or()?;
            self.expect(")")?;
            expr = Expr::Bin(op, Box::new(expr), Box::new(arg));
        }
        Ok(expr)
    }

    fn primary(&mut self) -> Result<Expr, String> {
        let Some(tok) = self.peek().cloned() else {
            return Err("unexpected end of expression".into());
        };
        self.pos += 1;
        match tok {
            Tok::Str(s) => Ok(Expr::Lit(Lit::Str(s))),
            Tok::Num(n) => Ok(Expr::Lit(Lit::Num(n))),
            Tok::Sym("(") => {
                let e = self.or()?;
                self.expect(")")?;
                Ok(e)
            }
            Tok::Sym("[") => {
                let mut items = Vec::new();
                if !self.eat("]") {
                    loop {
                        items.push(self.or()?);
                        if self.eat("]") {
                            break;
                        }
                        self.expect(",")?;
                    }
                }
                Ok(Expr::List(items))
            }
            Tok::Ident(word) => match word.as_str() {
                "true" => Ok(Expr::Lit(Lit::Bool(true))),
                "false" => Ok(Expr::Lit(Lit::Bool(false))),
                "null" => Ok(Expr::Lit(Lit::Null)),
                _ => self.variable(word),
            },
            Tok::Sym(s) => Err(format!("unexpected '{s}'")),
        }
    }

    /// `root.field`, `root.map.name` or `root.map["name"]`, resolved now.
    fn variable(&mut self, root: String) -> Result<Expr, String> {
        let mut path = vec![root];
        loop {
            // `.ident` not followed by `(` is a path segment; `.method(` ends the path.
            let is_segment = matches!(self.peek(), Some(Tok::Sym(".")))
                && matches!(self.tokens.get(self.pos + 1), Some(Tok::Ident(_)))
                && !matches!(self.tokens.get(self.pos + 2), Some(Tok::Sym("(")));
            if is_segment {
                if let Some(Tok::Ident(seg)) = self.tokens.get(self.pos + 1).cloned() {
                    path.push(seg);
                }
                self.pos += 2;
            } else if self.eat("[") {
                match self.peek().cloned() {
                    Some(Tok::Str(seg)) => path.push(seg),
                    other => {
                        return Err(format!("expected a quoted name in [...], found {other:?}"));
                    }
                }
                self.pos += 1;
                self.expect("]")?;
            } else {
                break;
            }
        }
        resolve(&path, self.context).map(Expr::Var)
    }
}

fn resolve(path: &[String], context: Context) -> Result<Var, String> {
    let parts: Vec<&str> = path.iter().map(String::as_str).collect();
    let var = match (context, parts.as_slice()) {
        (Context::Request, ["request", "model"]) => Var::Model,
        (Context::Request, ["request", "tokens"]) => Var::Tokens,
        (Context::Request, ["request", "stream"]) => Var::Stream,
        (Context::Request, ["request", "user"]) => Var::User,
        (Context::Request, ["request", "tags"]) => Var::Tags,
        (Context::Request, ["request", "headers", name]) => Var::Header(name.to_ascii_lowercase()),
        (Context::Request, ["request", "metadata", name]) => Var::Metadata((*name).to_owned()),
        (Context::Request, ["key", "alias"]) => Var::KeyAlias,
        (Context::Request, ["key", "user_id"]) => Var::KeyUserId,
        (Context::Request, ["key", "team_id"]) => Var::KeyTeamId,
        (Context::Request, ["key", "is_admin"]) => Var::KeyIsAdmin,
        (Context::Request, ["key", "metadata", name]) => Var::KeyMetadata((*name).to_owned()),
        (Context::Deployment, ["deployment", "id"]) => Var::DeploymentId,
        (Context::Deployment, ["deployment", "tags"]) => Var::DeploymentTags,
        (Context::Deployment, ["deployment", "in_flight"]) => Var::InFlight,
        (Context::Deployment, ["deployment", "latency_ms"]) => Var::LatencyMs,
        (Context::Deployment, ["deployment", "requests_this_minute"]) => Var::RequestsThisMinute,
        (Context::Deployment, ["deployment", "tokens_this_minute"]) => Var::TokensThisMinute,
        (Context::Deployment, ["deployment", "cost_per_token"]) => Var::CostPerToken,
        (Context::Deployment, ["deployment", "order"]) => Var::Order,
        (Context::Deployment, ["deployment", "rpm"]) => Var::Rpm,
        (Context::Deployment, ["deployment", "tpm"]) => Var::Tpm,
        (Context::Deployment, ["deployment", "max_input_tokens"]) => Var::MaxInputTokens,
        _ => {
            let scope = match context {
                Context::Request => "`when` reads request.* and key.*",
                Context::Deployment => "`prefer` reads deployment.*",
            };
            return Err(format!(
                "unknown variable '{}' ({scope}; see docs/configuration.md)",
                path.join(".")
            ));
        }
    };
    Ok(var)
}
