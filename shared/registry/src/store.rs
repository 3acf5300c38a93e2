//! Registration, aliases and history over the object store.

use sha2::{Digest, Sha256};
use storage::{Created, ObjectInfo, StorageError, Store, Swapped};

use serde::{Deserialize, Serialize};

use crate::model_records::*;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Store(#[from] StorageError),
    #[error("{key}: {message}")]
    Record { key: String, message: String },
    #[error("model '{model}' has no version {version}")]
    NoSuchVersion { model: String, version: u64 },
    #[error("model '{model}' has no alias '{alias}'")]
    NoSuchAlias { model: String, alias: String },
    #[error("{0}")]
    Invalid(String),
    #[error(
        "alias '{alias}' of '{model}' moved concurrently (expected version {expected:?}, found {found:?})"
    )]
    Conflict {
        model: String,
        alias: String,
        expected: Option<u64>,
        found: Option<u64>,
    },
}

impl RegistryError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, RegistryError::Store(e) if e.is_retryable())
    }

    /// The store failed (see `StorageError::is_fault`), not the records.
    pub fn is_fault(&self) -> bool {
        matches!(self, RegistryError::Store(e) if e.is_fault())
    }
}

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

/// Result of [`register`].
#[derive(Debug, Clone, PartialEq)]
pub enum Registered {
    Created(Bundle),
    /// The same model content was registered before: that version.
    Existing(Bundle),
}

impl Registered {
    pub fn bundle(&self) -> &Bundle {
        match self {
            Registered::Created(b) | Registered::Existing(b) => b,
        }
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn check_name(kind: &str, s: &str) -> Result<()> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(RegistryError::Invalid(format!(
            "{kind} '{s}' must be 1-64 characters of a-z, 0-9, '_' or '-', starting with a letter"
        )))
    }
}

use records::keys::{alias_history_entry as history_key, model_by_hash as hash_key};

async fn read_json<T: serde::de::DeserializeOwned>(
    store: &Store,
    key: &str,
) -> Result<Option<(T, ObjectInfo)>> {
    let Some(obj) = store.get_opt(key).await? else {
        return Ok(None);
    };
    let value = serde_json::from_slice(&obj.bytes).map_err(|e| RegistryError::Record {
        key: key.into(),
        message: e.to_string(),
    })?;
    Ok(Some((value, obj.info)))
}

/// Version numbers claimed so far (committed or not), ascending.
async fn claimed_versions(store: &Store, model: &str) -> Result<Vec<u64>> {
    let prefix = model_prefix(model);
    let mut out: Vec<u64> = store
        .list(&prefix)
        .await?
        .into_iter()
        .filter_map(|i| {
            let rest = i.key.strip_prefix(&prefix)?;
            let (v, file) = rest.split_once('/')?;
            (file == "_claim").then(|| v.parse().ok()).flatten()
        })
        .collect();
    out.sort_unstable();
    Ok(out)
}

/// Registers `onnx` as the next version of `model` (or returns the version that already holds
/// the same bytes).
pub async fn register(
    store: &Store,
    model: &str,
    onnx: &[u8],
    new: NewVersion,
) -> Result<Registered> {
    check_name("model name", model)?;
    let content_hash = hex::encode(Sha256::digest(onnx));
    #[derive(Serialize, Deserialize)]
    struct ByHash {
        version: u64,
    }
    if let Some((by, _)) = read_json::<ByHash>(store, &hash_key(model, &content_hash)).await?
        && let Some(bundle) = bundle(store, model, by.version).await?
    {
        return Ok(Registered::Existing(bundle));
    }
    let claimed = claimed_versions(store, model).await?;
    // A registration of these bytes that ended halfway (a crash, a failed write) left its
    // claim, and perhaps its bundle, at the end of the list: finish that one rather than
    // leave a gap in the version numbers or register the model twice.
    let mut resumed = None;
    for &v in claimed.iter().rev() {
        if let Some(bundle) = bundle(store, model, v).await? {
            if bundle.content_hash == content_hash {
                store
                    .put_if_absent(
                        &hash_key(model, &content_hash),
                        serde_json::to_vec(&ByHash { version: v }).unwrap_or_default(),
                    )
                    .await?;
                return Ok(Registered::Existing(bundle));
            }
            break;
        }
        #[derive(Deserialize)]
        struct Claim {
            content_hash: String,
        }
        if let Some((claim, _)) =
            read_json::<Claim>(store, &version_key(model, v, "_claim")).await?
            && claim.content_hash == content_hash
        {
            resumed = Some(v);
            break;
        }
    }
    // Otherwise claim the next free number; a concurrent registration that got there first
    // makes us take the one after.
    let mut version = claimed.last().copied().unwrap_or(0) + 1;
    while resumed.is_none() {
        let claim = format!(
            "{{\"content_hash\":\"{content_hash}\",\"at\":\"{}\"}}",
            now()
        );
        match store
            .put_if_absent(&version_key(model, version, "_claim"), claim)
            .await?
        {
            Created::Created(_) => break,
            Created::AlreadyExists => version += 1,
        }
    }
    let version = resumed.unwrap_or(version);
    let model_key = version_key(model, version, "model.onnx");
    store.put(&model_key, onnx.to_vec()).await?;
    let bundle = Bundle {
        format: BUNDLE_FORMAT,
        model: model.to_string(),
        version,
        created_at: now(),
        content_hash: content_hash.clone(),
        model_key,
        task: new.task,
        family: new.family,
        inputs: new.inputs,
        classes: new.classes,
        threshold: new.threshold,
        views: if new.joined_views.is_empty() {
            Vec::new()
        } else {
            std::iter::once(ViewVersion {
                view: new.feature_view.clone(),
                version: new.feature_view_version.clone(),
            })
            .chain(new.joined_views)
            .collect()
        },
        feature_view: new.feature_view,
        feature_view_version: new.feature_view_version,
        feature_spec: new.feature_spec,
        dataset_snapshot: new.dataset_snapshot,
        reference_profile: new.reference_profile,
        training_run: new.training_run,
        metrics: new.metrics,
        tags: new.tags,
        training_table: new.training_table,
    };
    store
        .put_if_absent(
            &version_key(model, version, BUNDLE),
            serde_json::to_vec_pretty(&bundle).unwrap_or_default(),
        )
        .await?;
    store
        .put_if_absent(
            &hash_key(model, &content_hash),
            serde_json::to_vec(&ByHash { version }).unwrap_or_default(),
        )
        .await?;
    Ok(Registered::Created(bundle))
}

/// A committed version's bundle.
pub async fn bundle(store: &Store, model: &str, version: u64) -> Result<Option<Bundle>> {
    Ok(read_json(store, &version_key(model, version, BUNDLE))
        .await?
        .map(|(b, _)| b))
}

/// Every committed version of a model, ascending.
pub async fn versions(store: &Store, model: &str) -> Result<Vec<Bundle>> {
    let mut out = Vec::new();
    for v in claimed_versions(store, model).await? {
        if let Some(b) = bundle(store, model, v).await? {
            out.push(b);
        }
    }
    Ok(out)
}

/// Every model name with at least one claimed version.
pub async fn models(store: &Store) -> Result<Vec<String>> {
    let mut names: Vec<String> = store
        .list(MODELS)
        .await?
        .into_iter()
        .filter_map(|i| {
            let rest = i.key.strip_prefix(MODELS)?;
            rest.split_once('/').map(|(m, _)| m.to_string())
        })
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}

/// The alias's current state, if it was ever set.
pub async fn alias(store: &Store, model: &str, alias: &str) -> Result<Option<Alias>> {
    Ok(read_json(store, &alias_key(model, alias))
        .await?
        .map(|(a, _)| a))
}

/// Points `alias` at `version`, compare-and-swap: when `expected` is given, the move happens
/// only if the alias still points there (`Some(None)`: only if it is unset), otherwise it
/// fails with [`RegistryError::Conflict`]; without it, the move retries over concurrent moves.
/// Every move is recorded in the alias's history.
pub async fn move_alias(
    store: &Store,
    model: &str,
    alias_name: &str,
    version: u64,
    expected: Option<Option<u64>>,
    by: &str,
    reason: &str,
) -> Result<Alias> {
    move_alias_inner(
        store, model, alias_name, version, expected, by, reason, None,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn move_alias_inner(
    store: &Store,
    model: &str,
    alias_name: &str,
    version: u64,
    expected: Option<Option<u64>>,
    by: &str,
    reason: &str,
    rollback_of: Option<u64>,
) -> Result<Alias> {
    check_name("alias", alias_name)?;
    if bundle(store, model, version).await?.is_none() {
        return Err(RegistryError::NoSuchVersion {
            model: model.into(),
            version,
        });
    }
    let key = alias_key(model, alias_name);
    loop {
        let current: Option<(Alias, ObjectInfo)> = read_json(store, &key).await?;
        let found = current.as_ref().map(|(a, _)| a.version);
        if let Some(expected) = expected
            && expected != found
        {
            return Err(RegistryError::Conflict {
                model: model.into(),
                alias: alias_name.into(),
                expected,
                found,
            });
        }
        if let Some((a, _)) = &current {
            // Heal a history entry lost to a crash between a move and its record.
            record_history(store, a).await?;
        }
        let next = Alias {
            model: model.into(),
            alias: alias_name.into(),
            version,
            previous: found,
            seq: current.as_ref().map_or(1, |(a, _)| a.seq + 1),
            moved_at: now(),
            by: by.into(),
            reason: reason.into(),
            rollback_of,
        };
        let body = serde_json::to_vec_pretty(&next).unwrap_or_default();
        match store
            .compare_and_swap(&key, current.as_ref().map(|(_, info)| info), body)
            .await?
        {
            Swapped::Swapped(_) => {
                complete_move(store, &next).await?;
                return Ok(next);
            }
            Swapped::Conflict if expected.is_some() => {
                let found = alias(store, model, alias_name).await?.map(|a| a.version);
                return Err(RegistryError::Conflict {
                    model: model.into(),
                    alias: alias_name.into(),
                    expected: expected.flatten(),
                    found,
                });
            }
            Swapped::Conflict => continue,
        }
    }
}

/// What follows a move of the alias: its history entry and, for `champion`, the end of the
/// traffic experiment the policy described. Both are idempotent, so a caller that finds its
/// own move already made (its delivery redelivered after a crash right after the move) calls
/// this again to finish it.
pub async fn complete_move(store: &Store, moved: &Alias) -> Result<()> {
    record_history(store, moved).await?;
    if moved.alias == "champion" {
        end_traffic(
            store,
            &moved.model,
            &moved.by,
            &format!("champion moved to version {}", moved.version),
        )
        .await?;
    }
    Ok(())
}

async fn record_history(store: &Store, a: &Alias) -> Result<()> {
    store
        .put_if_absent(
            &history_key(&a.model, &a.alias, a.seq),
            serde_json::to_vec_pretty(a).unwrap_or_default(),
        )
        .await?;
    Ok(())
}

/// Every move of an alias, oldest first.
pub async fn history(store: &Store, model: &str, alias_name: &str) -> Result<Vec<Alias>> {
    let mut infos = store.list(&history_prefix(model, alias_name)).await?;
    infos.sort_by(|a, b| a.key.cmp(&b.key));
    let mut out = Vec::new();
    for info in infos {
        if let Some((a, _)) = read_json::<Alias>(store, &info.key).await? {
            out.push(a);
        }
    }
    Ok(out)
}

/// Moves `alias` back to the version it served before the current one, skipping versions
/// that were themselves rolled back: repeated rollbacks walk further back in history.
pub async fn rollback(store: &Store, model: &str, alias_name: &str, by: &str) -> Result<Alias> {
    let current =
        alias(store, model, alias_name)
            .await?
            .ok_or_else(|| RegistryError::NoSuchAlias {
                model: model.into(),
                alias: alias_name.into(),
            })?;
    let moves = history(store, model, alias_name).await?;
    let mut abandoned: Vec<u64> = moves.iter().filter_map(|m| m.rollback_of).collect();
    abandoned.push(current.version);
    let target = moves
        .iter()
        .rev()
        .map(|m| m.version)
        .find(|v| !abandoned.contains(v))
        .ok_or_else(|| {
            RegistryError::Invalid(format!(
                "alias '{alias_name}' of '{model}' has no earlier version to roll back to"
            ))
        })?;
    move_alias_inner(
        store,
        model,
        alias_name,
        target,
        Some(Some(current.version)),
        by,
        &format!("rollback from version {}", current.version),
        Some(current.version),
    )
    .await
}

/// The model's traffic policy (nothing in force when it was never set).
pub async fn traffic(store: &Store, model: &str) -> Result<Traffic> {
    Ok(read_json(store, &traffic_key(model))
        .await?
        .map_or_else(|| Traffic::none(model), |(t, _)| t))
}

/// Changes the traffic policy by compare-and-swap (retrying over concurrent changes):
/// `change` edits the current policy and returns whether anything changed; an unchanged
/// policy is not written (no event, no publication).
async fn update_traffic(
    store: &Store,
    model: &str,
    by: &str,
    reason: &str,
    change: impl Fn(&mut Traffic) -> Result<bool>,
) -> Result<Traffic> {
    check_name("model name", model)?;
    let key = traffic_key(model);
    loop {
        let current: Option<(Traffic, ObjectInfo)> = read_json(store, &key).await?;
        let mut next = current
            .as_ref()
            .map_or_else(|| Traffic::none(model), |(t, _)| t.clone());
        if !change(&mut next)? {
            return Ok(next);
        }
        next.seq += 1;
        next.updated_at = now();
        next.by = by.into();
        next.reason = reason.into();
        let body = serde_json::to_vec_pretty(&next).unwrap_or_default();
        match store
            .compare_and_swap(&key, current.as_ref().map(|(_, info)| info), body)
            .await?
        {
            Swapped::Swapped(_) => return Ok(next),
            Swapped::Conflict => continue,
        }
    }
}

/// The challenger a policy may route to: the `challenger` alias, which must exist and differ
/// from the champion.
async fn routable_challenger(store: &Store, model: &str) -> Result<u64> {
    let challenger = alias(store, model, "challenger")
        .await?
        .ok_or_else(|| RegistryError::NoSuchAlias {
            model: model.into(),
            alias: "challenger".into(),
        })?
        .version;
    let champion = alias(store, model, "champion").await?.map(|a| a.version);
    if champion == Some(challenger) {
        return Err(RegistryError::Invalid(format!(
            "the challenger of '{model}' (version {challenger}) is the champion: there is nothing to compare"
        )));
    }
    Ok(challenger)
}

/// Sends `share` (0..=1) of `model`'s requests to its challenger (pinned to the version the
/// `challenger` alias holds now). `0` ends the canary; shadow scoring, if on, stays.
pub async fn set_canary(store: &Store, model: &str, share: f64, by: &str) -> Result<Traffic> {
    if !(0.0..=1.0).contains(&share) {
        return Err(RegistryError::Invalid(format!(
            "the canary share must be between 0 and 1, not {share}"
        )));
    }
    let challenger = if share > 0.0 {
        Some(routable_challenger(store, model).await?)
    } else {
        None
    };
    let reason = if share > 0.0 {
        format!("canary {share}")
    } else {
        "canary ended".to_string()
    };
    update_traffic(store, model, by, &reason, |t| {
        let before = t.clone();
        if let Some(v) = challenger {
            t.challenger = Some(v);
        }
        t.canary_share = share;
        Ok(*t != before)
    })
    .await
}

/// Turns shadow scoring of `model`'s challenger on or off.
pub async fn set_shadow(store: &Store, model: &str, on: bool, by: &str) -> Result<Traffic> {
    let challenger = if on {
        Some(routable_challenger(store, model).await?)
    } else {
        None
    };
    let reason = if on { "shadow on" } else { "shadow off" };
    update_traffic(store, model, by, reason, |t| {
        let before = t.clone();
        if let Some(v) = challenger {
            t.challenger = Some(v);
        }
        t.shadow = on;
        Ok(*t != before)
    })
    .await
}

/// Ends whatever policy is in force (a champion move calls it): share 0, shadow off.
pub async fn end_traffic(store: &Store, model: &str, by: &str, reason: &str) -> Result<Traffic> {
    if store.head(&traffic_key(model)).await?.is_none() {
        return Ok(Traffic::none(model));
    }
    update_traffic(store, model, by, reason, |t| {
        let active = t.canary_share > 0.0 || t.shadow;
        t.canary_share = 0.0;
        t.shadow = false;
        Ok(active)
    })
    .await
}
