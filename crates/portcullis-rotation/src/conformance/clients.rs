//! The client store check: what every [`ClientStore`] promises, on any store.

use std::sync::Arc;

use portcullis_core::UnixTime;
use portcullis_hash::{Purpose, TokenHash, TokenHasher};

use super::{Failure, TEST_KEY, ensure, keyring};
use crate::{ClientRecord, ClientStore, StoreError};

/// Tasks registering one client id at once in the race.
const RACERS: usize = 16;

fn random_suffix() -> Result<String, Failure> {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).map_err(|e| Failure::new(format!("getrandom: {e}")))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// Check a [`ClientStore`]: round trip of every field (including metadata with quotes, escapes
/// and non-ASCII text), duplicate ids refused, [`ClientRecord::validate`] enforced on insert and
/// on secret rotation, secret rotation and expiry, deletion, the count, and a race of 16 tasks
/// registering one id at once (exactly one succeeds, the others get
/// [`StoreError::Duplicate`]).
///
/// The store may hold other clients (a shared database): ids are random, and the count is
/// checked by difference, so nothing else may register or delete clients in it meanwhile.
///
/// # Errors
/// The first promise broken.
pub async fn client_store(store: Arc<dyn ClientStore>) -> Result<(), Failure> {
    let hasher = TokenHasher::new(keyring(TEST_KEY, None)?);
    let run = random_suffix()?;
    let before = store.count().await?;
    let secret = "s3cret-client-secret";
    let record = ClientRecord {
        client_id: format!("conformance-{run}-1"),
        secret_hash: Some(hasher.hash(Purpose::ClientSecret, secret.as_bytes())),
        client_name: Some("Démo \"app\" \\ ✓".into()),
        redirect_uris: vec![
            "https://app.example/cb".into(),
            "http://127.0.0.1/cb?x=\"1\"".into(),
        ],
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        response_types: vec!["code".into()],
        token_endpoint_auth_method: "client_secret_basic".into(),
        scope: Some("read write".into()),
        metadata: r#"{"logo_uri":"https://app.example/logo.png","note":"é\"\\\n"}"#.into(),
        created_at: UnixTime::from_micros(1_700_000_000_123_456),
        secret_expires_at: None,
    };
    store.insert(&record).await?;
    ensure!(
        matches!(store.insert(&record).await, Err(StoreError::Duplicate)),
        "a second insert of one id was not refused as a duplicate"
    );
    let got = store.get(&record.client_id).await?;
    ensure!(
        got.as_ref() == Some(&record),
        "the record read back differs from the one stored: {got:?}"
    );
    let now = UnixTime::from_secs(1_700_000_001);
    let candidates: Vec<TokenHash> = hasher
        .candidates(Purpose::ClientSecret, secret.as_bytes())
        .collect();
    let wrong: Vec<TokenHash> = hasher.candidates(Purpose::ClientSecret, b"wrong").collect();
    if let Some(got) = &got {
        ensure!(
            got.secret_matches(&candidates, now),
            "the stored secret hash does not match its secret"
        );
        ensure!(
            !got.secret_matches(&wrong, now),
            "the stored secret hash matches a wrong secret"
        );
    }
    ensure!(
        store
            .get(&format!("conformance-{run}-nobody"))
            .await?
            .is_none(),
        "an unregistered id was found"
    );

    // Invalid records are refused, and nothing is written.
    let public = ClientRecord {
        client_id: format!("conformance-{run}-2"),
        token_endpoint_auth_method: "none".into(),
        ..record.clone()
    };
    ensure!(
        matches!(store.insert(&public).await, Err(StoreError::Backend(_))),
        "a public client with a secret was not refused"
    );
    ensure!(
        store.get(&public.client_id).await?.is_none(),
        "a refused client was stored"
    );
    for bad in [String::new(), format!("conformance-{run}-\0")] {
        let invalid = ClientRecord {
            client_id: bad.clone(),
            ..record.clone()
        };
        ensure!(
            matches!(store.insert(&invalid).await, Err(StoreError::Backend(_))),
            "a client with the id {bad:?} was not refused as invalid"
        );
    }
    let public = ClientRecord {
        secret_hash: None,
        created_at: UnixTime::from_secs(1),
        client_name: None,
        scope: None,
        ..public
    };
    store.insert(&public).await?;
    ensure!(
        store.get(&public.client_id).await?.as_ref() == Some(&public),
        "a public client read back differs"
    );
    ensure!(
        store.count().await? == before + 2,
        "count is not the number of clients registered"
    );
    ensure!(
        matches!(
            store
                .set_secret(
                    &public.client_id,
                    Some(TokenHash::from_bytes([7; 32])),
                    None
                )
                .await,
            Err(StoreError::Backend(_))
        ),
        "a secret was given to a public client"
    );

    // Secret rotation with an expiry.
    let new_hash = hasher.hash(Purpose::ClientSecret, b"rotated");
    let expiry = UnixTime::from_secs(1_800_000_000);
    ensure!(
        store
            .set_secret(&record.client_id, Some(new_hash), Some(expiry))
            .await?,
        "set_secret on a registered client said it does not exist"
    );
    let got = store.get(&record.client_id).await?;
    let Some(got) = got else {
        return Err(Failure::new("a client vanished after set_secret"));
    };
    ensure!(
        got.secret_expires_at == Some(expiry)
            && got.secret_hash == Some(new_hash)
            && got.client_name == record.client_name,
        "set_secret did not replace exactly the secret and its expiry: {got:?}"
    );
    ensure!(
        !got.secret_matches(&candidates, now) && got.secret_matches(&[new_hash], now),
        "the old secret still matches, or the new one does not"
    );
    ensure!(
        !got.secret_matches(&[new_hash], expiry),
        "an expired secret matches"
    );
    ensure!(
        !store
            .set_secret(&format!("conformance-{run}-nobody"), None, None)
            .await?,
        "set_secret on an unregistered id said it exists"
    );

    // A secret removed, and its expiry with it.
    ensure!(
        store.set_secret(&record.client_id, None, None).await?,
        "set_secret(None) on a registered client said it does not exist"
    );
    let got = store.get(&record.client_id).await?;
    ensure!(
        got.as_ref()
            .is_some_and(|g| g.secret_hash.is_none() && g.secret_expires_at.is_none()),
        "set_secret(None, None) did not remove the secret and its expiry: {got:?}"
    );

    // An id with braces, spaces and non-ASCII text is stored and found as it is.
    let odd = ClientRecord {
        client_id: format!("conformance-{run}-{{odd}} id ✓"),
        ..public.clone()
    };
    store.insert(&odd).await?;
    ensure!(
        store.get(&odd.client_id).await?.as_ref() == Some(&odd),
        "a client with braces and non-ASCII text in its id read back differs"
    );
    ensure!(
        store
            .get(&format!("conformance-{run}-{{odd}} id"))
            .await?
            .is_none(),
        "a prefix of an id found its client"
    );
    ensure!(store.delete(&odd.client_id).await?, "cleanup of the odd id");

    // Deletion.
    ensure!(
        store.delete(&record.client_id).await?,
        "delete of a registered client said it did not exist"
    );
    ensure!(
        !store.delete(&record.client_id).await?,
        "a second delete said the client existed"
    );
    ensure!(
        store.get(&record.client_id).await?.is_none(),
        "a deleted client was found"
    );
    ensure!(
        store.count().await? == before + 1,
        "count did not follow a deletion"
    );
    ensure!(
        !store.set_secret(&record.client_id, None, None).await?,
        "set_secret revived a deleted client"
    );

    // A race: one id registered by many tasks at once.
    let raced = ClientRecord {
        client_id: format!("conformance-{run}-raced"),
        ..record.clone()
    };
    let mut tasks = Vec::with_capacity(RACERS);
    for _ in 0..RACERS {
        let (store, raced) = (Arc::clone(&store), raced.clone());
        tasks.push(tokio::spawn(async move { store.insert(&raced).await }));
    }
    let (mut ok, mut dup) = (0, 0);
    for t in tasks {
        match t.await {
            Ok(Ok(())) => ok += 1,
            Ok(Err(StoreError::Duplicate)) => dup += 1,
            Ok(Err(e)) => return Err(Failure::new(format!("racing insert failed: {e:?}"))),
            Err(e) => return Err(Failure::new(format!("racing task panicked: {e}"))),
        }
    }
    ensure!(
        ok == 1 && dup == RACERS - 1,
        "{RACERS} racing inserts of one id: {ok} succeeded, {dup} were duplicates"
    );
    // Leave the store as found.
    for id in [&public.client_id, &raced.client_id] {
        ensure!(store.delete(id).await?, "cleanup: {id} was not found");
    }
    ensure!(
        store.count().await? == before,
        "count is not back where it started"
    );
    Ok(())
}
