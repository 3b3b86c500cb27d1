//! Conditions and expressions: `when …` tests, operators, collections, paths.

use super::*;

pub(crate) fn cond(p: Pair<Rule>) -> Res<Cond> {
    let span = span_of(&p);
    match p.as_rule() {
        Rule::cond | Rule::conj => {
            let is_or = p.as_rule() == Rule::cond;
            let kids = children(&p);
            if let Some(past) = kids.get(MAX_TERMS) {
                let what = if is_or { "`or`" } else { "`and`" };
                return Err(too_long(span_of(past), what));
            }
            let mut parts = kids.into_iter().map(cond).collect::<Res<Vec<_>>>()?;
            if parts.len() == 1 {
                return parts.pop().ok_or_else(|| internal(&p));
            }
            Ok(if is_or {
                Cond::Or(parts, span)
            } else {
                Cond::And(parts, span)
            })
        }
        Rule::neg => {
            let kids = children(&p);
            match kids.as_slice() {
                [not, rest] if not.as_rule() == Rule::not_op => {
                    Ok(Cond::Not(Box::new(cond(rest.clone())?), span))
                }
                [one] => cond(one.clone()),
                _ => Err(internal(&p)),
            }
        }
        Rule::inactive => {
            let d = children(&p)
                .into_iter()
                .next()
                .ok_or_else(|| internal(&p))?;
            Ok(Cond::Inactive(duration(&d)?, span))
        }
        Rule::constant => Ok(Cond::Const(p.as_str().trim() == "true", span)),
        Rule::comparison => {
            let kids = children(&p);
            let [lhs, op] = kids.as_slice() else {
                return Err(internal(&p));
            };
            Ok(Cond::Test(Box::new(Test {
                lhs: expr(lhs.clone())?,
                op: test_op(op.clone())?,
                op_span: span_of(op),
                span,
            })))
        }
        _ => Err(internal(&p)),
    }
}

fn test_op(p: Pair<Rule>) -> Res<TestOp> {
    let kind = p.as_rule();
    let arg = children(&p).into_iter().next();
    let arg = || arg.clone().ok_or_else(|| internal(&p));
    Ok(match kind {
        Rule::is_set => TestOp::IsSet,
        Rule::is_not_set => TestOp::IsNotSet,
        Rule::in_set => TestOp::In(collection(arg()?)?),
        Rule::not_in => TestOp::NotIn(collection(arg()?)?),
        Rule::contains => TestOp::Contains(string(arg()?)?),
        Rule::contains_word => TestOp::ContainsWord(string(arg()?)?),
        Rule::contains_any => TestOp::ContainsAny(collection(arg()?)?),
        Rule::contains_any_word => TestOp::ContainsAnyWord(collection(arg()?)?),
        Rule::compare => {
            let kids = children(&p);
            let [op, rhs] = kids.as_slice() else {
                return Err(internal(&p));
            };
            let op = match op.as_str() {
                "=" => CmpOp::Eq,
                "!=" => CmpOp::Ne,
                "<" => CmpOp::Lt,
                "<=" => CmpOp::Le,
                ">" => CmpOp::Gt,
                _ => CmpOp::Ge,
            };
            TestOp::Compare(op, expr(rhs.clone())?)
        }
        _ => return Err(internal(&p)),
    })
}

fn collection(p: Pair<Rule>) -> Res<Collection> {
    Ok(match p.as_rule() {
        Rule::list => Collection::List(list(p)?),
        _ => Collection::Named(ident(p)),
    })
}

fn expr(p: Pair<Rule>) -> Res<Expr> {
    let span = span_of(&p);
    match p.as_rule() {
        Rule::expr => {
            if let Some(past) = p.clone().into_inner().nth(2 * MAX_TERMS - 1) {
                // The operator after the last operand allowed.
                return Err(too_long(span_of(&past), "expression"));
            }
            let mut kids = p.clone().into_inner();
            let mut acc = expr(kids.next().ok_or_else(|| internal(&p))?)?;
            while let Some(op) = kids.next() {
                let rhs = expr(kids.next().ok_or_else(|| internal(&p))?)?;
                let span = acc.span().to(rhs.span());
                let op = if op.as_str() == "+" {
                    ArithOp::Add
                } else {
                    ArithOp::Sub
                };
                acc = Expr::Binary {
                    op,
                    lhs: Box::new(acc),
                    rhs: Box::new(rhs),
                    span,
                };
            }
            Ok(acc)
        }
        Rule::callable => {
            let mut kids = children(&p).into_iter();
            let path_pair = kids.next().ok_or_else(|| internal(&p))?;
            let Some(args) = kids.next() else {
                return Ok(Expr::Path(path(path_pair)));
            };
            let arg = children(&args)
                .into_iter()
                .next()
                .ok_or_else(|| internal(&args))?;
            let callee = path(path_pair);
            Ok(Expr::Call {
                func: Ident {
                    name: callee.dotted(),
                    span: callee.span,
                },
                arg: Box::new(expr(arg)?),
                span,
            })
        }
        Rule::number => p
            .as_str()
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .map(|n| Expr::Number(n, span))
            .ok_or_else(|| Diagnostic::error("E0002", span, "this number is out of range")),
        Rule::string => Ok(Expr::Str(string(p)?)),
        Rule::boolean => Ok(Expr::Bool(p.as_str() == "true", span)),
        Rule::path => Ok(Expr::Path(path(p))),
        _ => Err(internal(&p)),
    }
}

pub(crate) fn path(p: Pair<Rule>) -> Path {
    let span = span_of(&p);
    let segments = if p.as_rule() == Rule::path {
        p.into_inner().map(ident).collect()
    } else {
        vec![ident(p)]
    };
    Path { segments, span }
}
