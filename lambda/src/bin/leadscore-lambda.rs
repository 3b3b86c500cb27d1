//! `leadscore-lambda`: the HTTP API on AWS Lambda (see `leadscore_runtime::lambda`).

fn main() -> std::process::ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LEADSCORE_LOG")
        .unwrap_or_else(|_| "info".into());
    // JSON unless `LEADSCORE_LOG_FORMAT=text` (CloudWatch stamps each line itself).
    if std::env::var("LEADSCORE_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("text")) {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .without_time()
            .with_ansi(false)
            .init();
    } else {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .without_time()
            .init();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let app = match runtime.block_on(leadscore_lambda::init(|k| std::env::var(k).ok())) {
        Ok(a) => a,
        Err(e) => {
            tracing::error!("init failed: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    // One binary, three functions: the HTTP API, the scheduled sweep, and the stream
    // consumer that delivers notifications.
    let served = match std::env::var("LEADSCORE_MODE").as_deref() {
        Ok("sweep") => runtime.block_on(leadscore_lambda::run_sweep(app)),
        Ok("notify") => runtime.block_on(leadscore_lambda::run_notify(app)),
        _ => runtime.block_on(leadscore_lambda::run(leadscore_http::router(app))),
    };
    match served {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("lambda runtime failed: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
