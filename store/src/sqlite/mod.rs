//! The embedded store: one SQLite file in WAL mode with group commit.
//!
//! One writer thread owns the write connection. Commits queue to it; it takes every
//! queued commit into one transaction (each in its own savepoint, so one conflicting lead
//! does not fail the others), commits with `synchronous=FULL`, and only then answers each
//! caller. Under load many requests share one fsync, which is what lets a machine that
//! manages a few thousand fsyncs a second take many more events. Reads use their own
//! connections and never wait for the writer (WAL).

mod joins;
mod leads;
mod outbox;

use joins::{event_rows, track};

use super::*;
use rusqlite::{params, Connection, ErrorCode, OptionalExtension, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};

const SCHEMA_VERSION: i64 = 5;
/// The most commits that share one transaction.
const MAX_GROUP: usize = 2048;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS leads (
    key         TEXT PRIMARY KEY,
    version     INTEGER NOT NULL,
    state       TEXT NOT NULL,
    grade       TEXT,
    score       INTEGER NOT NULL,
    scores      TEXT NOT NULL,
    next_change INTEGER,
    updated_at  INTEGER NOT NULL,
    program     TEXT NOT NULL DEFAULT '',
    ruleset     TEXT NOT NULL DEFAULT '',
    created_at  INTEGER,
    tags        TEXT NOT NULL DEFAULT '[]',
    owner       TEXT,
    pool        INTEGER NOT NULL DEFAULT 0,
    deadline    INTEGER,
    followup_at INTEGER,
    overdue     INTEGER NOT NULL DEFAULT 0,
    company     TEXT
);
CREATE INDEX IF NOT EXISTS leads_by_grade ON leads (grade, score DESC, key);
CREATE INDEX IF NOT EXISTS leads_by_score ON leads (score DESC, key);
CREATE INDEX IF NOT EXISTS leads_due ON leads (next_change) WHERE next_change IS NOT NULL;
CREATE INDEX IF NOT EXISTS leads_by_owner ON leads (owner, score DESC, key) WHERE owner IS NOT NULL;
CREATE INDEX IF NOT EXISTS leads_by_deadline ON leads (deadline, key) WHERE deadline IS NOT NULL;
CREATE INDEX IF NOT EXISTS leads_by_updated ON leads (updated_at DESC, key);
CREATE INDEX IF NOT EXISTS leads_by_company ON leads (company, score DESC, key) WHERE company IS NOT NULL;
CREATE TABLE IF NOT EXISTS lead_marks (
    mark TEXT NOT NULL,
    lead TEXT NOT NULL,
    PRIMARY KEY (mark, lead)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS lead_marks_by_lead ON lead_marks (lead);
CREATE TABLE IF NOT EXISTS score_history (
    lead TEXT NOT NULL,
    kind TEXT NOT NULL,
    slot INTEGER NOT NULL,
    at   INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (lead, kind, slot)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS desk (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL,
    body    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    lead TEXT NOT NULL,
    id   TEXT NOT NULL,
    at   INTEGER NOT NULL,
    seq  INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (lead, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS transitions (
    n    INTEGER PRIMARY KEY,
    lead TEXT NOT NULL,
    at   INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS transitions_by_lead ON transitions (lead, n);
CREATE TABLE IF NOT EXISTS erasures (
    key_sha256  TEXT NOT NULL,
    at          INTEGER NOT NULL,
    events      INTEGER NOT NULL,
    transitions INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS pointers (
    kind    TEXT NOT NULL,
    key     TEXT NOT NULL,
    lead    TEXT NOT NULL,
    pending INTEGER NOT NULL,
    at      INTEGER NOT NULL,
    PRIMARY KEY (kind, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS pointers_by_lead ON pointers (lead);
CREATE TABLE IF NOT EXISTS outbox (
    lead       TEXT NOT NULL,
    id         TEXT NOT NULL,
    channel    TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    body       TEXT NOT NULL,
    status     TEXT NOT NULL,
    attempts   INTEGER NOT NULL,
    next_at    INTEGER NOT NULL,
    last_error TEXT,
    PRIMARY KEY (lead, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS outbox_by_status ON outbox (status, next_at, id);
CREATE TABLE IF NOT EXISTS visitor_events (
    visitor TEXT NOT NULL,
    id      TEXT NOT NULL,
    at      INTEGER NOT NULL,
    seq     INTEGER NOT NULL,
    body    TEXT NOT NULL,
    PRIMARY KEY (visitor, id)
) WITHOUT ROWID;
";

/// `pointers.kind` of a visitor linked to a lead, and of a lead merged into another.
const VISITOR: &str = "visitor";
const LEAD: &str = "lead";

/// A write with its JSON already encoded (by the caller's task, not the writer thread).
struct Encoded {
    lead: String,
    expect: Option<u64>,
    state: String,
    grade: Option<String>,
    score: i64,
    scores: String,
    next_change: Option<i64>,
    updated_at: i64,
    program: String,
    ruleset: String,
    created_at: Option<i64>,
    tags: String,
    owner: Option<String>,
    pool: bool,
    deadline: Option<i64>,
    followup_at: Option<i64>,
    overdue: bool,
    company: Option<String>,
    marks: Option<Vec<String>>,
    /// at, minute slot, body.
    history: Option<(i64, i64, String)>,
    /// at, day slot, body.
    day_point: Option<(i64, i64, String)>,
    /// expect, body.
    desk: Option<(Option<u64>, String)>,
    events: Vec<EventRow>,
    transitions: Vec<(i64, String)>,
    /// id, channel, created_at, body.
    notes: Vec<(String, String, i64, String)>,
}

impl Encoded {
    fn new(w: Write) -> Result<Encoded, StoreError> {
        Ok(Encoded {
            state: super::encode_state(&w.lead, &w.state)?,
            grade: w.summary.grade,
            score: w.summary.score,
            scores: serde_json::to_string(&w.summary.scores).unwrap_or_default(),
            next_change: w.summary.next_change,
            updated_at: w.summary.updated_at,
            program: w.summary.program,
            ruleset: w.summary.ruleset,
            created_at: w.summary.created_at,
            tags: serde_json::to_string(&w.summary.tags).unwrap_or_default(),
            owner: w.summary.owner,
            pool: w.summary.pool,
            deadline: w.summary.deadline,
            followup_at: w.summary.followup_at,
            overdue: w.summary.overdue,
            company: w.summary.company,
            marks: w.marks.map(|m| m.new),
            history: w.history.map(|p| (p.at, history_slots(p.at).0, p.text())),
            day_point: w.day_point.map(|p| (p.at, history_slots(p.at).1, p.text())),
            desk: w.desk.map(|d| (d.expect, d.record.text())),
            events: event_rows(w.events),
            transitions: w
                .transitions
                .into_iter()
                .map(|t| (t.at, t.text()))
                .collect(),
            notes: w
                .notifications
                .into_iter()
                .map(|n| (n.id, n.channel, n.created_at, n.body.to_string()))
                .collect(),
            lead: w.lead,
            expect: w.expect,
        })
    }
}

/// An event as its columns: id, at, seq, body.
type EventRow = (String, i64, i64, String);

/// What the writer thread does for one caller.
enum Op {
    Commit(Box<Encoded>),
    /// An anonymous visitor's events, stored unless the visitor is linked.
    Track {
        visitor: String,
        events: Vec<EventRow>,
    },
}

enum Done {
    Committed,
    Tracked(Tracked),
}

struct Job {
    op: Op,
    reply: tokio::sync::oneshot::Sender<Result<Done, StoreError>>,
}

pub struct SqliteStore {
    path: PathBuf,
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    checkpointer: Mutex<Option<(mpsc::Sender<()>, std::thread::JoinHandle<()>)>>,
    readers: Arc<Mutex<Vec<Connection>>>,
    /// At most `READERS` reads at once, so at most that many read connections (and their
    /// page caches) ever exist.
    read_permits: Arc<tokio::sync::Semaphore>,
}

/// Read connections kept; reads past these wait for one (they are short: one lead, one
/// page of a listing).
const READERS: usize = 4;
/// Page cache per connection, in KiB: the writer's holds the indexes' hot pages; a
/// reader's is smaller. Together they bound the store's memory however large the file
/// grows (docs/performance.md, "Load and soak").
const WRITER_CACHE_KIB: i64 = 64 * 1024;
const READER_CACHE_KIB: i64 = 8 * 1024;
/// The log's size past which it is started over, not just copied back (`write_loop`).
const WAL_LIMIT_BYTES: u64 = 16 << 20;

fn failed(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn sql_error(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            StoreError::Unavailable(e.to_string())
        }
        _ => failed(e),
    }
}

fn connect(path: &Path, cache_kib: i64) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)
        .map_err(|e| failed(format!("cannot open {}: {e}", path.display())))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(sql_error)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(sql_error)?;
    // In WAL mode FULL syncs the log on every commit: a commit that returned survives a
    // power cut.
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(sql_error)?;
    // Checkpoints run on their own thread (see `checkpoint_loop`), never inline in a
    // commit.
    conn.pragma_update(None, "wal_autocheckpoint", 0)
        .map_err(sql_error)?;
    conn.pragma_update(None, "cache_size", -cache_kib)
        .map_err(sql_error)?;
    // A log longer than this is cut back to it when it starts over.
    conn.pragma_update(None, "journal_size_limit", WAL_LIMIT_BYTES as i64)
        .map_err(sql_error)?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        let conn = connect(&path, WRITER_CACHE_KIB)?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(sql_error)?;
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(sql_error)?;
        if tables > 0 && version == 1 {
            // Version 2 adds the rules that computed each lead's summary.
            conn.execute_batch(
                "BEGIN;
                 ALTER TABLE leads ADD COLUMN program TEXT NOT NULL DEFAULT '';
                 ALTER TABLE leads ADD COLUMN ruleset TEXT NOT NULL DEFAULT '';
                 PRAGMA user_version = 2;
                 COMMIT;",
            )
            .map_err(sql_error)?;
        }
        if tables > 0 && (1..=4).contains(&version) {
            // Version 5 adds the sales desk's columns (SCHEMA adds its tables and indexes).
            conn.execute_batch(
                "BEGIN;
                 ALTER TABLE leads ADD COLUMN created_at INTEGER;
                 ALTER TABLE leads ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
                 ALTER TABLE leads ADD COLUMN owner TEXT;
                 ALTER TABLE leads ADD COLUMN pool INTEGER NOT NULL DEFAULT 0;
                 ALTER TABLE leads ADD COLUMN deadline INTEGER;
                 ALTER TABLE leads ADD COLUMN followup_at INTEGER;
                 ALTER TABLE leads ADD COLUMN overdue INTEGER NOT NULL DEFAULT 0;
                 ALTER TABLE leads ADD COLUMN company TEXT;
                 COMMIT;",
            )
            .map_err(sql_error)?;
        }
        // Versions 3 (pointers, visitor_events) and 4 (outbox) add tables only: SCHEMA
        // creates them.
        if tables > 0 && !(1..=SCHEMA_VERSION).contains(&version) {
            return Err(failed(format!(
                "{} has schema version {version}; this leadscore reads version {SCHEMA_VERSION}",
                path.display()
            )));
        }
        conn.execute_batch(SCHEMA).map_err(sql_error)?;
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(sql_error)?;
        let (tx, rx) = mpsc::channel();
        let mut wal = path.clone().into_os_string();
        wal.push("-wal");
        let wal = PathBuf::from(wal);
        let writer = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || write_loop(conn, rx, wal))
            .map_err(failed)?;
        let (stop, stopped) = mpsc::channel();
        let checkpoints = connect(&path, 1024)?;
        let checkpointer = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || checkpoint_loop(checkpoints, stopped))
            .map_err(failed)?;
        Ok(SqliteStore {
            path,
            jobs: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
            checkpointer: Mutex::new(Some((stop, checkpointer))),
            readers: Arc::new(Mutex::new(Vec::new())),
            read_permits: Arc::new(tokio::sync::Semaphore::new(READERS)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops taking commits, waits for queued ones to be durable and closes the writer.
    pub fn close(&self) {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = h.join();
        }
        if let Some((stop, h)) = self
            .checkpointer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            drop(stop);
            let _ = h.join();
        }
    }

    /// Queues an operation for the writer thread and waits until it is durable.
    async fn send(&self, op: Op) -> Result<Done, StoreError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        {
            let jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
            let Some(jobs) = jobs.as_ref() else {
                return Err(StoreError::Unavailable("the store is shutting down".into()));
            };
            jobs.send(Job { op, reply })
                .map_err(|_| StoreError::Unavailable("the writer has stopped".into()))?;
        }
        answer
            .await
            .map_err(|_| StoreError::Backend("the writer stopped before answering".into()))?
    }

    /// Runs `f` in one immediate transaction on a connection of its own, for the rare
    /// writes that are not group-committed (erasure, links, merges); SQLite serialises it
    /// with the writer thread's commits. Committed only if `f` succeeds.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.read(move |c| {
            let tx = rusqlite::Transaction::new_unchecked(c, TransactionBehavior::Immediate)
                .map_err(sql_error)?;
            let out = f(&tx)?;
            tx.commit().map_err(sql_error)?;
            Ok(out)
        })
        .await
    }

    /// Runs `f` on a read connection on the blocking pool.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let pool = self.readers.clone();
        let path = self.path.clone();
        let permit = self
            .read_permits
            .clone()
            .acquire_owned()
            .await
            .map_err(failed)?;
        tokio::task::spawn_blocking(move || {
            let conn = pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let conn = match conn {
                Some(c) => c,
                None => connect(&path, READER_CACHE_KIB)?,
            };
            let out = f(&conn);
            pool.lock().unwrap_or_else(|p| p.into_inner()).push(conn);
            drop(permit);
            out
        })
        .await
        .map_err(failed)?
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.close();
    }
}

/// Copies the log back into the database every 200 ms on its own connection. A passive
/// checkpoint never blocks the writer, so commits do not wait behind it (they did when
/// SQLite checkpointed inline, at the end of the commit that filled the log).
fn checkpoint_loop(conn: Connection, stop: mpsc::Receiver<()>) {
    while let Err(mpsc::RecvTimeoutError::Timeout) =
        stop.recv_timeout(std::time::Duration::from_millis(200))
    {
        checkpoint(&conn, "PASSIVE");
    }
    checkpoint(&conn, "TRUNCATE");
}

fn checkpoint(conn: &Connection, mode: &str) {
    if let Err(e) = conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |_| Ok(())) {
        tracing::warn!("checkpoint failed: {e}");
    }
}

/// Commits jobs in groups, one transaction each, answering each job after its group is
/// durable.
///
/// Passive checkpoints alone never let the log start over while commits keep coming: by
/// the time one has copied the log, the writer has appended to it, so the log — and the
/// index SQLite maps into memory beside it — would grow for as long as the load lasts
/// (gigabytes a minute at full speed). So once the log passes `WAL_LIMIT_BYTES`, the
/// writer itself, between two groups (it holds the only write turn, so it never waits for
/// one), restarts it: a `RESTART` checkpoint waits for the reads in flight and copies what
/// the passive checkpoints have not, and the next group writes the log from its start
/// again (`journal_size_limit` cuts a longer file back). Commits queue meanwhile and go in
/// the next group. Restarting costs about as little as not checkpointing at all in
/// `benches/ingest.rs`; truncating the file instead cost a quarter of the throughput, each
/// commit's sync then also growing the file.
fn write_loop(mut conn: Connection, rx: mpsc::Receiver<Job>, wal: PathBuf) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let results = commit_group(&mut conn, &jobs);
        for (job, r) in jobs.into_iter().zip(results) {
            let _ = job.reply.send(r);
        }
        if std::fs::metadata(&wal).is_ok_and(|m| m.len() > WAL_LIMIT_BYTES) {
            checkpoint(&conn, "RESTART");
        }
    }
}

fn commit_group(conn: &mut Connection, jobs: &[Job]) -> Vec<Result<Done, StoreError>> {
    let all = |e: StoreError| jobs.iter().map(|_| Err(e.clone())).collect::<Vec<_>>();
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(t) => t,
        Err(e) => return all(sql_error(e)),
    };
    // Each write is checked (version, events absent) before anything is written, so a
    // refused write leaves nothing behind and needs no savepoint of its own. Writes in one
    // group for the same lead see each other: the second finds the version moved.
    let mut results = Vec::with_capacity(jobs.len());
    for job in jobs {
        let r = match &job.op {
            Op::Commit(w) => check(&tx, w)
                .and_then(|()| apply(&tx, w))
                .map(|()| Done::Committed),
            Op::Track { visitor, events } => track(&tx, visitor, events).map(Done::Tracked),
        };
        if let Err(StoreError::Backend(_) | StoreError::Unavailable(_)) = &r {
            // A write failed part way: nothing of this group may commit.
            let e = r.err().unwrap_or(StoreError::Conflict);
            drop(tx.rollback());
            return all(e);
        }
        results.push(r);
    }
    if let Err(e) = tx.commit() {
        return all(sql_error(e));
    }
    crate::metric::committed(jobs.len());
    results
}

/// The pointer of a key that joined a lead.
fn pointer(c: &Connection, kind: &str, key: &str) -> Result<Option<Pointer>, StoreError> {
    c.prepare_cached("SELECT lead, pending FROM pointers WHERE kind = ?1 AND key = ?2")
        .map_err(sql_error)?
        .query_row([kind, key], |r| {
            Ok(Pointer {
                lead: r.get(0)?,
                pending: r.get::<_, i64>(1)? != 0,
            })
        })
        .optional()
        .map_err(sql_error)
}

/// Events as stored, from `SELECT id, at, seq, body`.
fn read_events(
    stmt: &mut rusqlite::CachedStatement<'_>,
    key: &str,
) -> Result<Vec<StoredEvent>, StoreError> {
    let rows = stmt
        .query_map([key], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get(1)?,
                r.get::<_, i64>(2)?,
                r.get(3)?,
            ))
        })
        .map_err(sql_error)?;
    let mut out = Vec::new();
    for row in rows {
        let (id, at, seq, body) = row.map_err(sql_error)?;
        out.push(StoredEvent {
            id,
            at,
            seq: seq as u64,
            json: json_column(body)?,
        });
    }
    Ok(out)
}

/// Whether a write may go ahead: the version it read is current and none of its events
/// is stored yet.
fn check(tx: &Connection, w: &Encoded) -> Result<(), StoreError> {
    let version: Option<i64> = tx
        .prepare_cached("SELECT version FROM leads WHERE key = ?1")
        .map_err(sql_error)?
        .query_row([&w.lead], |r| r.get(0))
        .optional()
        .map_err(sql_error)?;
    if version.map(|v| v as u64) != w.expect {
        return Err(StoreError::Conflict);
    }
    if let Some((expect, _)) = &w.desk {
        let desk: Option<i64> = tx
            .prepare_cached("SELECT version FROM desk WHERE id = 1")
            .map_err(sql_error)?
            .query_row([], |r| r.get(0))
            .optional()
            .map_err(sql_error)?;
        if desk.map(|v| v as u64) != *expect {
            return Err(StoreError::Conflict);
        }
    }
    if w.expect.is_some() {
        let mut exists = tx
            .prepare_cached("SELECT 1 FROM events WHERE lead = ?1 AND id = ?2")
            .map_err(sql_error)?;
        for e in &w.events {
            if exists.exists(params![w.lead, e.0]).map_err(sql_error)? {
                return Err(StoreError::Conflict);
            }
        }
    }
    Ok(())
}

/// One lead's write, after [`check`]. An error here fails the whole group.
fn apply(tx: &Connection, w: &Encoded) -> Result<(), StoreError> {
    {
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO events (lead, id, at, seq, body) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .map_err(sql_error)?;
        for e in &w.events {
            insert
                .execute(params![w.lead, e.0, e.1, e.2, e.3])
                .map_err(sql_error)?;
        }
    }
    tx.prepare_cached(
        "INSERT INTO leads (key, version, state, grade, score, scores, next_change, updated_at,
                            program, ruleset, created_at, tags, owner, pool, deadline,
                            followup_at, overdue, company)
         VALUES (?1, 1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)
         ON CONFLICT (key) DO UPDATE SET version = version + 1, state = ?2, grade = ?3,
             score = ?4, scores = ?5, next_change = ?6, updated_at = ?7, program = ?8,
             ruleset = ?9, created_at = ?10, tags = ?11, owner = ?12, pool = ?13,
             deadline = ?14, followup_at = ?15, overdue = ?16, company = ?17",
    )
    .map_err(sql_error)?
    .execute(params![
        w.lead,
        w.state,
        w.grade,
        w.score,
        w.scores,
        w.next_change,
        w.updated_at,
        w.program,
        w.ruleset,
        w.created_at,
        w.tags,
        w.owner,
        w.pool,
        w.deadline,
        w.followup_at,
        w.overdue,
        w.company
    ])
    .map_err(sql_error)?;
    if let Some(marks) = &w.marks {
        tx.prepare_cached("DELETE FROM lead_marks WHERE lead = ?1")
            .map_err(sql_error)?
            .execute([&w.lead])
            .map_err(sql_error)?;
        let mut put = tx
            .prepare_cached("INSERT OR IGNORE INTO lead_marks (mark, lead) VALUES (?1, ?2)")
            .map_err(sql_error)?;
        for m in marks {
            put.execute(params![m, w.lead]).map_err(sql_error)?;
        }
    }
    if let Some((at, minute, body)) = &w.history {
        let mut put = tx
            .prepare_cached(
                "INSERT INTO score_history (lead, kind, slot, at, body) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (lead, kind, slot) DO UPDATE SET at = ?4, body = ?5",
            )
            .map_err(sql_error)?;
        put.execute(params![w.lead, "m", minute, at, body])
            .map_err(sql_error)?;
        if let Some((day_at, day, day_body)) = &w.day_point {
            put.execute(params![w.lead, "d", day, day_at, day_body])
                .map_err(sql_error)?;
            // Once a day a lead: the minute points past the year go.
            tx.prepare_cached(
                "DELETE FROM score_history WHERE lead = ?1 AND kind = 'm' AND slot < ?2",
            )
            .map_err(sql_error)?
            .execute(params![w.lead, at - HISTORY_FINE_DAYS * DAY])
            .map_err(sql_error)?;
        }
    }
    if let Some((_, body)) = &w.desk {
        tx.prepare_cached(
            "INSERT INTO desk (id, version, body) VALUES (1, 1, ?1)
             ON CONFLICT (id) DO UPDATE SET version = version + 1, body = ?1",
        )
        .map_err(sql_error)?
        .execute([body])
        .map_err(sql_error)?;
    }
    let mut insert = tx
        .prepare_cached("INSERT INTO transitions (lead, at, body) VALUES (?1, ?2, ?3)")
        .map_err(sql_error)?;
    for t in &w.transitions {
        insert
            .execute(params![w.lead, t.0, t.1])
            .map_err(sql_error)?;
    }
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO outbox (lead, id, channel, created_at, body, status, attempts, next_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 'pending', 0, ?4) ON CONFLICT DO NOTHING",
        )
        .map_err(sql_error)?;
    for (id, channel, at, body) in &w.notes {
        insert
            .execute(params![w.lead, id, channel, at, body])
            .map_err(sql_error)?;
    }
    Ok(())
}

fn json_column(text: String) -> Result<Json, StoreError> {
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("JSON: {e}")))
}
