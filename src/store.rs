//! The one place the CLI's one-shot commands open the SQLite store.

use anyhow::{Context, Result};
use leadscore_store::sqlite::SqliteStore;
use std::path::Path;
use std::sync::Arc;

/// Runs `work` on the SQLite store at `db` and closes the store after it, whatever the
/// outcome: the one place the one-shot commands open the database. The file must exist,
/// except for `import` (which creates it).
pub(crate) fn with_store<T, Fut>(db: &Path, work: impl FnOnce(Arc<SqliteStore>) -> Fut) -> Result<T>
where
    Fut: std::future::Future<Output = Result<T>>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let store = Arc::new(
            SqliteStore::open(db).with_context(|| format!("cannot open {}", db.display()))?,
        );
        let out = work(store.clone()).await;
        store.close();
        out
    })
}

/// [`with_store`] on a database that must already exist.
pub(crate) fn with_existing_store<T, Fut>(
    db: &Path,
    work: impl FnOnce(Arc<SqliteStore>) -> Fut,
) -> Result<T>
where
    Fut: std::future::Future<Output = Result<T>>,
{
    if !db.exists() {
        anyhow::bail!("{} does not exist", db.display());
    }
    with_store(db, work)
}
