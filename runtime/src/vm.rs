//! The condition VM. Evaluates one verified condition against a lead (and an event) on a
//! fixed-capacity stack: no allocation, no IO, and every step bounded — jumps only go
//! forward, so a condition runs at most once through its code.

use crate::bytecode::{Cmp, CodeRef, Func, GradeId, Op, Program, MAX_STACK};
use crate::event::Event;
use crate::text::{self, parse_number};
use crate::time::{self, Micros};
use crate::value::{Text, Val};
use arrayvec::ArrayVec;

/// Everything a condition can read.
pub struct Env<'a> {
    pub program: &'a Program,
    /// The lead's attributes, indexed by the program's field ids.
    pub attrs: &'a [Option<Val>],
    /// The event being applied (event rules only).
    pub event: Option<&'a Event>,
    /// Named scores, by score id (grades and tags only).
    pub scores: &'a [i64],
    pub total: i64,
    pub grade: Option<GradeId>,
    pub now: Micros,
    /// The latest event's `at`.
    pub last_at: Micros,
}

/// A value on the stack; borrows from the lead, the event or the program.
#[derive(Clone, Copy, Debug)]
enum V<'a> {
    Missing,
    Bool(bool),
    Num(f64),
    /// Folded text (a constant, or a domain).
    Str(&'a str),
    Text(&'a Text),
    List(&'a [Text]),
    /// A list's elements, each seen through `domain()`.
    Domains(&'a [Text]),
}

fn of_val(v: Option<&Val>) -> V<'_> {
    match v {
        None => V::Missing,
        Some(Val::Text(t)) => V::Text(t),
        Some(Val::Bool(b)) => V::Bool(*b),
        Some(Val::List(l)) => V::List(l),
    }
}

fn domain_of(s: &str) -> V<'_> {
    let d = text::domain(s);
    if d.is_empty() {
        V::Missing
    } else {
        V::Str(d)
    }
}

/// Whether `f` holds for any folded text in `v`.
fn any_str(v: V, mut f: impl FnMut(&str) -> bool) -> bool {
    match v {
        V::Str(s) => f(s),
        V::Text(t) => f(&t.folded),
        V::List(l) => l.iter().any(|t| f(&t.folded)),
        V::Domains(l) => l.iter().any(|t| {
            let d = text::domain(&t.folded);
            !d.is_empty() && f(d)
        }),
        V::Missing | V::Bool(_) | V::Num(_) => false,
    }
}

fn num_of(v: V) -> Option<f64> {
    match v {
        V::Num(n) => Some(n),
        V::Text(t) => t.num,
        V::Str(s) => parse_number(s),
        _ => None,
    }
}

fn bool_of(v: V) -> Option<bool> {
    match v {
        V::Bool(b) => Some(b),
        V::Text(t) => t.boolean(),
        V::Str(s) => Text::new(s).boolean(),
        _ => None,
    }
}

/// Equality as the language defines it; `None` when the values cannot be compared.
fn equal(a: V, b: V) -> Option<bool> {
    match (a, b) {
        (V::Missing, _) | (_, V::Missing) => None,
        (V::Bool(x), other) | (other, V::Bool(x)) => match other {
            V::List(l) => Some(l.iter().any(|t| t.boolean() == Some(x))),
            _ => bool_of(other).map(|y| x == y),
        },
        (V::Num(n), other) | (other, V::Num(n)) => match other {
            V::List(l) => Some(l.iter().any(|t| t.num == Some(n))),
            _ => num_of(other).map(|m| m == n),
        },
        _ => {
            let mut found = false;
            any_str(a, |x| {
                found = any_str(b, |y| x == y);
                found
            });
            Some(found)
        }
    }
}

fn compare(a: V, b: V, op: Cmp) -> bool {
    match op {
        Cmp::Eq => equal(a, b) == Some(true),
        Cmp::Ne => equal(a, b) == Some(false),
        _ => match (num_of(a), num_of(b)) {
            (Some(x), Some(y)) => match op {
                Cmp::Lt => x < y,
                Cmp::Le => x <= y,
                Cmp::Gt => x > y,
                _ => x >= y,
            },
            _ => false,
        },
    }
}

fn call(f: Func, v: V) -> V {
    let count = |s: &str| -> f64 {
        match f {
            Func::Words => text::word_count(s) as f64,
            Func::Sentences => text::sentence_count(s) as f64,
            _ => s.chars().count() as f64,
        }
    };
    match (f, v) {
        (_, V::Missing) | (_, V::Bool(_)) => V::Missing,
        (Func::Domain, V::Text(t)) => domain_of(&t.folded),
        (Func::Domain, V::Str(s)) => domain_of(s),
        (Func::Domain, V::List(l) | V::Domains(l)) => V::Domains(l),
        (Func::Domain, V::Num(_)) => V::Missing,
        (Func::Len, V::List(l) | V::Domains(l)) => V::Num(l.len() as f64),
        (_, V::Text(t)) => V::Num(count(&t.raw)),
        (_, V::Str(s)) => V::Num(count(s)),
        (_, V::List(l) | V::Domains(l)) => V::Num(l.iter().map(|t| count(&t.raw)).sum()),
        (_, V::Num(_)) => V::Missing,
    }
}

/// Evaluates the condition at `start`. The program must be verified.
pub fn eval(env: &Env, start: CodeRef) -> bool {
    let p = env.program;
    let mut stack: ArrayVec<V, MAX_STACK> = ArrayVec::new();
    let mut pc = start.index();
    // Forward-only jumps bound the steps by the code's length; the budget is a second
    // line of defence should that invariant ever be broken.
    let mut budget = p.code.len();
    macro_rules! pop {
        () => {
            stack.pop().unwrap_or(V::Missing)
        };
    }
    macro_rules! push {
        ($v:expr) => {
            if stack.try_push($v).is_err() {
                return false;
            }
        };
    }
    while let Some(&op) = p.code.get(pc) {
        if budget == 0 {
            return false;
        }
        budget -= 1;
        pc += 1;
        match op {
            Op::Attr(f) => push!(of_val(env.attrs.get(f.index()).and_then(Option::as_ref))),
            Op::Prop(f) => {
                let v = env.event.and_then(|e| e.prop(&p.fields[f.index()]));
                push!(of_val(v))
            }
            Op::Num(n) => push!(V::Num(p.numbers[n.index()])),
            Op::Str(s) => push!(V::Str(&p.strings[s.index()])),
            Op::Bool(b) => push!(V::Bool(b)),
            Op::Score(s) => push!(V::Num(
                env.scores.get(s.index()).copied().unwrap_or(0) as f64
            )),
            Op::Total => push!(V::Num(env.total as f64)),
            Op::Call(f) => {
                let v = pop!();
                push!(call(f, v))
            }
            Op::Add | Op::Sub => {
                let (b, a) = (pop!(), pop!());
                let v = match (num_of(a), num_of(b)) {
                    (Some(x), Some(y)) if op == Op::Add => V::Num(x + y),
                    (Some(x), Some(y)) => V::Num(x - y),
                    _ => V::Missing,
                };
                push!(v)
            }
            Op::Cmp(c) => {
                let (b, a) = (pop!(), pop!());
                push!(V::Bool(compare(a, b, c)))
            }
            Op::In(s) | Op::NotIn(s) => {
                let v = pop!();
                let items = &p.sets[s.index()].items;
                let found = any_str(v, |x| items.binary_search_by(|i| i.as_str().cmp(x)).is_ok());
                let set = matches!(v, V::Text(_) | V::Str(_) | V::List(_) | V::Domains(_));
                push!(V::Bool(if matches!(op, Op::In(_)) {
                    found
                } else {
                    set && !found
                }))
            }
            Op::Contains(s) => {
                let v = pop!();
                let needle = p.strings[s.index()].as_str();
                push!(V::Bool(any_str(v, |x| text::contains(x, needle))))
            }
            Op::ContainsWord(s) => {
                let v = pop!();
                let needle = p.strings[s.index()].as_str();
                push!(V::Bool(any_str(v, |x| text::contains_word(x, needle))))
            }
            Op::ContainsAny(s) | Op::ContainsAnyWord(s) => {
                let v = pop!();
                let items = &p.sets[s.index()].items;
                let word = matches!(op, Op::ContainsAnyWord(_));
                push!(V::Bool(any_str(v, |x| items.iter().any(|i| {
                    if word {
                        text::contains_word(x, i)
                    } else {
                        text::contains(x, i)
                    }
                }))))
            }
            Op::IsSet | Op::IsNotSet => {
                let missing = matches!(pop!(), V::Missing);
                push!(V::Bool(missing == (op == Op::IsNotSet)))
            }
            Op::Not => {
                let b = matches!(pop!(), V::Bool(true));
                push!(V::Bool(!b))
            }
            Op::GradeIs(g) => push!(V::Bool(env.grade == Some(g))),
            Op::Inactive(s) => push!(V::Bool(
                env.now.saturating_sub(env.last_at) >= time::seconds(s)
            )),
            Op::JumpIfFalse(n) | Op::JumpIfTrue(n) => {
                let top = matches!(stack.last(), Some(V::Bool(true)));
                if top == matches!(op, Op::JumpIfTrue(_)) {
                    pc = pc.saturating_add(n as usize);
                } else {
                    stack.pop();
                }
            }
            Op::Return => return matches!(stack.pop(), Some(V::Bool(true))),
        }
    }
    false
}
