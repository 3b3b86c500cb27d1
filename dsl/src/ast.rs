//! The surface syntax tree: what the marketer wrote, with a span on every node a
//! diagnostic can blame. Names are unresolved here; `leadscore-compiler` resolves them.

use crate::span::Span;

#[derive(Clone, Debug, PartialEq)]
pub struct File {
    pub items: Vec<Item>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Ruleset(RulesetDecl),
    Set(SetDecl),
    Score(ScoreDecl),
    Total(TotalDecl),
    Rule(Rule),
    If(IfBlock),
    Grade(GradeDecl),
    Tag(TagDecl),
    Channel(ChannelDecl),
    Notify(NotifyDecl),
    Field(FieldDecl),
    Assign(AssignDecl),
    Recycle(RecycleDecl),
    Plan(PlanDecl),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct StringLit {
    pub value: String,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ListLit {
    pub items: Vec<StringLit>,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Int {
    pub value: i64,
    pub span: Span,
}

/// A duration such as `30d`, kept in seconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Duration {
    pub seconds: i64,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RulesetDecl {
    pub name: StringLit,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SetDecl {
    pub name: Ident,
    pub items: ListLit,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ScoreDecl {
    pub name: Ident,
    pub range: Option<Range>,
    /// `apart`: not part of the lead's `score`.
    pub apart: bool,
    /// `decay P% every D`: the score's event awards decay.
    pub decay: Option<Decay>,
    pub span: Span,
}

/// `decay P% every D`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Decay {
    pub percent: Int,
    pub every: Duration,
    pub span: Span,
}

/// `total = a + b - c [range LO..HI]`.
#[derive(Clone, Debug, PartialEq)]
pub struct TotalDecl {
    /// Each score named, `true` where it is subtracted.
    pub terms: Vec<(bool, Ident)>,
    pub range: Option<Range>,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Range {
    pub lo: Int,
    pub hi: Int,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct GradeDecl {
    pub name: Ident,
    /// `None` for `otherwise`.
    pub cond: Option<Cond>,
    /// `until COND`: once in this grade, the lead stays in it until COND holds.
    pub until: Option<Cond>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TagDecl {
    pub name: Ident,
    pub cond: TagCond,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TagCond {
    Cond(Cond),
    /// `followup overdue`: the lead's follow-up deadline passed with no follow-up.
    Overdue(Span),
}

/// `assign WHEN to (team T [round robin | by FIELD] | pool) [within D]` (docs/desk.md).
#[derive(Clone, Debug, PartialEq)]
pub struct AssignDecl {
    /// `otherwise` when both are empty and `otherwise` is set.
    pub otherwise: bool,
    /// `grade A[, B…]`: the grades the line is for (empty: any).
    pub grades: Vec<Ident>,
    pub cond: Option<Cond>,
    pub to: AssignTo,
    /// `within D`: the follow-up deadline set at assignment.
    pub within: Option<Duration>,
    /// `plan NAME`: the follow-up plan the owner works through.
    pub plan: Option<Ident>,
    pub span: Span,
}

/// `plan NAME = [KIND at D, …]`.
#[derive(Clone, Debug, PartialEq)]
pub struct PlanDecl {
    pub name: Ident,
    pub steps: Vec<(Ident, Duration)>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum AssignTo {
    /// The unowned leads.
    Pool(Span),
    /// `company owner`: whoever owns the company's other leads.
    CompanyOwner(Span),
    Team {
        team: Ident,
        how: AssignHow,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub enum AssignHow {
    /// The first member with room, in the order the configuration lists them.
    InOrder,
    /// The next member after the team's last assignment (the cursor is stored).
    RoundRobin(Span),
    /// The member whose regions hold the value of this attribute.
    By(Path),
}

/// `recycle after D without followup`.
#[derive(Clone, Debug, PartialEq)]
pub struct RecycleDecl {
    pub after: Duration,
    pub span: Span,
}

/// `field NAME[, NAME…] protected`: attributes only signed senders may set.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldDecl {
    pub names: Vec<Ident>,
    pub span: Span,
}

/// `channel NAME = KIND TARGET [signed "SECRET"]`: where notifications go.
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelDecl {
    pub name: Ident,
    /// `webhook`, `slack`, `feishu` (or `lark`), `dingtalk`, `wecom`, `http`.
    pub kind: Ident,
    pub target: ChannelTarget,
    /// `signed "NAME"`: the secret that signs each message.
    pub signed: Option<StringLit>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ChannelTarget {
    /// A URL (or, for `http`, the name of a request template) written in the rules.
    Literal(StringLit),
    /// `secret "NAME"`: a URL kept with the secrets, not in the rules.
    Secret(StringLit),
}

/// `notify CHANNEL when TRIGGER`.
#[derive(Clone, Debug, PartialEq)]
pub struct NotifyDecl {
    pub channel: Ident,
    pub trigger: NotifyTrigger,
    /// `once`: at most once per lead, ever.
    pub once: Option<Span>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum NotifyTrigger {
    /// `grade becomes G`
    Becomes(Ident),
    /// `grade leaves G`
    Leaves(Ident),
    /// `grade changes`
    Changes(Span),
    /// `SCORE crosses N`: the score (or `score`, the total) goes from below N to N or more.
    Crosses { score: Ident, threshold: Int },
    /// `owner changes`: the lead was assigned, recycled or moved to the pool.
    OwnerChanges(Span),
    /// `followup overdue`: a follow-up deadline passed with no follow-up.
    FollowupOverdue(Span),
    /// `task due`: a step of a follow-up plan came due.
    TaskDue(Span),
}

/// `if COND { rules }`: field rules inside test COND on the current attributes, event rules
/// on the lead as it was when the event happened.
#[derive(Clone, Debug, PartialEq)]
pub struct IfBlock {
    pub cond: Cond,
    pub body: Vec<Item>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub trigger: Trigger,
    pub effect: Effect,
    /// `ask "TEXT"`: listed under the lead's open questions while the rule gives nothing.
    pub ask: Option<StringLit>,
    pub span: Span,
}

/// What a rule does when it holds.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// `add …` / `subtract …`.
    Award(Box<Action>),
    /// `reset SCORE`: the score's event awards made so far stop counting.
    Reset(Ident, Span),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Trigger {
    /// Tested against the lead's current attributes.
    Field(Cond),
    /// Fires on events of a type.
    Event(EventTrigger),
    /// `after inactive for D`: awards made by time, kept.
    After(Duration),
}

#[derive(Clone, Debug, PartialEq)]
pub struct EventTrigger {
    /// The dotted event type, e.g. `email.opened`.
    pub event_type: Ident,
    /// `where COND` over the event's props (`lead.NAME` reaches attributes).
    pub filter: Option<Cond>,
    pub window: Option<Window>,
    /// `within D of TYPE [where …]`.
    pub prior: Option<Box<Prior>>,
}

/// `within D of TYPE [where COND]`: the rule fires only if an event of `TYPE` (matching
/// `COND`) happened in `[at − D, at]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Prior {
    pub within: Duration,
    pub event_type: Ident,
    pub filter: Option<Cond>,
    pub span: Span,
}

/// `up to N per D`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PerCap {
    pub points: Int,
    pub period: Duration,
    pub span: Span,
}

/// `count >= N [within D]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Window {
    pub count: Int,
    /// `None`: a lifetime count (every matching event counts).
    pub within: Option<Duration>,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    Add,
    Subtract,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Action {
    pub verb: Verb,
    pub verb_span: Span,
    pub points: Points,
    /// The span of `each`, when present.
    pub each: Option<Span>,
    pub max: Option<Int>,
    pub expires: Option<Duration>,
    /// `up to N per D`.
    pub per: Option<PerCap>,
    /// `distinct PROP`.
    pub distinct: Option<Path>,
    /// `every E` (time awards: again every E of a spell).
    pub every: Option<Duration>,
    /// `decay P% every D` on this rule (overriding its score's).
    pub decay: Option<Decay>,
    /// `to NAME` / `from NAME`.
    pub target: Option<Ident>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Points {
    Const(Int),
    Field(Path),
}

/// A possibly dotted name: `country`, `lead.country`, `page`.
#[derive(Clone, Debug, PartialEq)]
pub struct Path {
    pub segments: Vec<Ident>,
    pub span: Span,
}

impl Path {
    /// The dotted text of the path.
    pub fn dotted(&self) -> String {
        let names: Vec<&str> = self.segments.iter().map(|s| s.name.as_str()).collect();
        names.join(".")
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Cond {
    Or(Vec<Cond>, Span),
    And(Vec<Cond>, Span),
    Not(Box<Cond>, Span),
    /// `inactive for D`.
    Inactive(Duration, Span),
    /// `true` or `false` alone.
    Const(bool, Span),
    Test(Box<Test>),
}

impl Cond {
    pub fn span(&self) -> Span {
        match self {
            Cond::Or(_, s)
            | Cond::And(_, s)
            | Cond::Not(_, s)
            | Cond::Inactive(_, s)
            | Cond::Const(_, s) => *s,
            Cond::Test(t) => t.span,
        }
    }
}

/// `EXPR OP ...`: one comparison.
#[derive(Clone, Debug, PartialEq)]
pub struct Test {
    pub lhs: Expr,
    pub op: TestOp,
    pub op_span: Span,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TestOp {
    IsSet,
    IsNotSet,
    In(Collection),
    NotIn(Collection),
    Contains(StringLit),
    ContainsWord(StringLit),
    ContainsAny(Collection),
    ContainsAnyWord(Collection),
    Compare(CmpOp, Expr),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

/// A set: either declared (`tier1`) or written in place (`["a", "b"]`).
#[derive(Clone, Debug, PartialEq)]
pub enum Collection {
    Named(Ident),
    List(ListLit),
}

impl Collection {
    pub fn span(&self) -> Span {
        match self {
            Collection::Named(i) => i.span,
            Collection::List(l) => l.span,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArithOp {
    Add,
    Sub,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Path(Path),
    Number(f64, Span),
    Str(StringLit),
    Bool(bool, Span),
    Call {
        func: Ident,
        arg: Box<Expr>,
        span: Span,
    },
    Binary {
        op: ArithOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
        span: Span,
    },
}

impl Expr {
    pub fn span(&self) -> Span {
        match self {
            Expr::Path(p) => p.span,
            Expr::Str(s) => s.span,
            Expr::Number(_, s) | Expr::Bool(_, s) => *s,
            Expr::Call { span, .. } | Expr::Binary { span, .. } => *span,
        }
    }
}
