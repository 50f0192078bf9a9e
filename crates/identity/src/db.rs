//! The store: one `sqlx` Any pool over SQLite (a file in the data directory) or PostgreSQL.
//! Statements are written once in the SQL both accept (`$n` placeholders, `BIGINT`, `TEXT`,
//! `ON CONFLICT`); migrations are embedded and applied at start, under an advisory lock on
//! PostgreSQL so that several nodes starting together do not race.

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

use crate::error::Result;

/// The embedded migrations, in order.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/0001_identity.sql")),
    (2, include_str!("../migrations/0002_email_verification.sql")),
    (3, include_str!("../migrations/0003_shared_documents.sql")),
];

/// Which database the URL named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite (`sqlite://path`).
    Sqlite,
    /// PostgreSQL (`postgres://…`).
    Postgres,
}

/// The pool and what it talks to.
#[derive(Clone)]
pub struct Db {
    pub(crate) pool: AnyPool,
    /// The database behind the pool.
    pub backend: Backend,
}

impl Db {
    /// Connects and applies the migrations that are missing.
    pub async fn connect(url: &str) -> Result<Db> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        };
        let mut options = AnyPoolOptions::new();
        if backend == Backend::Sqlite {
            // WAL lets readers run beside the writer; writers wait (busy timeout) instead of
            // failing.
            options = options.max_connections(8).after_connect(|conn, _| {
                Box::pin(async move {
                    use sqlx::Executor;
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                    Ok(())
                })
            });
        } else {
            options = options.max_connections(16);
        }
        let pool = options.connect(url).await?;
        let db = Db { pool, backend };
        db.migrate().await?;
        Ok(db)
    }

    async fn migrate(&self) -> Result<()> {
        use sqlx::Executor;
        let mut conn = self.pool.acquire().await?;
        if self.backend == Backend::Postgres {
            conn.execute("SELECT pg_advisory_lock(7311849)").await?;
        }
        let outcome = async {
            conn.execute(
                "CREATE TABLE IF NOT EXISTS aviary_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
            )
            .await?;
            let done: Vec<i64> = sqlx::query("SELECT version FROM aviary_migrations")
                .fetch_all(&mut *conn)
                .await?
                .iter()
                .map(|r| r.get::<i64, _>(0))
                .collect();
            for (version, sql) in MIGRATIONS {
                if done.contains(version) {
                    continue;
                }
                let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                for statement in statements(sql) {
                    tx.execute(statement.as_str()).await?;
                }
                sqlx::query("INSERT INTO aviary_migrations (version, applied_at) VALUES ($1, $2)")
                    .bind(*version)
                    .bind(crate::ids::now_ms())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                tracing::info!(version, "identity migration applied");
            }
            Ok::<_, sqlx::Error>(())
        }
        .await;
        if self.backend == Backend::Postgres {
            conn.execute("SELECT pg_advisory_unlock(7311849)").await?;
        }
        Ok(outcome?)
    }

    /// The version and body of shared document `name`.
    pub(crate) async fn document(&self, name: &str) -> Result<Option<(i64, String)>> {
        let row = sqlx::query("SELECT version, body FROM shared_documents WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| (r.get::<i64, _>(0), r.get::<String, _>(1))))
    }

    /// Replaces shared document `name` by what `change` makes of the current body, with no
    /// other writer in between (PostgreSQL: an advisory lock for the transaction; SQLite: its
    /// single writer). Returns `change`'s outcome and the new version.
    pub(crate) async fn change_document<T>(
        &self,
        name: &str,
        change: impl FnOnce(Option<&str>) -> (Option<String>, T),
    ) -> Result<(T, i64)> {
        use sqlx::Executor;
        let mut conn = self.pool.acquire().await?;
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        match self.backend {
            Backend::Postgres => {
                tx.execute("SELECT pg_advisory_xact_lock(7311850)").await?;
            }
            Backend::Sqlite => {
                // Take the write lock now, so the read below is the latest.
                tx.execute("UPDATE shared_documents SET version = version WHERE name = ''").await?;
            }
        }
        let current = sqlx::query("SELECT version, body FROM shared_documents WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| (r.get::<i64, _>(0), r.get::<String, _>(1)));
        let (body, out) = change(current.as_ref().map(|(_, b)| b.as_str()));
        let version = current.as_ref().map_or(0, |(v, _)| *v);
        let Some(body) = body else {
            tx.rollback().await?;
            return Ok((out, version));
        };
        sqlx::query(
            "INSERT INTO shared_documents (name, version, body) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET version = excluded.version, body = excluded.body",
        )
        .bind(name)
        .bind(version + 1)
        .bind(body)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((out, version + 1))
    }

    /// Runs a statement that returns nothing; the number of rows it touched.
    pub(crate) async fn exec<'q>(
        &self,
        q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> Result<u64> {
        Ok(q.execute(&self.pool).await?.rows_affected())
    }

    /// Rows of a query.
    pub(crate) async fn rows<'q>(
        &self,
        q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> Result<Vec<AnyRow>> {
        Ok(q.fetch_all(&self.pool).await?)
    }

    /// At most one row.
    pub(crate) async fn row<'q>(
        &self,
        q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> Result<Option<AnyRow>> {
        Ok(q.fetch_optional(&self.pool).await?)
    }

    /// A count from `SELECT COUNT(*) …`.
    pub(crate) async fn count<'q>(
        &self,
        q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> Result<i64> {
        Ok(q.fetch_one(&self.pool).await?.try_get::<i64, _>(0)?)
    }
}

/// The statements of a migration file: split at `;`, comment lines dropped.
fn statements(sql: &str) -> Vec<String> {
    let text: String = sql.lines().filter(|l| !l.trim_start().starts_with("--")).map(|l| format!("{l}\n")).collect();
    text.split(';').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
}

/// Reads a JSON text column (`{}` when it does not parse).
pub(crate) fn json(row: &AnyRow, col: &str) -> serde_json::Value {
    row.try_get::<String, _>(col)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_else(|| serde_json::Value::Object(Default::default()))
}

/// Reads a text column that may be NULL.
pub(crate) fn text(row: &AnyRow, col: &str) -> Option<String> {
    row.try_get::<Option<String>, _>(col).ok().flatten()
}

/// Reads a text column.
pub(crate) fn string(row: &AnyRow, col: &str) -> String {
    text(row, col).unwrap_or_default()
}

/// Reads an integer column that may be NULL.
pub(crate) fn int(row: &AnyRow, col: &str) -> Option<i64> {
    row.try_get::<Option<i64>, _>(col).ok().flatten()
}

/// Reads a 0/1 column.
pub(crate) fn flag(row: &AnyRow, col: &str) -> bool {
    int(row, col).unwrap_or(0) != 0
}
