use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use storage::Store;

use super::*;

fn new_version(run: &str) -> NewVersion {
    NewVersion {
        task: "binary-classification".into(),
        family: "gbm".into(),
        inputs: vec![Input {
            name: "amount".into(),
            ty: "f32".into(),
            width: None,
        }],
        classes: vec!["false".into(), "true".into()],
        threshold: Some(0.5),
        feature_view: "card_activity".into(),
        feature_view_version: "abc".into(),
        feature_spec: ObjectRef {
            key: "features/card_activity/v=abc/spec.json".into(),
            sha256: "00".into(),
        },
        dataset_snapshot: "snap".into(),
        reference_profile: ObjectRef {
            key: "features/card_activity/profiles/11.parquet".into(),
            sha256: "11".into(),
        },
        training_run: run.into(),
        metrics: BTreeMap::from([("roc_auc".to_string(), 0.9)]),
        tags: BTreeMap::new(),
        joined_views: Vec::new(),
        training_table: None,
    }
}

#[tokio::test]
async fn versions_count_up_and_the_same_content_is_one_version() {
    let store = Store::memory();
    let v1 = register(&store, "fraud", b"model-1", new_version("r1"))
        .await
        .unwrap();
    assert!(matches!(&v1, Registered::Created(b) if b.version == 1));
    let again = register(&store, "fraud", b"model-1", new_version("r1-retry"))
        .await
        .unwrap();
    assert!(matches!(&again, Registered::Existing(b) if b.version == 1));
    let v2 = register(&store, "fraud", b"model-2", new_version("r2"))
        .await
        .unwrap();
    assert_eq!(v2.bundle().version, 2);
    assert_eq!(
        v2.bundle().content_hash,
        hex::encode(Sha256::digest(b"model-2"))
    );
    assert_eq!(
        store
            .get(&v2.bundle().model_key)
            .await
            .unwrap()
            .bytes
            .as_ref(),
        b"model-2"
    );
    let all = versions(&store, "fraud").await.unwrap();
    assert_eq!(
        all.iter().map(|b| b.version).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(models(&store).await.unwrap(), vec!["fraud"]);
    assert!(
        register(&store, "Bad Name", b"x", new_version("r"))
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_registrations_get_distinct_versions() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::local(dir.path()).unwrap();
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                register(
                    &store,
                    "m",
                    format!("model-{i}").as_bytes(),
                    new_version("r"),
                )
                .await
                .unwrap()
                .bundle()
                .version
            })
        })
        .collect();
    let mut got: Vec<u64> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    got.sort_unstable();
    assert_eq!(got, vec![1, 2, 3, 4, 5, 6]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_concurrent_promotions_cannot_both_win() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::local(dir.path()).unwrap();
    for i in 1..=3 {
        register(
            &store,
            "m",
            format!("model-{i}").as_bytes(),
            new_version("r"),
        )
        .await
        .unwrap();
    }
    move_alias(&store, "m", "champion", 1, Some(None), "test", "first")
        .await
        .unwrap();
    // Both expect version 1; exactly one moves the alias.
    let a = {
        let store = store.clone();
        tokio::spawn(async move {
            move_alias(&store, "m", "champion", 2, Some(Some(1)), "a", "race").await
        })
    };
    let b = {
        let store = store.clone();
        tokio::spawn(async move {
            move_alias(&store, "m", "champion", 3, Some(Some(1)), "b", "race").await
        })
    };
    let results = [a.await.unwrap(), b.await.unwrap()];
    let wins: Vec<&Alias> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(wins.len(), 1, "{results:?}");
    assert!(
        results
            .iter()
            .any(|r| matches!(r, Err(RegistryError::Conflict { .. })))
    );
    let now = alias(&store, "m", "champion").await.unwrap().unwrap();
    assert_eq!(now.version, wins[0].version);
    // Every move is in the history, in order, with who and why.
    let h = history(&store, "m", "champion").await.unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!(h[0].version, 1);
    assert_eq!(h[1].previous, Some(1));
    assert_eq!(h[1].reason, "race");
}

#[tokio::test]
async fn rollback_walks_back_through_history() {
    let store = Store::memory();
    for i in 1..=3 {
        register(
            &store,
            "m",
            format!("model-{i}").as_bytes(),
            new_version("r"),
        )
        .await
        .unwrap();
    }
    for v in 1..=3 {
        move_alias(&store, "m", "champion", v, None, "train", "promotion rule")
            .await
            .unwrap();
    }
    let r = rollback(&store, "m", "champion", "cli").await.unwrap();
    assert_eq!(
        (r.version, r.previous, r.rollback_of),
        (2, Some(3), Some(3))
    );
    let r = rollback(&store, "m", "champion", "cli").await.unwrap();
    assert_eq!(
        r.version, 1,
        "a second rollback goes further back, not to 3"
    );
    assert!(rollback(&store, "m", "champion", "cli").await.is_err());
    assert_eq!(history(&store, "m", "champion").await.unwrap().len(), 5);
    assert!(matches!(
        move_alias(&store, "m", "champion", 9, None, "x", "y").await,
        Err(RegistryError::NoSuchVersion { .. })
    ));
    assert!(matches!(
        rollback(&store, "m", "nope", "cli").await,
        Err(RegistryError::NoSuchAlias { .. })
    ));
}

#[tokio::test]
async fn a_traffic_policy_pins_the_challenger_and_any_champion_move_ends_it() {
    let store = Store::memory();
    for (i, bytes) in [b"m-1", b"m-2", b"m-3"].iter().enumerate() {
        register(&store, "fraud", *bytes, new_version(&format!("r{i}")))
            .await
            .unwrap();
    }
    move_alias(&store, "fraud", "champion", 1, None, "t", "first")
        .await
        .unwrap();
    // No challenger yet: a canary is refused, naming the alias.
    let e = set_canary(&store, "fraud", 0.1, "t").await.unwrap_err();
    assert!(e.to_string().contains("no alias 'challenger'"), "{e}");
    assert!(set_canary(&store, "fraud", 1.5, "t").await.is_err());
    move_alias(&store, "fraud", "challenger", 2, None, "t", "trained")
        .await
        .unwrap();
    let t = set_canary(&store, "fraud", 0.1, "cli").await.unwrap();
    assert_eq!(
        (t.challenger, t.canary_share, t.shadow, t.seq),
        (Some(2), 0.1, false, 1)
    );
    // Setting the same share again writes nothing.
    assert_eq!(
        set_canary(&store, "fraud", 0.1, "cli").await.unwrap().seq,
        1
    );
    let t = set_shadow(&store, "fraud", true, "cli").await.unwrap();
    assert_eq!((t.canary_share, t.shadow, t.seq), (0.1, true, 2));
    // A later challenger does not enter traffic until the policy is set again.
    move_alias(&store, "fraud", "challenger", 3, None, "t", "trained")
        .await
        .unwrap();
    assert_eq!(traffic(&store, "fraud").await.unwrap().challenger, Some(2));
    // Promotion ends the policy (a new sequence number, so the edge hears of it).
    move_alias(&store, "fraud", "champion", 2, None, "cli", "promote")
        .await
        .unwrap();
    let t = traffic(&store, "fraud").await.unwrap();
    assert_eq!((t.canary_share, t.shadow, t.seq), (0.0, false, 3));
    assert_eq!(t.active_challenger(2), None);
    // The challenger may not be the champion.
    move_alias(&store, "fraud", "challenger", 2, None, "t", "x")
        .await
        .unwrap();
    let e = set_shadow(&store, "fraud", true, "t").await.unwrap_err();
    assert!(e.to_string().contains("is the champion"), "{e}");
    // A rollback ends it too; with nothing in force, nothing is written.
    move_alias(&store, "fraud", "challenger", 3, None, "t", "x")
        .await
        .unwrap();
    set_canary(&store, "fraud", 0.5, "t").await.unwrap();
    rollback(&store, "fraud", "champion", "t").await.unwrap();
    let t = traffic(&store, "fraud").await.unwrap();
    assert_eq!((t.canary_share, t.seq), (0.0, 5));
    rollback(&store, "fraud", "challenger", "t").await.unwrap();
    assert_eq!(traffic(&store, "fraud").await.unwrap().seq, 5);
}
