//! The console's rules page for `serve`: the rules file as it is on disk, and drafts
//! checked by the compiler and previewed over the stored leads (the backtest's changes).

use leadscore_http::console::{DraftCheck, DraftDiagnostic, Preview, Rulebook, RulesText};
use leadscore_service::Service;
use std::path::PathBuf;

/// How many stored leads a draft is replayed over (the preview says when there are more).
const PREVIEW_LEADS: usize = 2_000;

pub struct FileRules {
    pub path: PathBuf,
}

impl Rulebook for FileRules {
    fn source(&self) -> Option<RulesText> {
        let text = std::fs::read_to_string(&self.path).ok()?;
        let stem = crate::commands::stem(&self.path);
        let hash = leadscore_compiler::compile(&text, &stem)
            .ok()
            .map(|c| c.program.hash_hex());
        Some(RulesText {
            // The file's name: readers need not learn the server's directories.
            path: self
                .path
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            text,
            hash,
        })
    }

    fn check<'a>(
        &'a self,
        draft: &'a str,
        service: &'a Service,
    ) -> futures_util::future::BoxFuture<'a, DraftCheck> {
        Box::pin(async move {
            let stem = crate::commands::stem(&self.path);
            let text = draft.to_string();
            let compiled =
                tokio::task::spawn_blocking(move || leadscore_compiler::compile(&text, &stem))
                    .await;
            let compiled = match compiled {
                Ok(c) => c,
                Err(e) => {
                    return DraftCheck {
                        preview: Some(Err(format!("the compiler stopped: {e}"))),
                        ..DraftCheck::default()
                    }
                }
            };
            let (program, diags) = match compiled {
                Ok(c) => (Some(c.program), c.warnings),
                Err(d) => (None, d),
            };
            let index = leadscore_dsl::span::LineIndex::new(draft);
            let lines: Vec<&str> = draft.lines().collect();
            let diagnostics = diags
                .iter()
                .map(|d| {
                    let (line, column) = index.line_col(d.span.start as usize);
                    let source_line = lines.get(line - 1).copied().unwrap_or("").to_string();
                    let width = d
                        .span
                        .text(draft)
                        .chars()
                        .take_while(|&c| c != '\n')
                        .count();
                    DraftDiagnostic {
                        severity: if d.is_error() { "error" } else { "warning" },
                        code: d.code.to_string(),
                        message: d.message.clone(),
                        line,
                        column,
                        source_line,
                        width,
                        help: d.help.clone(),
                    }
                })
                .collect();
            let preview = match program {
                Some(p) => Some(preview(service, p).await),
                None => None,
            };
            DraftCheck {
                diagnostics,
                preview,
            }
        })
    }
}

/// The running rules and the draft over the first stored leads' histories.
async fn preview(
    service: &Service,
    draft: leadscore_runtime::bytecode::Program,
) -> Result<Preview, String> {
    use leadscore_store::ListQuery;
    let store = service.store();
    let listed = store
        .list(&ListQuery {
            limit: PREVIEW_LEADS + 1,
            ..ListQuery::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    let truncated = listed.len() > PREVIEW_LEADS;
    let mut events = Vec::new();
    for l in listed.iter().take(PREVIEW_LEADS) {
        for e in store.history(&l.lead).await.map_err(|e| e.to_string())? {
            let mut event = leadscore_runtime::event::Event::from_json(&e.json)
                .map_err(|err| format!("a stored event of a lead is unreadable: {err}"))?;
            event.lead = l.lead.clone();
            events.push(event);
        }
    }
    let leads = listed.len().min(PREVIEW_LEADS);
    let running = service.rules().program.clone();
    let now = service.now();
    let changes = tokio::task::spawn_blocking(move || {
        crate::backtest::preview(running, draft, events, now, 10)
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("{e:#}"))?;
    Ok(Preview {
        leads,
        truncated,
        changes,
    })
}
