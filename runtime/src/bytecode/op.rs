//! The instruction set. Conditions are small stack programs; every jump goes forward, so
//! a condition runs at most once through its code and terminates.

use serde::{Deserialize, Serialize};

macro_rules! id {
    ($($(#[$m:meta])* $name:ident),*) => {$(
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub struct $name(pub u32);
        impl $name {
            pub fn index(self) -> usize { self.0 as usize }
        }
    )*};
}

id!(
    /// Index into `Program::fields` (attribute or event property names).
    FieldId,
    /// Index into `Program::strings` (case-folded text constants).
    StrId,
    /// Index into `Program::numbers`.
    NumId,
    /// Index into `Program::sets`.
    SetId,
    /// Index into `Program::scores`.
    ScoreId,
    /// Index into `Program::grades`.
    GradeId,
    /// Index into `Program::code`: where a condition starts.
    CodeRef,
    /// Index into `Program::rules` (the debug/explanation table, in source order).
    RuleIndex
);

/// A rule's stable identity: a hash of its normalised text (plus an occurrence number for
/// identical rules), so stored per-rule state survives unrelated edits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RuleId(pub u32);

/// Built-in functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Func {
    /// The domain of an e-mail address or URL (`buyer@acme.de` -> `acme.de`).
    Domain,
    /// Characters in a text, elements in a list.
    Len,
    /// Words in a text (Unicode word boundaries).
    Words,
    /// Sentences in a text (Unicode sentence boundaries).
    Sentences,
}

impl Func {
    pub fn name(self) -> &'static str {
        match self {
            Func::Domain => "domain",
            Func::Len => "len",
            Func::Words => "words",
            Func::Sentences => "sentences",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    pub fn symbol(self) -> &'static str {
        match self {
            Cmp::Eq => "=",
            Cmp::Ne => "!=",
            Cmp::Lt => "<",
            Cmp::Le => "<=",
            Cmp::Gt => ">",
            Cmp::Ge => ">=",
        }
    }
}

/// One instruction. "Pop"/"push" refer to the VM's value stack.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Op {
    /// Push the lead's attribute (missing when absent or blank).
    Attr(FieldId),
    /// Push the current event's property (missing when absent or blank).
    Prop(FieldId),
    /// Push a number constant.
    Num(NumId),
    /// Push a (case-folded) text constant.
    Str(StrId),
    /// Push a boolean constant.
    Bool(bool),
    /// Push a named score's value (grade and tag conditions only).
    Score(ScoreId),
    /// Push the sum of all scores (grade and tag conditions only).
    Total,
    /// Pop a value, push the function applied to it (missing stays missing).
    Call(Func),
    /// Pop b, pop a, push a + b (missing unless both are numbers).
    Add,
    /// Pop b, pop a, push a - b (missing unless both are numbers).
    Sub,
    /// Pop b, pop a, push the comparison `a OP b` (false when either is missing).
    Cmp(Cmp),
    /// Pop a, push whether a (or any element of a list) is in the set.
    In(SetId),
    /// Pop a, push whether a is set and not in the set.
    NotIn(SetId),
    /// Pop a, push whether a contains the text as a substring.
    Contains(StrId),
    /// Pop a, push whether a contains the text as whole words.
    ContainsWord(StrId),
    /// Pop a, push whether a contains any element of the set as a substring.
    ContainsAny(SetId),
    /// Pop a, push whether a contains any element of the set as whole words.
    ContainsAnyWord(SetId),
    /// Pop a, push whether it is set (present, not blank).
    IsSet,
    /// Pop a, push whether it is not set.
    IsNotSet,
    /// Pop a boolean, push its negation.
    Not,
    /// Push whether the lead's current grade is this one.
    GradeIs(GradeId),
    /// Push whether `now - last activity >= seconds`.
    Inactive(u32),
    /// If the top is false, jump forward over n instructions keeping it; else pop it.
    JumpIfFalse(u32),
    /// If the top is true, jump forward over n instructions keeping it; else pop it.
    JumpIfTrue(u32),
    /// End of a condition: the top is its result.
    Return,
}

impl Op {
    /// (values popped, values pushed) — used by the verifier.
    pub fn stack_effect(self) -> (usize, usize) {
        match self {
            Op::Attr(_)
            | Op::Prop(_)
            | Op::Num(_)
            | Op::Str(_)
            | Op::Bool(_)
            | Op::Score(_)
            | Op::Total
            | Op::GradeIs(_)
            | Op::Inactive(_) => (0, 1),
            Op::Call(_)
            | Op::In(_)
            | Op::NotIn(_)
            | Op::Contains(_)
            | Op::ContainsWord(_)
            | Op::ContainsAny(_)
            | Op::ContainsAnyWord(_)
            | Op::IsSet
            | Op::IsNotSet
            | Op::Not => (1, 1),
            Op::Add | Op::Sub | Op::Cmp(_) => (2, 1),
            // Fall-through effect; the jump keeps the value.
            Op::JumpIfFalse(_) | Op::JumpIfTrue(_) => (1, 0),
            Op::Return => (1, 0),
        }
    }
}
