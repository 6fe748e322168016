//! The SQLite schema, as numbered migrations: `PRAGMA user_version` is how many have run.
//! Append only — a released migration is never edited.

/// Migration `i` takes the schema from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: plans, their subtasks, and the index of executions by session (for attributing a
    // session's tool calls to every subtask it was executing at the time).
    "
    CREATE TABLE plans (
        id          TEXT PRIMARY KEY,
        description TEXT NOT NULL,
        status      TEXT NOT NULL,
        created_ms  INTEGER NOT NULL,
        updated_ms  INTEGER NOT NULL,
        version     INTEGER NOT NULL,
        body        TEXT NOT NULL
    );
    CREATE INDEX plans_status ON plans (status, updated_ms);
    CREATE TABLE subtasks (
        plan_id TEXT NOT NULL REFERENCES plans (id) ON DELETE CASCADE,
        idx     INTEGER NOT NULL,
        state   TEXT NOT NULL,
        body    TEXT NOT NULL,
        PRIMARY KEY (plan_id, idx)
    );
    CREATE TABLE executions (
        plan_id    TEXT NOT NULL,
        idx        INTEGER NOT NULL,
        attempt    INTEGER NOT NULL,
        session    TEXT NOT NULL,
        started_ms INTEGER NOT NULL,
        ended_ms   INTEGER,
        PRIMARY KEY (plan_id, idx, attempt),
        FOREIGN KEY (plan_id, idx) REFERENCES subtasks (plan_id, idx) ON DELETE CASCADE
    );
    CREATE INDEX executions_session ON executions (session, started_ms);
    ",
];
