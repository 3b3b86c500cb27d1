//! The resolved program: names replaced by ids, literals folded, every rule knowing its
//! score, kind and source. Built by `resolve`, read by `analysis` and `lower`.

use leadscore_dsl::Span;
use leadscore_runtime::bytecode::{ChannelDef, Cmp, Func, GradeId, NotifyDef, ScoreId};

/// Index into `Ir::sets`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SetRef(pub usize);

#[derive(Debug, Default)]
pub struct Ir {
    pub name: String,
    pub sets: Vec<Set>,
    pub scores: Vec<Score>,
    /// Every rule, in source order.
    pub rules: Vec<Rule>,
    pub grades: Vec<Grade>,
    pub tags: Vec<Tag>,
    /// Already in the bytecode's terms: nothing in them needs lowering.
    pub channels: Vec<ChannelDef>,
    pub notifies: Vec<NotifyDef>,
    /// `field NAME protected`: attributes only signed senders may set, sorted.
    pub protected: Vec<String>,
    /// What the rules read from events (not lowered: for `check --events`).
    pub reads: crate::Reads,
    pub total: Option<Total>,
    pub assigns: Vec<Assign>,
    /// `recycle after D without followup`, in seconds.
    pub recycle: Option<u32>,
    pub overdue_tags: Vec<leadscore_runtime::bytecode::OverdueTag>,
    pub plans: Vec<leadscore_runtime::bytecode::PlanDef>,
}

/// `assign …`: its condition is still to be lowered.
#[derive(Debug, Clone)]
pub struct Assign {
    pub grades: Vec<GradeId>,
    pub cond: Option<Cond>,
    pub to: leadscore_runtime::bytecode::AssignTo,
    pub within: Option<u32>,
    pub plan: Option<u32>,
    pub line: u32,
    pub text: String,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct Set {
    pub name: Option<String>,
    /// Folded, sorted, unique.
    pub items: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Score {
    pub name: String,
    pub range: Option<(i64, i64)>,
    pub line: u32,
    pub span: Span,
    /// `apart`: left out of the lead's `score`.
    pub apart: bool,
    /// `decay P% every D`: (P, seconds).
    pub decay: Option<(u8, u32)>,
}

/// `total = …`: the lead's `score`.
#[derive(Debug, Clone)]
pub struct Total {
    pub terms: Vec<(ScoreId, bool)>,
    pub range: Option<(i64, i64)>,
    pub line: u32,
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub kind: RuleKind,
    pub score: ScoreId,
    pub points: Points,
    pub line: u32,
    /// The rule as written, on one line.
    pub text: String,
    /// The `if` guards around it, as written (part of its identity).
    pub guards: Vec<String>,
    /// `ask "TEXT"`.
    pub ask: Option<String>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum RuleKind {
    /// Holds while `cond` holds on the current attributes.
    Field { cond: Cond },
    /// Fires on events of a type; `cond` (guards and `where`) is tested at the event.
    Event {
        event_type: String,
        cond: Option<Cond>,
        each: bool,
        expires: Option<u32>,
        window: Option<(u32, u32)>,
        /// `within D of TYPE [where …]`.
        prior: Option<Prior>,
        /// `up to N per D`: (N, seconds).
        per: Option<(u32, u32)>,
        /// `distinct PROP`.
        distinct: Option<String>,
        /// `reset SCORE` (the rule's score): no points of its own.
        reset: bool,
        /// `decay P% every D` (the rule's own, or its score's): (P, seconds).
        decay: Option<(u8, u32)>,
    },
    /// `after inactive for D … [every E]`: awards made by time, kept.
    Time { delay: u32, every: Option<u32> },
}

/// `within D of TYPE [where COND]`.
#[derive(Debug, Clone)]
pub struct Prior {
    /// Folded.
    pub event_type: String,
    pub cond: Option<Cond>,
    pub seconds: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Amount {
    Const(u32),
    /// A lead attribute's integer value.
    Attr(String),
    /// The event property's integer value.
    Prop(String),
}

#[derive(Debug, Clone)]
pub struct Points {
    pub negative: bool,
    pub amount: Amount,
    pub max: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct Grade {
    pub name: String,
    pub cond: Option<Cond>,
    /// Hysteresis: the lead leaves this grade only when this holds.
    pub until: Option<Cond>,
    pub line: u32,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct Tag {
    pub name: String,
    pub cond: Cond,
    pub line: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
    Inactive(u32),
    GradeIs(GradeId),
    Const(bool),
    Test(Expr, Test),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    IsSet,
    IsNotSet,
    In(SetRef),
    NotIn(SetRef),
    Contains(String),
    ContainsWord(String),
    ContainsAny(SetRef),
    ContainsAnyWord(SetRef),
    Cmp(Cmp, Expr),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Attr(String),
    Prop(String),
    Num(f64),
    /// Folded text.
    Str(String),
    Bool(bool),
    Score(ScoreId),
    Total,
    Call(Func, Box<Expr>),
    Add(Box<Expr>, Box<Expr>),
    Sub(Box<Expr>, Box<Expr>),
}

/// What a value is known to be at compile time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Num,
    Text,
    Bool,
    /// An attribute or property: known only at run time.
    Any,
}

impl Expr {
    pub fn ty(&self) -> Ty {
        match self {
            Expr::Attr(_) | Expr::Prop(_) => Ty::Any,
            Expr::Num(_) | Expr::Score(_) | Expr::Total | Expr::Add(..) | Expr::Sub(..) => Ty::Num,
            Expr::Str(_) => Ty::Text,
            Expr::Bool(_) => Ty::Bool,
            Expr::Call(Func::Domain, _) => Ty::Text,
            Expr::Call(_, _) => Ty::Num,
        }
    }

    /// Whether the value depends only on literals.
    pub fn is_literal(&self) -> bool {
        matches!(self, Expr::Num(_) | Expr::Str(_) | Expr::Bool(_))
    }
}
