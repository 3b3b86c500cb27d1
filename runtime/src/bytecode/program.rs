//! The program: what the compiler emits and the VM runs. Encoded as a fixed header
//! followed by a postcard body; [`Program::from_bytes`] verifies both.

use super::op::*;
use super::verify::{verify, VerifyError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// First bytes of every encoded program.
pub const MAGIC: [u8; 4] = *b"LSBC";
/// The bytecode format version. Bump it whenever the encoded shape or the meaning of an
/// instruction changes. Programs are compiled from rules files, which stay the source of
/// truth: a program of another version is refused with the advice to compile again.
/// 2: grades may carry an `until` condition (hysteresis).
/// 3: notification channels and `notify` rules.
/// 4: protected fields (`field NAME protected`).
/// 5: `apart` scores and `total`.
/// 6: `within D of`, `up to N per D`, `distinct`, `reset`, `ask`, `notify … once`,
///    `decay P% every D` and time awards (`after inactive for`).
/// 7: the sales desk: `assign`, `recycle`, `tag … when followup overdue`, `notify … when
///    owner changes` and `… when followup overdue`.
pub const FORMAT_VERSION: u16 = 7;
/// magic + version + reserved + body length + body sha256.
pub const HEADER_LEN: usize = 4 + 2 + 2 + 4 + 32;
/// Programs larger than this are refused before decoding.
pub const MAX_BODY_LEN: usize = 64 << 20;

/// The field that holds the lead's own key (`key` in the rules): the engine fills it from
/// the lead, never from an event (no rules name can spell `@`).
pub const KEY_FIELD: &str = "@key";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Program {
    /// `ruleset "NAME"`, or the file's stem.
    pub name: String,
    /// sha256 of the rules source text.
    pub source_hash: [u8; 32],
    /// Case-folded text constants.
    pub strings: Vec<String>,
    pub numbers: Vec<f64>,
    /// Attribute and property names, as written.
    pub fields: Vec<String>,
    /// Sets of case-folded text, each sorted and without duplicates.
    pub sets: Vec<Set>,
    pub scores: Vec<ScoreDef>,
    /// All conditions, each a run of instructions ending in `Return`.
    pub code: Vec<Op>,
    /// Rules tested against the lead's current attributes.
    pub field_rules: Vec<FieldRule>,
    /// Rules that fire on events.
    pub event_rules: Vec<EventRule>,
    /// Awards made by time (`after inactive for D`).
    pub time_rules: Vec<TimeRule>,
    /// Event types (case-folded) sorted by name, each with the indices of its event rules.
    pub event_types: Vec<EventType>,
    /// First match wins; the last grade has no condition (`otherwise`).
    pub grades: Vec<GradeDef>,
    pub tags: Vec<TagDef>,
    /// Every rule in source order: its line and text, for explanations and listings.
    pub rules: Vec<RuleInfo>,
    /// Where notifications go (`channel`).
    pub channels: Vec<ChannelDef>,
    /// When they go (`notify`), in source order.
    pub notifies: Vec<NotifyDef>,
    /// Attributes only signed senders may set (`field NAME protected`), sorted, unique.
    pub protected: Vec<String>,
    /// `total = …`: what the lead's `score` is; without it, the sum of the scores not
    /// `apart`.
    pub total: Option<TotalDef>,
    /// Who owns a lead (`assign`), in source order: the first that matches wins.
    pub assigns: Vec<AssignDef>,
    /// `recycle after D without followup`, in seconds.
    pub recycle: Option<u32>,
    /// Tags a lead has while its follow-up is overdue (`tag T when followup overdue`).
    pub overdue_tags: Vec<OverdueTag>,
    /// Follow-up plans (`plan NAME = [KIND at D, …]`).
    pub plans: Vec<PlanDef>,
}

/// `plan NAME = [KIND at D, …]`: each step a task for the owner, due `seconds` after the
/// assignment, met by a follow-up whose event type is `kind` or starts with `kind.`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanDef {
    pub name: String,
    /// (kind, folded; seconds after the assignment), in order.
    pub steps: Vec<(String, u32)>,
    pub line: u32,
}

/// `assign WHEN to TARGET [within D]` (docs/desk.md).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AssignDef {
    /// `grade A[, B…]` (empty: any grade).
    pub grades: Vec<GradeId>,
    /// Tested on the lead's attributes; `None`: always.
    pub cond: Option<CodeRef>,
    pub to: AssignTo,
    /// `within D`: the follow-up deadline, in seconds after the assignment.
    pub within: Option<u32>,
    /// `plan NAME`: index into `plans`.
    pub plan: Option<u32>,
    pub line: u32,
    /// The statement as written.
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AssignTo {
    /// Nobody's: the lead pool.
    Pool,
    /// The owner of the company's other leads (when one has room).
    CompanyOwner,
    /// A team of the configuration, by name.
    Team { name: String, how: AssignHow },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AssignHow {
    /// The first member with room, in the configuration's order.
    InOrder,
    /// The member after the team's last assignment (the cursor lives in the store).
    RoundRobin,
    /// The members whose regions hold this attribute's value (folded), in turn.
    By(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverdueTag {
    pub name: String,
    pub line: u32,
}

/// `total = a + b - c [range LO..HI]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotalDef {
    /// Each named score, `true` where it is subtracted.
    pub terms: Vec<(ScoreId, bool)>,
    pub range: Option<(i64, i64)>,
    pub line: u32,
}

/// The score of an explanation's line that clamps the total (`total … range`).
pub const TOTAL: ScoreId = ScoreId(u32::MAX);

impl Program {
    /// Whether only signed senders may set this attribute.
    pub fn is_protected(&self, attribute: &str) -> bool {
        self.protected
            .binary_search_by(|p| p.as_str().cmp(attribute))
            .is_ok()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChannelKind {
    /// leadscore's own JSON, signed like leadscore's webhooks.
    Webhook,
    /// A Slack incoming webhook.
    Slack,
    /// A Feishu / Lark custom bot.
    Feishu,
    /// A DingTalk custom robot.
    DingTalk,
    /// A WeCom (企业微信) group robot.
    WeCom,
    /// A request built from a template of the configuration (a CRM's API).
    Http,
}

impl ChannelKind {
    pub fn name(self) -> &'static str {
        match self {
            ChannelKind::Webhook => "webhook",
            ChannelKind::Slack => "slack",
            ChannelKind::Feishu => "feishu",
            ChannelKind::DingTalk => "dingtalk",
            ChannelKind::WeCom => "wecom",
            ChannelKind::Http => "http",
        }
    }

    /// The kind a rules file names (`lark` is Feishu's international name).
    pub fn parse(word: &str) -> Option<ChannelKind> {
        Some(match word {
            "webhook" => ChannelKind::Webhook,
            "slack" => ChannelKind::Slack,
            "feishu" | "lark" => ChannelKind::Feishu,
            "dingtalk" => ChannelKind::DingTalk,
            "wecom" => ChannelKind::WeCom,
            "http" => ChannelKind::Http,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChannelTarget {
    /// A URL written in the rules.
    Url(String),
    /// A URL kept with the secrets under this name.
    Secret(String),
    /// An `http` channel's request template, by name.
    Template(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelDef {
    pub name: String,
    pub kind: ChannelKind,
    pub target: ChannelTarget,
    /// The secret that signs each message, by name.
    pub signed: Option<String>,
    pub line: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NotifyTrigger {
    /// A transition into the grade.
    Becomes(GradeId),
    /// A transition out of the grade.
    Leaves(GradeId),
    /// Any transition.
    Changes,
    /// The score (`None`: the total) goes from below `threshold` to `threshold` or more.
    Crosses {
        score: Option<ScoreId>,
        threshold: i64,
    },
    /// The lead's owner changed (assigned, recycled, to the pool).
    OwnerChanges,
    /// A follow-up deadline passed with no follow-up.
    FollowupOverdue,
    /// A step of a follow-up plan came due.
    TaskDue,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyDef {
    /// Index into `channels`.
    pub channel: u32,
    pub trigger: NotifyTrigger,
    pub line: u32,
    /// The statement as written.
    pub text: String,
    /// `once`: at most once per lead, ever.
    pub once: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Set {
    /// The declared name, or `None` for a list written in place.
    pub name: Option<String>,
    pub items: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScoreDef {
    pub name: String,
    /// `range LO..HI`: clamps the sum of the score's rules.
    pub range: Option<(i64, i64)>,
    /// Line of the declaration (0 for the implicit `score`).
    pub line: u32,
    /// `apart`: shown and tested, left out of the lead's `score`.
    pub apart: bool,
}

/// How many points a rule gives, before its sign.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Amount {
    Const(u32),
    /// The integer value of a lead attribute (truncated toward zero).
    Attr(FieldId),
    /// The integer value of the event's property.
    Prop(FieldId),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Points {
    /// `subtract` negates.
    pub negative: bool,
    pub amount: Amount,
    /// Caps the contribution's magnitude.
    pub max: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldRule {
    pub id: RuleId,
    pub rule: RuleIndex,
    pub score: ScoreId,
    pub cond: CodeRef,
    pub points: Points,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventRule {
    pub id: RuleId,
    pub rule: RuleIndex,
    pub score: ScoreId,
    /// The `if` guards and the `where` filter, tested when the event happens.
    pub cond: Option<CodeRef>,
    pub points: Points,
    /// `each`: points per matching event (up to `max`); otherwise once.
    pub each: bool,
    /// `expires after`: only events younger than this many seconds count.
    pub expires: Option<u32>,
    /// `count >= N within D`.
    pub window: Option<Window>,
    /// `within D of TYPE [where …]`: fires only after an earlier event of that type.
    pub prior: Option<Prior>,
    /// `up to N per D`.
    pub per: Option<PerCap>,
    /// `distinct PROP`: one award per value of the event's property.
    pub distinct: Option<FieldId>,
    /// `reset SCORE`: the rule gives no points; a matching event starts every other event
    /// rule of `score` afresh.
    pub reset: bool,
    /// `decay P% every D` (the rule's own, or its score's).
    pub decay: Option<Decay>,
}

impl EventRule {
    /// Whether the rule's contribution changes with time alone (expiry, decay): such rules
    /// are evaluated at every instant instead of cached.
    pub fn is_timed(&self) -> bool {
        self.expires.is_some() || self.decay.is_some()
    }
}

/// `decay P% every D`: an award of `x` made at `t` is worth `trunc(x × (1 − P/100)^k)`
/// at `now`, `k = floor((now − t) / D)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decay {
    /// 1–99.
    pub percent: u8,
    pub seconds: u32,
}

/// `after inactive for D (add|subtract) N [every E] [max M]`: at `last event + D` (and
/// `+ D + E`, `+ D + 2E`, … with `every`) while no event arrives, the rule awards its
/// points; they are kept. `max` bounds the rule's total.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimeRule {
    pub id: RuleId,
    pub rule: RuleIndex,
    pub score: ScoreId,
    /// Constant points.
    pub points: Points,
    pub delay: u32,
    pub every: Option<u32>,
}

/// `within D of TYPE [where COND]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prior {
    /// Case-folded.
    pub event_type: String,
    /// Tested on the earlier event.
    pub cond: Option<CodeRef>,
    pub seconds: u32,
}

/// `up to N per D`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PerCap {
    pub points: u32,
    pub seconds: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub count: u32,
    /// `within D` in seconds, or [`LIFETIME`].
    pub seconds: u32,
}

/// The `seconds` of a window written without `within` (`count >= N`): longer than any
/// duration the language accepts (100 years), so every matching event a lead ever had
/// falls inside it.
pub const LIFETIME: u32 = u32::MAX;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventType {
    pub name: String,
    pub rules: Vec<u32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GradeDef {
    pub name: String,
    /// `None` for `otherwise`.
    pub cond: Option<CodeRef>,
    /// Hysteresis: a lead in this grade stays in it (its own condition aside) until this
    /// holds. Never on `otherwise`.
    pub until: Option<CodeRef>,
    pub line: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TagDef {
    pub name: String,
    pub cond: CodeRef,
    pub line: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RuleInfo {
    pub line: u32,
    /// The rule as written (one line, comments removed).
    pub text: String,
    /// `ask "TEXT"`: an open question while the rule gives nothing.
    pub ask: Option<String>,
}

impl Program {
    /// Encodes the program: header, then the postcard body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let body = postcard::to_stdvec(self).unwrap_or_default();
        let mut out = Vec::with_capacity(HEADER_LEN + body.len());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&Sha256::digest(&body));
        out.extend_from_slice(&body);
        out
    }

    /// Decodes and verifies a program. Any byte string gives a program or an error, never
    /// a panic; a program that loads satisfies every invariant the VM relies on.
    pub fn from_bytes(bytes: &[u8]) -> Result<Program, VerifyError> {
        if bytes.len() < HEADER_LEN {
            return Err(VerifyError::Truncated);
        }
        if bytes[0..4] != MAGIC {
            return Err(VerifyError::BadMagic);
        }
        let version = u16::from_le_bytes([bytes[4], bytes[5]]);
        if version != FORMAT_VERSION {
            return Err(VerifyError::UnsupportedVersion {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let len = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
        let body = &bytes[HEADER_LEN..];
        if len > MAX_BODY_LEN || body.len() != len {
            return Err(VerifyError::Truncated);
        }
        if Sha256::digest(body)[..] != bytes[12..44] {
            return Err(VerifyError::Checksum);
        }
        let program: Program =
            postcard::from_bytes(body).map_err(|e| VerifyError::Decode(e.to_string()))?;
        verify(&program)?;
        Ok(program)
    }

    /// The program's identity: sha256 of its encoded body. Stored lead state is tagged
    /// with it; a lead whose tag differs is rebuilt from its events.
    pub fn hash(&self) -> [u8; 32] {
        let body = postcard::to_stdvec(self).unwrap_or_default();
        Sha256::digest(&body).into()
    }

    /// What the program means, apart from where its source put it: the hash of the
    /// program with its source hash and every line number cleared. `leadscore fmt`
    /// keeps it (its tests check), as any change of layout alone does.
    pub fn meaning_hash(&self) -> [u8; 32] {
        let mut p = self.clone();
        p.source_hash = [0; 32];
        p.rules.iter_mut().for_each(|r| r.line = 0);
        p.scores.iter_mut().for_each(|s| s.line = 0);
        p.grades.iter_mut().for_each(|g| g.line = 0);
        p.tags.iter_mut().for_each(|t| t.line = 0);
        p.channels.iter_mut().for_each(|c| c.line = 0);
        p.notifies.iter_mut().for_each(|n| n.line = 0);
        p.assigns.iter_mut().for_each(|a| a.line = 0);
        p.plans.iter_mut().for_each(|x| x.line = 0);
        p.overdue_tags.iter_mut().for_each(|o| o.line = 0);
        if let Some(t) = p.total.as_mut() {
            t.line = 0;
        }
        p.hash()
    }

    /// The hash as lowercase hex.
    pub fn hash_hex(&self) -> String {
        hex(&self.hash())
    }

    /// The event rules that run for an event type (already case-folded).
    pub fn rules_for(&self, event_type: &str) -> &[u32] {
        match self
            .event_types
            .binary_search_by(|t| t.name.as_str().cmp(event_type))
        {
            Ok(i) => &self.event_types[i].rules,
            Err(_) => &[],
        }
    }

    pub fn score_index(&self, name: &str) -> Option<ScoreId> {
        self.scores
            .iter()
            .position(|s| s.name == name)
            .map(|i| ScoreId(i as u32))
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
