//! Named-session lookup by (provider, auth type, name) among ~100 sessions (seed target: < 2 ms),
//! on a real database file: through the blocking API the CLI uses, and through the async API the
//! server uses (which adds the hop to the blocking pool).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use storyteller_lsp::providers::{AuthType, ProviderKind};
use storyteller_lsp::store::Store;
use storyteller_lsp::store::sessions::{self, SessionName};

fn populated_store(dir: &tempfile::TempDir) -> Store {
    let store = Store::open(dir.path().join("storyteller.db")).expect("open the store");
    store
        .blocking(|conn| {
            let tx = conn.transaction()?;
            // 7 kinds × 2 auth types × 7 names = 98 sessions.
            for kind in ProviderKind::ALL {
                for auth in [AuthType::ApiKey, AuthType::Oauth] {
                    for i in 0..7 {
                        let name = SessionName::new(format!("writer_{i:02}")).expect("valid name");
                        sessions::add(&tx, kind, auth, &name)?;
                    }
                }
            }
            tx.commit()?;
            Ok(())
        })
        .expect("populate sessions");
    store
}

fn lookup(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = populated_store(&dir);
    let name = SessionName::new("writer_05").expect("valid name");

    c.bench_function("session_lookup_blocking", |b| {
        b.iter(|| {
            let found = store
                .blocking(|conn| {
                    sessions::lookup(
                        conn,
                        ProviderKind::Scaleway,
                        AuthType::Oauth,
                        black_box(&name),
                    )
                })
                .expect("lookup");
            black_box(found.expect("session exists"))
        })
    });

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    c.bench_function("session_lookup_async", |b| {
        b.iter(|| {
            let name = name.clone();
            let found = runtime
                .block_on(store.call(move |conn| {
                    sessions::lookup(conn, ProviderKind::Scaleway, AuthType::Oauth, &name)
                }))
                .expect("lookup");
            black_box(found.expect("session exists"))
        })
    });
}

criterion_group!(benches, lookup);
criterion_main!(benches);
