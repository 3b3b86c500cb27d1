//! The API's OpenAPI 3.1 description, generated from the handlers' own annotations
//! (`#[utoipa::path]` beside each) and served as `GET /openapi.json`. tests/http.rs fails
//! when a route of the router is missing from it.

use super::*;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// Every error answer.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct ErrorBody {
    /// What went wrong, in a few words (`invalid event`, `unauthorized`, `not found`).
    error: String,
    /// Why, and what to do about it.
    detail: String,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "leadscore",
        description = "Lead scoring as code: events in, scores, grades, owners and deadlines out. See docs/http-api.md."
    ),
    paths(
        post_events,
        post_rescore,
        get_metrics,
        healthz,
        openapi_json,
        desk::list_leads,
        desk::list_views,
        desk::get_view,
        desk::get_history,
        desk::post_followup,
        desk::get_company,
        desk::get_duplicates,
        forms::post_form,
        track::post_track,
        track::pixel,
        track::snippet,
        hooks::sendgrid,
        hooks::sendgrid_inbound,
        hooks::mailchimp_ping,
        hooks::mailchimp,
        leads::get_lead,
        leads::delete_lead,
        leads::export_lead,
        leads::merge_lead,
        notes::list_notifications,
        notes::retry_notification,
        console::login_form,
        console::login,
        console::logout,
        console::switch_lang,
        console::htmx_js,
        console::app_css,
        console::pages::queue,
        console::pages::lead,
        console::pages::followup,
        console::pages::merge,
        console::pages::rules,
        console::pages::check_draft,
        console::pages::notifications,
        console::pages::retry,
    ),
    components(schemas(ErrorBody)),
    modifiers(&Schemes)
)]
pub struct ApiDoc;

struct Schemes;

impl Modify for Schemes {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let c = api.components.get_or_insert_with(Default::default);
        let bearer =
            || SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build());
        c.add_security_scheme("read_token", bearer());
        c.add_security_scheme("metrics_token", bearer());
        c.add_security_scheme(
            "signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Leadscore-Signature",
                "HMAC-SHA256 over timestamp, method, path and body (docs/security.md), with X-Leadscore-Timestamp",
            ))),
        );
        c.add_security_scheme(
            "sendgrid_signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new(
                "X-Twilio-Email-Event-Webhook-Signature",
            ))),
        );
        c.add_security_scheme(
            "url_key",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::new("key"))),
        );
    }
}

/// `GET /openapi.json`: this description (public: it holds no data).
#[utoipa::path(get, path = "/openapi.json", tag = "operations", responses((status = 200, description = "the OpenAPI 3.1 description of this API")))]
pub(crate) async fn openapi_json() -> Response {
    static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let text = DOC.get_or_init(|| ApiDoc::openapi().to_json().unwrap_or_default());
    ([(header::CONTENT_TYPE, "application/json")], text.clone()).into_response()
}
