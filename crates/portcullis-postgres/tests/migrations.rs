//! Migrations on a real database: up, down, up again; the schema version check; the scripts
//! run by hand as another tool would.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use portcullis_postgres::{
    MIGRATIONS, MIGRATIONS_TABLE, PostgresError, PostgresGrantStore, SCHEMA_VERSION, migrator,
};
use portcullis_rotation::conformance::{CLIENT, Harness, USER};
use portcullis_rotation::{GrantStore, StoreError};
use sqlx::{AssertSqlSafe, Executor as _, PgPool};

async fn tables(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = current_schema() ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

async fn works(store: &PostgresGrantStore) {
    let h = Harness::new(Arc::new(store.clone()) as Arc<dyn GrantStore>).unwrap();
    let (_, pair) = h.grant(USER, CLIENT).await.unwrap();
    h.refresh(&pair.refresh_token).await.unwrap();
}

fn one_line(e: &PostgresError) -> String {
    let s = e.to_string();
    assert!(!s.contains('\n'), "not one line: {s}");
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_down_up_and_the_version_check() {
    let Some(url) = common::database("up_down_up_and_the_version_check").await else {
        return;
    };
    let schema = common::TestSchema::create(&url).await;
    let store = PostgresGrantStore::connect(&url, &schema.options())
        .await
        .unwrap();
    let pool = store.pool().clone();

    // Nothing there yet: a clear refusal that names the way out.
    let e = store.check_schema().await.unwrap_err();
    assert!(matches!(e, PostgresError::SchemaMissing { .. }), "{e:?}");
    let msg = one_line(&e);
    assert!(
        msg.contains("--migrate") && msg.contains(&schema.name),
        "{msg}"
    );
    assert!(matches!(
        PostgresGrantStore::open(&url, &schema.options()).await,
        Err(PostgresError::SchemaMissing { .. })
    ));
    // The store itself answers "schema" (a 500 the operator must fix), not "unavailable".
    let h = Harness::new(Arc::new(store.clone()) as Arc<dyn GrantStore>).unwrap();
    let err = h.issue(USER, CLIENT).await.unwrap_err();
    assert!(err.message().contains("Schema"), "{err}");

    // Up.
    assert_eq!(store.migrate().await.unwrap(), SCHEMA_VERSION);
    assert_eq!(store.check_schema().await.unwrap(), SCHEMA_VERSION);
    let mut expected = vec![
        "portcullis_access_tokens",
        "portcullis_authorization_codes",
        "portcullis_clients",
        "portcullis_families",
        "portcullis_refresh_tokens",
        "portcullis_schema_version",
        MIGRATIONS_TABLE,
    ];
    expected.sort_unstable();
    assert_eq!(tables(&pool).await, expected);
    works(&store).await;
    // Running it again changes nothing.
    assert_eq!(store.migrate().await.unwrap(), SCHEMA_VERSION);

    // Down one: the clients table goes, the store says the schema is older than it needs.
    migrator().undo(&pool, 1).await.unwrap();
    let e = store.check_schema().await.unwrap_err();
    assert!(
        matches!(e, PostgresError::SchemaOutdated { found: 1, expected } if expected == SCHEMA_VERSION),
        "{e:?}"
    );
    assert!(one_line(&e).contains("--migrate"));
    assert!(
        !tables(&pool)
            .await
            .contains(&"portcullis_clients".to_owned())
    );

    // Down to nothing: only sqlx's own bookkeeping table is left.
    migrator().undo(&pool, 0).await.unwrap();
    assert!(matches!(
        store.check_schema().await,
        Err(PostgresError::SchemaMissing { .. })
    ));
    assert_eq!(tables(&pool).await, vec![MIGRATIONS_TABLE.to_owned()]);

    // Up again, and it works again.
    assert_eq!(store.migrate().await.unwrap(), SCHEMA_VERSION);
    works(&store).await;

    // A newer schema (a later release migrated this database): refused, and never migrated.
    pool.execute("UPDATE portcullis_schema_version SET version = version + 1")
        .await
        .unwrap();
    let e = store.check_schema().await.unwrap_err();
    assert!(
        matches!(e, PostgresError::SchemaTooNew { found, known } if found == i64::from(SCHEMA_VERSION) + 1 && known == SCHEMA_VERSION),
        "{e:?}"
    );
    assert!(one_line(&e).contains("newer"));
    assert!(matches!(
        store.migrate().await,
        Err(PostgresError::SchemaTooNew { .. })
    ));
    assert!(matches!(
        PostgresGrantStore::open(&url, &schema.options()).await,
        Err(PostgresError::SchemaTooNew { .. })
    ));
    assert!(matches!(StoreError::from(e), StoreError::Schema));
    schema.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_run_by_another_tool_keep_the_version_row() {
    let Some(url) = common::database("scripts_run_by_another_tool_keep_the_version_row").await
    else {
        return;
    };
    let schema = common::TestSchema::create(&url).await;
    let store = PostgresGrantStore::connect(&url, &schema.options())
        .await
        .unwrap();
    let pool = store.pool().clone();
    // As psql or another migration tool would: the scripts alone, in order, each in a
    // transaction; no sqlx bookkeeping.
    for m in MIGRATIONS {
        let mut tx = pool.begin().await.unwrap();
        tx.execute(AssertSqlSafe(m.up)).await.unwrap();
        tx.commit().await.unwrap();
    }
    assert_eq!(store.check_schema().await.unwrap(), SCHEMA_VERSION);
    assert!(!tables(&pool).await.contains(&MIGRATIONS_TABLE.to_owned()));
    works(&store).await;
    for m in MIGRATIONS.iter().rev() {
        pool.execute(AssertSqlSafe(m.down)).await.unwrap();
        let check = store.check_schema().await;
        if m.version > 1 {
            assert!(
                matches!(check, Err(PostgresError::SchemaOutdated { found, .. }) if found == i64::from(m.version) - 1)
            );
        } else {
            assert!(matches!(check, Err(PostgresError::SchemaMissing { .. })));
        }
    }
    assert!(tables(&pool).await.is_empty());
    schema.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_starting_at_once_migrate_once() {
    let Some(url) = common::database("servers_starting_at_once_migrate_once").await else {
        return;
    };
    let schema = common::TestSchema::create(&url).await;
    let mut starts = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let url = url.clone();
        let options = schema.options().with_max_connections(2);
        starts.spawn(async move {
            let store = PostgresGrantStore::connect(&url, &options).await.unwrap();
            store.migrate().await
        });
    }
    while let Some(r) = starts.join_next().await {
        assert_eq!(r.unwrap().unwrap(), SCHEMA_VERSION);
    }
    let store = PostgresGrantStore::open(&url, &schema.options())
        .await
        .unwrap();
    let applied: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT count(*) FROM {MIGRATIONS_TABLE}"
    )))
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(applied, i64::from(SCHEMA_VERSION));
    schema.drop_schema().await;
}

#[tokio::test]
async fn bad_configuration_is_one_clear_line() {
    // No database needed: these fail before connecting.
    let options = portcullis_postgres::PostgresOptions::new();
    let e = PostgresGrantStore::connect_lazy("not a url://secret-password", &options).unwrap_err();
    let msg = one_line(&e);
    assert!(!msg.contains("secret-password"), "{msg}");
    let e = PostgresGrantStore::connect_lazy(
        "postgres://u@127.0.0.1/db",
        &options.with_schema(Some("bad\"name".into())),
    )
    .unwrap_err();
    assert!(matches!(e, PostgresError::Config(_)));
}

#[tokio::test]
async fn unreachable_database_is_a_connect_error() {
    // A port nothing listens on (a closed loopback port): refused at once.
    let options = portcullis_postgres::PostgresOptions::new()
        .with_acquire_timeout(std::time::Duration::from_secs(2));
    let e = PostgresGrantStore::connect("postgres://u:pw@127.0.0.1:9/db", &options)
        .await
        .unwrap_err();
    assert!(matches!(e, PostgresError::Connect(_)), "{e:?}");
    let msg = one_line(&e);
    assert!(msg.starts_with("cannot connect to PostgreSQL"), "{msg}");
    assert!(!msg.contains("pw"), "{msg}");
}
