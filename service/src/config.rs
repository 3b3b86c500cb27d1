//! Service configuration: a TOML file (`--config`, `LEADSCORE_CONFIG`) plus secrets from
//! the environment. Secrets never come from the rules file.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// Environment variables holding secrets; each has a `_PREVIOUS` twin so that a secret
/// can be rotated without downtime (both are accepted while senders switch over).
pub const ENV_WEBHOOK_SECRET: &str = "LEADSCORE_WEBHOOK_SECRET";
pub const ENV_READ_TOKEN: &str = "LEADSCORE_READ_TOKEN";

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub security: Security,
    #[serde(default)]
    pub forms: Forms,
    /// Per-form settings: `[form.contact]`.
    #[serde(default)]
    pub form: BTreeMap<String, Form>,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub hooks: Hooks,
    #[serde(default)]
    pub track: Track,
    /// How lead keys are normalised beyond trimming and lower-casing.
    #[serde(default)]
    pub keys: leadscore_runtime::keys::KeyPolicy,
    /// Delivering notifications.
    #[serde(default)]
    pub notify: Notify,
    /// Secrets the rules name (`secret "NAME"`, `signed "NAME"`, `{{secret.NAME}}`); also
    /// `LEADSCORE_SECRET_NAME` in the environment.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    /// Request templates of `http` channels: `[http.hubspot]`.
    #[serde(default)]
    pub http: BTreeMap<String, HttpTemplate>,
    /// The sales desk (docs/desk.md): teams by name, each its members' e-mails in order.
    #[serde(default)]
    pub teams: BTreeMap<String, Vec<String>>,
    /// Per person (by e-mail): the regions `assign … by FIELD` matches.
    #[serde(default)]
    pub owners: BTreeMap<String, Owner>,
    #[serde(default)]
    pub desk: DeskSettings,
    /// Named work queues: `[views.my_new_a] query = "owner=me&grade=A&created_since=7d"`.
    #[serde(default)]
    pub views: BTreeMap<String, View>,
    /// Per-person read tokens: `[readers.amy] owner = "amy@firm.example"`, `token = "…"`;
    /// `me` in a view is the reader's owner e-mail.
    #[serde(default)]
    pub readers: BTreeMap<String, Reader>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Owner {
    #[serde(default)]
    pub regions: Vec<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeskSettings {
    /// An owner holding this many active leads is skipped by assignment (0: no limit).
    pub max_active_per_owner: u64,
    /// Event types that are a follow-up of the lead by its owner (or `props.owner`).
    pub followup_events: Vec<String>,
    /// Event types that close a lead (won, lost): it stops counting against its owner and
    /// its deadline is dropped.
    pub closed_events: Vec<String>,
}

impl Default for DeskSettings {
    fn default() -> Self {
        DeskSettings {
            max_active_per_owner: 0,
            followup_events: ["sales.contacted", "call.completed", "email.sent_by_rep"]
                .map(String::from)
                .to_vec(),
            closed_events: ["deal.won", "deal.lost"].map(String::from).to_vec(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct View {
    /// `GET /leads` parameters; `owner=me` is the reader.
    pub query: String,
    /// What the view is for, shown with it.
    #[serde(default)]
    pub title: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reader {
    /// The reader's e-mail as the teams list it.
    pub owner: String,
    /// The bearer token (a secret: keep the file private, or set
    /// `LEADSCORE_READER_<NAME>` in the environment instead).
    #[serde(default)]
    pub token: Option<String>,
    /// A writer acts in the console (follow-ups, merges, retries); a reader only sees.
    #[serde(default)]
    pub writer: bool,
}

/// How the outbox is delivered (docs/notifications.md).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Notify {
    /// Off: the outbox fills, nothing is sent (another process may deliver it).
    pub enabled: bool,
    /// Attempts before a notification is given up as a dead letter.
    pub max_attempts: u32,
    /// The wait after the first failed attempt; it doubles after each, up to
    /// `max_backoff_secs`.
    pub backoff_secs: u64,
    pub max_backoff_secs: u64,
    /// One attempt's limit (connect, send, answer).
    pub timeout_secs: u64,
    /// How often `serve` looks for notifications due.
    pub poll_millis: u64,
    /// Receivers on loopback or private networks are refused unless this is set (rules
    /// name the URLs; the server must not become a way into its own network).
    pub allow_private: bool,
}

impl Default for Notify {
    fn default() -> Self {
        Notify {
            enabled: true,
            max_attempts: 8,
            backoff_secs: 30,
            max_backoff_secs: 3600,
            timeout_secs: 10,
            poll_millis: 1000,
            allow_private: false,
        }
    }
}

/// A request an `http` channel sends (a CRM's API): `{{placeholders}}` are filled from
/// the notification (docs/notifications.md).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpTemplate {
    #[serde(default = "HttpTemplate::post")]
    pub method: String,
    pub url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// JSON with placeholders, each replaced by a JSON value.
    pub body: Option<String>,
}

impl HttpTemplate {
    fn post() -> String {
        "POST".into()
    }
}

/// The tracking beacon (`POST /track`, `GET /track`, `/t.js`): public, so bounded like
/// forms; its origins are `[forms] allowed_origins`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Track {
    /// Off: `/track` and `/t.js` answer 404.
    pub enabled: bool,
    /// Event types browsers may send; `web.*` takes every type under `web.`. Anything
    /// else (a `form.submitted`, a `deal.won`) is refused: browsers are not trusted.
    pub events: Vec<String>,
    pub max_bytes: usize,
    /// Requests per client address per minute.
    pub rate_per_minute: u32,
    /// User agents whose requests are dropped unstored (case-insensitive substrings).
    pub bot_agents: Vec<String>,
    /// Whether a beacon may name its lead (`email`, the snippet's `identify`). Off: a
    /// browser names a lead only by posting a form; anyone can claim any address, so
    /// turning it on lets any page claim to be any lead.
    pub identify: bool,
}

impl Default for Track {
    fn default() -> Self {
        Track {
            enabled: true,
            events: ["page.viewed", "site.visited", "web.*"]
                .map(String::from)
                .to_vec(),
            max_bytes: 8 * 1024,
            rate_per_minute: 120,
            bot_agents: [
                "bot",
                "crawl",
                "spider",
                "slurp",
                "headless",
                "phantomjs",
                "lighthouse",
                "preview",
                "facebookexternalhit",
                "monitor",
            ]
            .map(String::from)
            .to_vec(),
            identify: false,
        }
    }
}

impl Track {
    /// Whether browsers may send events of this (case-folded) type.
    pub fn accepts(&self, event_type: &str) -> bool {
        self.events.iter().any(|p| match p.strip_suffix(".*") {
            Some(family) => event_type
                .strip_prefix(family)
                .is_some_and(|rest| rest.starts_with('.') && rest.len() > 1),
            None => p.eq_ignore_ascii_case(event_type),
        })
    }

    /// Whether a user agent is a bot's (or missing).
    pub fn is_bot(&self, agent: Option<&str>) -> bool {
        let Some(agent) = agent.filter(|a| !a.trim().is_empty()) else {
            return true;
        };
        let agent = agent.to_ascii_lowercase();
        self.bot_agents
            .iter()
            .any(|b| !b.is_empty() && agent.contains(&b.to_ascii_lowercase()))
    }
}

/// Sender adapters (`/hooks/...`); each is off until its key is set.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hooks {
    /// SendGrid's Signed Event Webhook public key (base64, as SendGrid shows it); also
    /// `LEADSCORE_SENDGRID_PUBLIC_KEY`.
    pub sendgrid_public_key: Option<String>,
    /// The key Mailchimp's webhook URL carries (`/hooks/mailchimp?key=...`); also
    /// `LEADSCORE_MAILCHIMP_KEY`.
    pub mailchimp_key: Option<String>,
    /// The key SendGrid's Inbound Parse URL carries (`/hooks/sendgrid/inbound?key=...`);
    /// also `LEADSCORE_SENDGRID_INBOUND_KEY`.
    pub sendgrid_inbound_key: Option<String>,
}

/// Bounds on every request.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// A request (its body read included) that takes longer is answered `408` and its
    /// connection's task freed: a client sending its body a byte at a time holds nothing.
    pub request_timeout_secs: u64,
    /// A connection that has not sent a whole request head (request line and headers) this
    /// long after it opened, or after its last answer, is closed: idle and trickling
    /// clients cannot hold a descriptor.
    pub header_timeout_secs: u64,
    /// Connections served at once; one more is closed as soon as it is accepted (and
    /// counted in the log), so descriptors are never exhausted.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            request_timeout_secs: 30,
            header_timeout_secs: 10,
            max_connections: 1024,
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Security {
    /// Secrets for `POST /events` signatures; any one of them verifies. None: unsigned
    /// requests are accepted (a warning is logged at start).
    #[serde(default)]
    pub webhook_secrets: Vec<String>,
    /// Bearer tokens for reads; any one of them is accepted. None: reads are open (a
    /// warning is logged at start).
    #[serde(default)]
    pub read_tokens: Vec<String>,
    /// Bearer tokens for `GET /metrics` alone (a scraper needs no lead data); read tokens
    /// are accepted there too.
    #[serde(default)]
    pub metrics_tokens: Vec<String>,
    /// Tokens that sign in to the console as a writer (docs/console.md).
    #[serde(default)]
    pub write_tokens: Vec<String>,
    /// The key console sessions are signed with; derived from the tokens when unset.
    #[serde(default)]
    pub console_secret: Option<String>,
}

/// `[forms]`: what every public form shares; a table inside it (`[forms.contact]`) is one
/// form's settings, the same as `[form.contact]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct Forms {
    /// Origins allowed to post forms (and CORS). Empty: any origin.
    pub allowed_origins: Vec<String>,
    /// A field real visitors leave empty (hidden with CSS); a post that fills it is
    /// answered as a success and not stored.
    pub honeypot: String,
    /// The field naming the lead (after `fields` mapping).
    pub lead_field: String,
    pub max_bytes: usize,
    pub max_fields: usize,
    /// Posts per client address per minute.
    pub rate_per_minute: u32,
    /// Public inputs naming one lead (form posts, identified beacons) per hour, from any
    /// addresses; 0: no bound.
    pub rate_per_lead_per_hour: u32,
    /// `[forms.NAME]` tables, moved to [`Config::form`] on load.
    #[serde(flatten)]
    pub named: BTreeMap<String, Form>,
}

impl Default for Forms {
    fn default() -> Self {
        Forms {
            allowed_origins: Vec::new(),
            honeypot: "_hp".into(),
            lead_field: "email".into(),
            max_bytes: 64 * 1024,
            max_fields: 100,
            rate_per_minute: 30,
            rate_per_lead_per_hour: 20,
            named: BTreeMap::new(),
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Form {
    /// Where to send the visitor after a post (303 See Other).
    pub redirect: Option<String>,
    /// The attributes the form may set (after renaming): a list, or a map renaming form
    /// fields to attributes (`{ "your-email" = "email" }`, whose targets it may set).
    /// Left out: the attributes the rules read and those `rename` names. The lead field
    /// always names the lead; a protected field is never taken from a form.
    pub fields: Option<FormFields>,
    /// Renames form fields to attributes.
    #[serde(default)]
    pub rename: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum FormFields {
    Allow(Vec<String>),
    Rename(BTreeMap<String, String>),
}

impl Form {
    /// The attribute a posted field sets.
    pub fn attribute<'a>(&'a self, field: &'a str) -> &'a str {
        let map = match &self.fields {
            Some(FormFields::Rename(m)) => m.get(field),
            _ => None,
        };
        map.or_else(|| self.rename.get(field))
            .map_or(field, String::as_str)
    }

    /// Whether the form may set this attribute; `read` says whether the rules read it.
    pub fn allows(&self, attribute: &str, read: impl Fn(&str) -> bool) -> bool {
        let renamed = |m: &BTreeMap<String, String>| m.values().any(|v| v == attribute);
        match &self.fields {
            Some(FormFields::Allow(list)) => list.iter().any(|f| f == attribute),
            Some(FormFields::Rename(m)) => renamed(m) || renamed(&self.rename) || read(attribute),
            None => renamed(&self.rename) || read(attribute),
        }
    }
}

impl Config {
    /// Reads a TOML file, then adds secrets from the environment.
    pub fn load(path: Option<&Path>) -> Result<Config, String> {
        let mut config = match path {
            None => Config::default(),
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| format!("cannot read {}: {e}", p.display()))?;
                Config::parse(&text).map_err(|e| format!("{}: {e}", p.display()))?
            }
        };
        config.add_env(|k| std::env::var(k).ok());
        Ok(config)
    }

    /// Reads the TOML text of a configuration (no environment).
    pub fn parse(text: &str) -> Result<Config, String> {
        let mut config: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        config.gather_forms()?;
        Ok(config)
    }

    /// Moves `[forms.NAME]` tables beside `[form.NAME]`; a form configured in both is an
    /// error.
    pub fn gather_forms(&mut self) -> Result<(), String> {
        for (name, form) in std::mem::take(&mut self.forms.named) {
            if self.form.contains_key(&name) {
                return Err(format!(
                    "form `{name}` is configured twice ([form.{name}] and [forms.{name}])"
                ));
            }
            self.form.insert(name, form);
        }
        Ok(())
    }

    /// Adds the secrets found in the environment (through `get`).
    pub fn add_env(&mut self, get: impl Fn(&str) -> Option<String>) {
        let add = |list: &mut Vec<String>, name: &str| {
            for key in [name.to_string(), format!("{name}_PREVIOUS")] {
                if let Some(v) = get(&key).filter(|v| !v.trim().is_empty()) {
                    if !list.contains(&v) {
                        list.push(v);
                    }
                }
            }
        };
        add(&mut self.security.webhook_secrets, ENV_WEBHOOK_SECRET);
        add(&mut self.security.read_tokens, ENV_READ_TOKEN);
        add(&mut self.security.metrics_tokens, "LEADSCORE_METRICS_TOKEN");
        add(&mut self.security.write_tokens, "LEADSCORE_WRITE_TOKEN");
        if let Some(v) = get("LEADSCORE_CONSOLE_SECRET").filter(|v| !v.trim().is_empty()) {
            self.security.console_secret = Some(v);
        }
        for (name, reader) in self.readers.iter_mut() {
            let key = format!("LEADSCORE_READER_{}", name.to_uppercase().replace('-', "_"));
            if let Some(v) = get(&key).filter(|v| !v.trim().is_empty()) {
                reader.token = Some(v);
            }
        }
        let set = |slot: &mut Option<String>, name: &str| {
            if let Some(v) = get(name).filter(|v| !v.trim().is_empty()) {
                *slot = Some(v);
            }
        };
        set(
            &mut self.hooks.sendgrid_public_key,
            "LEADSCORE_SENDGRID_PUBLIC_KEY",
        );
        set(&mut self.hooks.mailchimp_key, "LEADSCORE_MAILCHIMP_KEY");
        // Secrets for channels, as one JSON object (one deployment parameter holds them
        // all); `LEADSCORE_SECRET_<NAME>` are read when a notification needs them.
        if let Some(json) = get("LEADSCORE_SECRETS").filter(|v| !v.trim().is_empty()) {
            match serde_json::from_str::<BTreeMap<String, String>>(&json) {
                Ok(map) => self.secrets.extend(map),
                Err(e) => tracing::error!(
                    "LEADSCORE_SECRETS is not a JSON object of texts ({e}): ignored"
                ),
            }
        }
        set(
            &mut self.hooks.sendgrid_inbound_key,
            "LEADSCORE_SENDGRID_INBOUND_KEY",
        );
    }
}
