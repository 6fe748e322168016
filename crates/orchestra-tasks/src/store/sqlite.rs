//! The default store: one SQLite database file (WAL, versioned migrations). A plan is a row of
//! `plans` plus a row per subtask (its state as a column, everything else as JSON); an update
//! rewrites only the rows that changed, inside `BEGIN IMMEDIATE` — the write lock is taken
//! before the plan is read, so two sessions (or two gateways on one file) completing subtasks
//! of one plan at once run one after the other and neither overwrites the other.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::migrations::MIGRATIONS;
use super::{ExecutionWindow, PlanSummary, Store, StoreError};
use crate::error::Error;
use crate::model::{Plan, PlanStatus, StageInfo, StreamInfo, Subtask};

/// How long a writer waits for another (process) holding the database's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// How many recently used plans are kept decoded.
const CACHED_PLANS: usize = 8;

/// Plans in one SQLite file.
pub struct SqliteStore {
    path: PathBuf,
    conn: Mutex<Connection>,
    /// Recently used plans, decoded, each with the `plans.version` it was read or written at.
    /// Reading a 1,000-subtask plan's rows costs milliseconds; checking its version costs
    /// microseconds. Every write bumps the version (in any process), so a stale entry is
    /// never used. Locked only while the connection's lock is held.
    cache: Mutex<Vec<(String, i64, Plan)>>,
}

/// What `plans.body` holds: the plan's fields that are not columns or subtasks.
#[derive(Deserialize)]
struct PlanHead {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    context: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    finished_by: Option<usize>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    stages: Vec<StageInfo>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    streams: Vec<StreamInfo>,
}

impl SqliteStore {
    /// Opens (creating it and its parent directories if needed) the database at `path`, and
    /// brings its schema up to date.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Directory {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let conn = Connection::open(&path).map_err(|e| db_error(&path, e))?;
        Self::with_connection(path, conn)
    }

    /// A private database in memory (tests, one-shot runs): nothing survives the store.
    pub fn in_memory() -> Result<Self, StoreError> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(|e| db_error(&path, e))?;
        Self::with_connection(path, conn)
    }

    fn with_connection(path: PathBuf, conn: Connection) -> Result<Self, StoreError> {
        let err = |e| db_error(&path, e);
        conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
        // WAL: readers never wait for the writer; NORMAL sync is durable against a killed
        // process (the gateway's failure mode), only a power cut may lose the last commits.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(err)?;
        let store = Self {
            path,
            conn: Mutex::new(conn),
            cache: Mutex::new(Vec::new()),
        };
        store.migrate()?;
        Ok(store)
    }

    /// Where the database is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version (number of migrations applied).
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        let conn = self.lock();
        conn.pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| self.db(e))
    }

    /// Runs the migrations the database has not had, each in its own transaction (the version
    /// is read inside it, so two gateways starting at once do not both run one).
    fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.lock();
        loop {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| self.db(e))?;
            let version: i64 = tx
                .pragma_query_value(None, "user_version", |r| r.get(0))
                .map_err(|e| self.db(e))?;
            let Ok(done) = usize::try_from(version) else {
                return Err(self.newer(version));
            };
            if done > MIGRATIONS.len() {
                return Err(self.newer(version));
            }
            let Some(sql) = MIGRATIONS.get(done) else {
                return Ok(());
            };
            tx.execute_batch(sql).map_err(|e| self.db(e))?;
            tx.pragma_update(None, "user_version", version + 1)
                .map_err(|e| self.db(e))?;
            tx.commit().map_err(|e| self.db(e))?;
        }
    }

    /// `update`, with `before_commit` run after the writes and before the commit (tests use it
    /// to crash there).
    fn update_then(
        &self,
        plan_id: &str,
        change: &mut dyn FnMut(&mut Plan) -> Result<(), Error>,
        before_commit: &mut dyn FnMut(&Connection),
    ) -> Result<Plan, Error> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.db(e))?;
        let (version, before) = self
            .load_versioned(&tx, plan_id)?
            .ok_or_else(|| Error::UnknownPlan(plan_id.to_string()))?;
        let mut plan = before.clone();
        change(&mut plan)?;
        if plan.subtasks.len() != before.subtasks.len() || plan.id != before.id {
            return Err(Error::Refused(
                "internal error: an update may not add or remove subtasks".into(),
            ));
        }
        self.write_changes(&tx, &before, &plan)?;
        before_commit(&tx);
        tx.commit().map_err(|e| self.db(e))?;
        self.remember(version + 1, &plan);
        Ok(plan)
    }

    /// The plan and its version, from the cache when the version still matches.
    fn load_versioned(
        &self,
        conn: &Connection,
        plan_id: &str,
    ) -> Result<Option<(i64, Plan)>, StoreError> {
        let version: Option<i64> = conn
            .prepare_cached("SELECT version FROM plans WHERE id = ?1")
            .and_then(|mut st| st.query_row([plan_id], |r| r.get(0)).optional())
            .map_err(|e| self.db(e))?;
        let Some(version) = version else {
            return Ok(None);
        };
        {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((_, _, plan)) = cache
                .iter()
                .find(|(id, v, _)| id == plan_id && *v == version)
            {
                return Ok(Some((version, plan.clone())));
            }
        }
        let Some(plan) = self.load(conn, plan_id)? else {
            return Ok(None);
        };
        self.remember(version, &plan);
        Ok(Some((version, plan)))
    }

    /// Keeps `plan` (at `version`) as the most recently used.
    fn remember(&self, version: i64, plan: &Plan) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.retain(|(id, _, _)| *id != plan.id);
        cache.insert(0, (plan.id.clone(), version, plan.clone()));
        cache.truncate(CACHED_PLANS);
    }

    fn load(&self, conn: &Connection, plan_id: &str) -> Result<Option<Plan>, StoreError> {
        let head = conn
            .query_row(
                "SELECT description, status, created_ms, updated_ms, body FROM plans WHERE id = ?1",
                [plan_id],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, String>(4)?,
                    ))
                },
            )
            .optional()
            .map_err(|e| self.db(e))?;
        let Some((description, status, created_ms, updated_ms, body)) = head else {
            return Ok(None);
        };
        let status = PlanStatus::parse(&status)
            .ok_or_else(|| self.corrupt(plan_id, format!("unknown status \"{status}\"")))?;
        let head: PlanHead =
            serde_json::from_str(&body).map_err(|e| self.corrupt(plan_id, e.to_string()))?;
        let mut stmt = conn
            .prepare_cached("SELECT idx, body FROM subtasks WHERE plan_id = ?1 ORDER BY idx")
            .map_err(|e| self.db(e))?;
        let rows = stmt
            .query_map([plan_id], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(|e| self.db(e))?;
        let mut subtasks: Vec<Arc<Subtask>> = Vec::new();
        for row in rows {
            let (idx, body) = row.map_err(|e| self.db(e))?;
            let s: Subtask = serde_json::from_str(&body)
                .map_err(|e| self.corrupt(plan_id, format!("subtask {idx}: {e}")))?;
            if s.index != subtasks.len() || idx as usize != s.index {
                return Err(self.corrupt(plan_id, format!("subtask {idx} is out of place")));
            }
            subtasks.push(Arc::new(s));
        }
        Ok(Some(Plan {
            id: plan_id.to_string(),
            description,
            context: head.context,
            status,
            finished_by: head.finished_by,
            created_ms: created_ms as u64,
            updated_ms: updated_ms as u64,
            stages: head.stages,
            streams: head.streams,
            subtasks,
        }))
    }

    /// Writes the plan row, and the rows of the subtasks (and executions) that differ.
    fn write_changes(
        &self,
        conn: &Connection,
        before: &Plan,
        after: &Plan,
    ) -> Result<(), StoreError> {
        conn.execute(
            "UPDATE plans SET description = ?2, status = ?3, updated_ms = ?4, body = ?5,
                 version = version + 1 WHERE id = ?1",
            params![
                after.id,
                after.description,
                after.status.as_str(),
                after.updated_ms as i64,
                head_json(after),
            ],
        )
        .map_err(|e| self.db(e))?;
        for (old, new) in before.subtasks.iter().zip(&after.subtasks) {
            if !Arc::ptr_eq(old, new) && old != new {
                self.write_subtask(conn, &after.id, new, Some(old))?;
            }
        }
        Ok(())
    }

    fn write_subtask(
        &self,
        conn: &Connection,
        plan_id: &str,
        s: &Subtask,
        old: Option<&Subtask>,
    ) -> Result<(), StoreError> {
        let body = serde_json::to_string(s).expect("a subtask serializes");
        conn.prepare_cached(
            "INSERT INTO subtasks (plan_id, idx, state, body) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (plan_id, idx) DO UPDATE SET state = excluded.state, body = excluded.body",
        )
        .and_then(|mut st| st.execute(params![plan_id, s.index as i64, s.state.as_str(), body]))
        .map_err(|e| self.db(e))?;
        for (attempt, e) in s.executions.iter().enumerate() {
            let same = old
                .and_then(|o| o.executions.get(attempt))
                .is_some_and(|o| {
                    o.session == e.session
                        && o.started_ms == e.started_ms
                        && o.ended_ms == e.ended_ms
                });
            if same {
                continue;
            }
            conn.prepare_cached(
                "INSERT OR REPLACE INTO executions (plan_id, idx, attempt, session, started_ms, ended_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    plan_id,
                    s.index as i64,
                    attempt as i64,
                    e.session,
                    e.started_ms as i64,
                    e.ended_ms.map(|t| t as i64),
                ])
            })
            .map_err(|e| self.db(e))?;
        }
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while the lock was held rolled its transaction back (the `Transaction` was
        // dropped), so the connection is consistent and usable.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn db(&self, e: rusqlite::Error) -> StoreError {
        db_error(&self.path, e)
    }

    fn newer(&self, found: i64) -> StoreError {
        StoreError::Newer {
            path: self.path.display().to_string(),
            found,
            known: MIGRATIONS.len(),
        }
    }

    fn corrupt(&self, plan_id: &str, message: String) -> StoreError {
        StoreError::Corrupt {
            path: self.path.display().to_string(),
            what: format!("plan {plan_id}"),
            message,
        }
    }
}

impl Store for SqliteStore {
    fn insert(&self, plan: &Plan) -> Result<bool, StoreError> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.db(e))?;
        let inserted = tx
            .execute(
                "INSERT INTO plans (id, description, status, created_ms, updated_ms, version, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6) ON CONFLICT (id) DO NOTHING",
                params![
                    plan.id,
                    plan.description,
                    plan.status.as_str(),
                    plan.created_ms as i64,
                    plan.updated_ms as i64,
                    head_json(plan),
                ],
            )
            .map_err(|e| self.db(e))?;
        if inserted == 0 {
            return Ok(false);
        }
        for s in &plan.subtasks {
            self.write_subtask(&tx, &plan.id, s, None)?;
        }
        tx.commit().map_err(|e| self.db(e))?;
        Ok(true)
    }

    fn get(&self, plan_id: &str) -> Result<Option<Plan>, StoreError> {
        let mut conn = self.lock();
        // One read transaction: the plan row and its subtasks from the same commit.
        let tx = conn.transaction().map_err(|e| self.db(e))?;
        Ok(self.load_versioned(&tx, plan_id)?.map(|(_, plan)| plan))
    }

    fn update(
        &self,
        plan_id: &str,
        change: &mut dyn FnMut(&mut Plan) -> Result<(), Error>,
    ) -> Result<Plan, Error> {
        self.update_then(plan_id, change, &mut |_| {})
    }

    fn plans(&self, open_only: bool) -> Result<Vec<PlanSummary>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT p.id, p.description, p.status, p.created_ms, p.updated_ms,
                        (SELECT COUNT(*) FROM subtasks s WHERE s.plan_id = p.id),
                        (SELECT COUNT(*) FROM subtasks s WHERE s.plan_id = p.id AND s.state = 'completed')
                 FROM plans p WHERE (?1 = 0 OR p.status = 'open')
                 ORDER BY p.updated_ms DESC, p.id",
            )
            .map_err(|e| self.db(e))?;
        let rows = stmt
            .query_map([i64::from(open_only)], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, i64>(6)?,
                ))
            })
            .map_err(|e| self.db(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, description, status, created, updated, subtasks, completed) =
                row.map_err(|e| self.db(e))?;
            let status = PlanStatus::parse(&status)
                .ok_or_else(|| self.corrupt(&id, format!("unknown status \"{status}\"")))?;
            out.push(PlanSummary {
                id,
                description,
                status,
                created_ms: created as u64,
                updated_ms: updated as u64,
                subtasks: subtasks as usize,
                completed: completed as usize,
            });
        }
        Ok(out)
    }

    fn executions(
        &self,
        session: &str,
        from_ms: u64,
        to_ms: u64,
    ) -> Result<Vec<ExecutionWindow>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT plan_id, idx, attempt, started_ms, ended_ms FROM executions
                 WHERE session = ?1 AND started_ms <= ?3 AND (ended_ms IS NULL OR ended_ms >= ?2)
                 ORDER BY started_ms, plan_id, idx, attempt",
            )
            .map_err(|e| self.db(e))?;
        let rows = stmt
            .query_map(params![session, from_ms as i64, to_ms as i64], |r| {
                Ok(ExecutionWindow {
                    plan_id: r.get(0)?,
                    subtask: r.get::<_, i64>(1)? as usize,
                    attempt: r.get::<_, i64>(2)? as usize,
                    session: session.to_string(),
                    started_ms: r.get::<_, i64>(3)? as u64,
                    ended_ms: r.get::<_, Option<i64>>(4)?.map(|t| t as u64),
                })
            })
            .map_err(|e| self.db(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.db(e))
    }
}

/// `PlanHead`, written from a borrowed plan.
fn head_json(plan: &Plan) -> String {
    #[derive(Serialize)]
    struct Head<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        context: Option<&'a Value>,
        #[serde(skip_serializing_if = "Option::is_none")]
        finished_by: Option<usize>,
        #[serde(skip_serializing_if = "<[_]>::is_empty")]
        stages: &'a [StageInfo],
        #[serde(skip_serializing_if = "<[_]>::is_empty")]
        streams: &'a [StreamInfo],
    }
    serde_json::to_string(&Head {
        context: plan.context.as_ref(),
        finished_by: plan.finished_by,
        stages: &plan.stages,
        streams: &plan.streams,
    })
    .expect("a plan head serializes")
}

fn db_error(path: &Path, e: rusqlite::Error) -> StoreError {
    StoreError::Database {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::compile;
    use crate::model::SubtaskState;

    /// A process killed in the middle of a transaction leaves the files as they are at that
    /// moment: the database, and a WAL that may already hold the transaction's pages (SQLite
    /// spills them when its cache is full) but no commit record. Copying the files from inside
    /// the transaction and opening the copy is that crash, without a process.
    #[test]
    fn a_crash_in_the_middle_of_a_transaction_leaves_the_previous_state() {
        let dir =
            std::env::temp_dir().join(format!("orchestra-tasks-crash-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("tasks.db");
        let store = SqliteStore::open(&path).unwrap();
        let subtasks: Vec<Value> = (0..300)
            .map(|i| serde_json::json!({ "title": format!("t{i}"), "specialist": "x" }))
            .collect();
        let plan = compile(
            serde_json::from_value(serde_json::json!({ "description": "d", "subtasks": subtasks }))
                .unwrap(),
            "task-crash",
            1,
        )
        .unwrap();
        assert!(store.insert(&plan).unwrap());
        // A tiny cache, so the big transaction below spills uncommitted pages into the WAL.
        store.lock().pragma_update(None, "cache_size", 5).unwrap();
        let wal = dir.join("tasks.db-wal");
        let wal_before = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        let crash = dir.join("crash");
        std::fs::create_dir_all(&crash).unwrap();
        let mut wal_at_crash = 0;
        store
            .update_then(
                "task-crash",
                &mut |p| {
                    for i in 0..p.subtasks.len() {
                        let s = p.subtask_mut(i);
                        s.state = SubtaskState::Completed;
                        s.results = Some("r".repeat(4096));
                    }
                    Ok(())
                },
                &mut |_| {
                    std::fs::copy(&path, crash.join("tasks.db")).unwrap();
                    wal_at_crash = std::fs::copy(&wal, crash.join("tasks.db-wal")).unwrap();
                },
            )
            .unwrap();
        assert!(
            wal_at_crash > wal_before + 100_000,
            "the uncommitted transaction was on disk at the crash ({wal_before} → {wal_at_crash} bytes)"
        );
        let recovered = SqliteStore::open(crash.join("tasks.db")).unwrap();
        assert_eq!(
            recovered.get("task-crash").unwrap().unwrap(),
            plan,
            "the previous state"
        );
        let committed = store.get("task-crash").unwrap().unwrap();
        assert!(committed
            .subtasks
            .iter()
            .all(|s| s.state == SubtaskState::Completed));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
