//! `channel` and `notify` statements: where notifications go, and when.
//!
//! A channel's URL is written in the rules only when it is not itself a secret: a
//! `webhook`'s (its messages are signed), never a chat robot's, whose URL carries its
//! access token. Secrets are named (`secret "NAME"`, `signed "NAME"`) and kept with the
//! service's configuration.

use super::{normalise, Resolver};
use leadscore_dsl::ast;
use leadscore_dsl::diagnostic::closest;
use leadscore_dsl::Diagnostic;
use leadscore_runtime::bytecode::{
    ChannelDef, ChannelKind, ChannelTarget, GradeId, NotifyDef, NotifyTrigger, ScoreId,
};

/// A secret's or template's name: letters, digits, `_` and `-`, at most 64.
fn valid_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl Resolver<'_> {
    pub(super) fn notifications(&mut self, file: &ast::File) {
        for item in &file.items {
            if let ast::Item::Channel(c) = item {
                self.channel(c);
            }
        }
        let mut used = vec![false; self.ir.channels.len()];
        for item in &file.items {
            if let ast::Item::Notify(n) = item {
                if let Some(i) = self.notify(n) {
                    used[i] = true;
                }
            }
        }
        if self.diags.iter().any(Diagnostic::is_error) {
            return;
        }
        for (c, used) in file
            .items
            .iter()
            .filter_map(|i| match i {
                ast::Item::Channel(c) => Some(c),
                _ => None,
            })
            .zip(used)
        {
            if !used {
                self.diags.push(
                    Diagnostic::warning(
                        "W0003",
                        c.name.span,
                        format!("channel `{}` is never notified", c.name.name),
                    )
                    .label("declared here")
                    .help(format!(
                        "add a rule such as `notify {} when grade becomes A`",
                        c.name.name
                    )),
                );
            }
        }
    }

    fn channel(&mut self, c: &ast::ChannelDecl) {
        let name = &c.name.name;
        if self.ir.channels.iter().any(|x| x.name == *name) {
            self.err(
                Diagnostic::error(
                    "E0501",
                    c.name.span,
                    format!("channel `{name}` is declared twice"),
                )
                .label("second declaration"),
            );
            return;
        }
        let Some(kind) = ChannelKind::parse(&c.kind.name) else {
            self.err(Diagnostic::error(
                "E0000",
                c.kind.span,
                "internal error: a channel kind the grammar does not know",
            ));
            return;
        };
        // A channel whose target or signature is refused is still declared, so that the
        // `notify` rules naming it report nothing more.
        let target = self.channel_target(c, kind);
        let signed = self.channel_signed(c, kind);
        let line = self.line(c.span);
        self.ir.channels.push(ChannelDef {
            name: name.clone(),
            kind,
            target: target.unwrap_or(ChannelTarget::Url(String::new())),
            signed: signed.flatten(),
            line,
        });
    }

    fn channel_target(&mut self, c: &ast::ChannelDecl, kind: ChannelKind) -> Option<ChannelTarget> {
        let name = &c.name.name;
        let refuse = |r: &mut Self, d: Diagnostic| {
            r.err(d);
            None
        };
        Some(match (&c.target, kind) {
            (ast::ChannelTarget::Literal(t), ChannelKind::Http) => {
                if !valid_name(&t.value) {
                    return refuse(
                        self,
                        Diagnostic::error(
                            "E0506",
                            t.span,
                            "a request template's name is letters, digits, `_` and `-`",
                        )
                        .label("not a template name")
                        .help("`http \"hubspot\"` names the configuration's `[http.hubspot]`"),
                    );
                }
                ChannelTarget::Template(t.value.clone())
            }
            (ast::ChannelTarget::Secret(s), ChannelKind::Http) => {
                return refuse(
                    self,
                    Diagnostic::error(
                        "E0505",
                        s.span,
                        "an `http` channel names a request template, not a secret",
                    )
                    .label("expected a template name")
                    .help(format!(
                        "write `channel {name} = http \"TEMPLATE\"` and put the URL and its secrets in the configuration's `[http.TEMPLATE]`"
                    )),
                )
            }
            (ast::ChannelTarget::Literal(u), ChannelKind::Webhook) => {
                let v = u.value.trim();
                let host = v
                    .strip_prefix("https://")
                    .or_else(|| v.strip_prefix("http://"))
                    .unwrap_or("");
                if host.is_empty() || host.starts_with('/') || v.chars().any(char::is_whitespace) {
                    return refuse(
                        self,
                        Diagnostic::error("E0503", u.span, "not an http(s) URL")
                            .label("expected `https://host/path`"),
                    );
                }
                ChannelTarget::Url(v.to_string())
            }
            (ast::ChannelTarget::Literal(u), _) => {
                return refuse(
                    self,
                    Diagnostic::error(
                        "E0502",
                        u.span,
                        format!(
                            "a {} robot's URL carries its access token: it belongs with the secrets",
                            kind.name()
                        ),
                    )
                    .label("a secret written in the rules")
                    .help(format!(
                        "write `channel {name} = {} secret \"NAME\"` and set the URL as the secret NAME",
                        c.kind.name
                    )),
                );
            }
            (ast::ChannelTarget::Secret(s), _) => {
                if !valid_name(&s.value) {
                    return refuse(
                        self,
                        Diagnostic::error(
                            "E0506",
                            s.span,
                            "a secret's name is letters, digits, `_` and `-`",
                        )
                        .label("not a secret name"),
                    );
                }
                ChannelTarget::Secret(s.value.clone())
            }
        })
    }

    /// `Some(None)`: not signed; `None`: refused.
    fn channel_signed(
        &mut self,
        c: &ast::ChannelDecl,
        kind: ChannelKind,
    ) -> Option<Option<String>> {
        Some(match &c.signed {
            None => None,
            Some(s)
                if !matches!(
                    kind,
                    ChannelKind::Webhook | ChannelKind::Feishu | ChannelKind::DingTalk
                ) =>
            {
                self.err(
                    Diagnostic::error(
                        "E0504",
                        s.span,
                        format!("{} messages are not signed", kind.name()),
                    )
                    .label("nothing to sign with this")
                    .help("`signed` applies to `webhook`, `feishu` and `dingtalk` channels"),
                );
                return None;
            }
            Some(s) if !valid_name(&s.value) => {
                self.err(
                    Diagnostic::error(
                        "E0506",
                        s.span,
                        "a secret's name is letters, digits, `_` and `-`",
                    )
                    .label("not a secret name"),
                );
                return None;
            }
            Some(s) => Some(s.value.clone()),
        })
    }

    /// The channel's index when the statement resolves.
    fn notify(&mut self, n: &ast::NotifyDecl) -> Option<usize> {
        let channel = self
            .ir
            .channels
            .iter()
            .position(|c| c.name == n.channel.name);
        let Some(channel) = channel else {
            let names: Vec<&str> = self.ir.channels.iter().map(|c| c.name.as_str()).collect();
            let mut d = Diagnostic::error(
                "E0507",
                n.channel.span,
                format!("unknown channel `{}`", n.channel.name),
            )
            .label("not declared");
            d = match closest(&n.channel.name, names) {
                Some(s) => d.suggest(Some(s)),
                None => d.help(format!(
                    "declare it first, e.g. `channel {} = slack secret \"SLACK_URL\"`",
                    n.channel.name
                )),
            };
            self.err(d);
            return None;
        };
        let trigger = match &n.trigger {
            ast::NotifyTrigger::Becomes(g) => NotifyTrigger::Becomes(self.grade_id(g)?),
            ast::NotifyTrigger::Leaves(g) => NotifyTrigger::Leaves(self.grade_id(g)?),
            ast::NotifyTrigger::Changes(_) => NotifyTrigger::Changes,
            ast::NotifyTrigger::OwnerChanges(_) => NotifyTrigger::OwnerChanges,
            ast::NotifyTrigger::FollowupOverdue(_) => NotifyTrigger::FollowupOverdue,
            ast::NotifyTrigger::TaskDue(_) => NotifyTrigger::TaskDue,
            ast::NotifyTrigger::Crosses { score, threshold } => NotifyTrigger::Crosses {
                score: self.crossing_score(score)?,
                threshold: threshold.value,
            },
        };
        self.ir.notifies.push(NotifyDef {
            channel: channel as u32,
            trigger,
            line: self.line(n.span),
            text: normalise(n.span.text(self.src)),
            once: n.once.is_some(),
        });
        Some(channel)
    }

    pub(super) fn grade_id(&mut self, g: &ast::Ident) -> Option<GradeId> {
        if let Some(i) = self.ir.grades.iter().position(|x| x.name == g.name) {
            return Some(GradeId(i as u32));
        }
        let names: Vec<&str> = self.ir.grades.iter().map(|x| x.name.as_str()).collect();
        let mut d = Diagnostic::error("E0205", g.span, format!("unknown grade `{}`", g.name))
            .label("not a grade of this file");
        if let Some(s) = closest(&g.name, names) {
            d = d.suggest(Some(s));
        }
        self.err(d);
        None
    }

    /// `None` is the lead's total (`score`, whether or not scores are named).
    fn crossing_score(&mut self, s: &ast::Ident) -> Option<Option<ScoreId>> {
        if s.name == "score" {
            return Some(None);
        }
        if !self.implicit_score {
            if let Some(&id) = self.scores.get(&s.name) {
                return Some(Some(id));
            }
        }
        let mut names: Vec<&str> = vec!["score"];
        if !self.implicit_score {
            names.extend(self.ir.scores.iter().map(|x| x.name.as_str()));
        }
        let mut d = Diagnostic::error("E0202", s.span, format!("unknown score `{}`", s.name))
            .label("not a score of this file");
        if let Some(c) = closest(&s.name, names) {
            d = d.suggest(Some(c));
        }
        self.err(d);
        None
    }
}
