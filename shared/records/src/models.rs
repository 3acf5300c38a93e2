//! The model registry's records: plain types, so the edge (wasm) reads bundles and aliases
//! with the same definitions the registry writes. Their keys are in [`crate::keys`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The bundle format this code writes. Format 1 (one feature view, no `views` list) is still
/// read: [`Bundle::views`] fills the list from its single view.
pub const BUNDLE_FORMAT: u32 = 2;

/// One model input, in order.
///
/// Two layouts: a model mlpipe trained takes one `[N, F]` f32 tensor whose columns are the
/// inputs (`width` absent); a model imported from another tool (`mlpipe models import`)
/// takes each input as its own graph input `[N, width]` of its type (`width` present).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Input {
    pub name: String,
    /// Element type at the model boundary: `f32`, or for an imported model's graph input
    /// also `i64` or `string`.
    #[serde(rename = "type")]
    pub ty: String,
    /// Values per row of a graph input (imported models only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u64>,
}

impl Input {
    /// A column of the `[N, F]` f32 tensor of a model mlpipe trained.
    pub fn column(name: impl Into<String>) -> Input {
        Input {
            name: name.into(),
            ty: "f32".into(),
            width: None,
        }
    }
}

/// One feature view version a model reads, in the order its columns enter the model input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewVersion {
    pub view: String,
    pub version: String,
}

/// An object a bundle refers to, pinned by its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    pub key: String,
    pub sha256: String,
}

/// `models/<name>/<version>/bundle.json`: everything serving and monitoring need to know
/// about one model version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bundle {
    pub format: u32,
    pub model: String,
    pub version: u64,
    pub created_at: String,
    /// sha256 of model.onnx; also the registration's idempotency key.
    pub content_hash: String,
    pub model_key: String,
    /// `binary-classification`, `multiclass-classification` or `regression`.
    pub task: String,
    /// Model family (`gbm`, `linear`, `mlp`, ...).
    pub family: String,
    pub inputs: Vec<Input>,
    /// Class labels in output order (classification).
    pub classes: Vec<String>,
    /// Decision threshold on the positive-class probability (binary classification).
    pub threshold: Option<f64>,
    /// The view whose label events the model trained on (the first of [`Bundle::views`]).
    pub feature_view: String,
    pub feature_view_version: String,
    /// What serving evaluates: the view's `spec.json`, or for a model over several views a
    /// feature set (`{"views": [spec, ...]}`, `features::FeatureSet`) under the model.
    pub feature_spec: ObjectRef,
    pub dataset_snapshot: String,
    pub reference_profile: ObjectRef,
    pub training_run: String,
    pub metrics: BTreeMap<String, f64>,
    /// Free-form extra facts (hyperparameters, code version, ...).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Every view version the model reads, label view first (format 2; empty in format 1,
    /// whose one view is `feature_view`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub views: Vec<ViewVersion>,
    /// The table the model was trained and tested on when it is not the label view's own
    /// (a model over several views); the holdout check reads its test split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training_table: Option<ObjectRef>,
}

impl Bundle {
    /// Every view version the model reads, label view first (none for an imported model).
    pub fn views(&self) -> Vec<ViewVersion> {
        if !self.views.is_empty() {
            return self.views.clone();
        }
        if self.feature_view.is_empty() {
            return Vec::new();
        }
        vec![ViewVersion {
            view: self.feature_view.clone(),
            version: self.feature_view_version.clone(),
        }]
    }

    /// Whether this code reads the bundle's format.
    pub fn format_supported(&self) -> bool {
        (1..=BUNDLE_FORMAT).contains(&self.format)
    }
}

/// What a caller registers; the registry assigns the version and fills the rest.
#[derive(Debug, Clone, PartialEq)]
pub struct NewVersion {
    pub task: String,
    pub family: String,
    pub inputs: Vec<Input>,
    pub classes: Vec<String>,
    pub threshold: Option<f64>,
    pub feature_view: String,
    pub feature_view_version: String,
    pub feature_spec: ObjectRef,
    pub dataset_snapshot: String,
    pub reference_profile: ObjectRef,
    pub training_run: String,
    pub metrics: BTreeMap<String, f64>,
    pub tags: BTreeMap<String, String>,
    /// Every view version after the first, for a model over several views.
    pub joined_views: Vec<ViewVersion>,
    pub training_table: Option<ObjectRef>,
}

/// `models/<name>/aliases/<alias>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alias {
    pub model: String,
    pub alias: String,
    pub version: u64,
    /// The version before this move, if any.
    pub previous: Option<u64>,
    /// Increases by one with every move; names the history entry.
    pub seq: u64,
    pub moved_at: String,
    /// Who or what moved it (`train:<run>`, `cli:<user>`, `drift:<run>`).
    pub by: String,
    pub reason: String,
    /// Set when this move rolled the alias back away from that version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_of: Option<u64>,
}

/// `models/<name>/traffic.json`: how the edge splits a model's traffic between its champion
/// and a challenger. Set by `mlpipe models canary` / `shadow`, cleared when the champion
/// moves (a promotion or rollback ends the experiment), and copied to the edge by the
/// publish stage under the same key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Traffic {
    pub model: String,
    /// The challenger version, pinned when the policy was set: a later training run that
    /// moves the `challenger` alias does not enter live traffic unannounced.
    pub challenger: Option<u64>,
    /// Share of requests (0..=1) the challenger answers, chosen by [`canary_bucket`].
    pub canary_share: f64,
    /// Whether the challenger also scores every request the champion answers, its
    /// prediction logged beside the champion's and never returned.
    pub shadow: bool,
    /// Increases by one with every change (names the publication record).
    pub seq: u64,
    pub updated_at: String,
    pub by: String,
    pub reason: String,
}

/// Which model version answers a request, and in what role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arm {
    /// The champion answered (a traffic policy is in force).
    Champion,
    /// The challenger answered: the request fell in the canary share.
    Challenger,
    /// The challenger scored the request in shadow; its answer was logged, not returned.
    Shadow,
}

impl Arm {
    pub fn as_str(self) -> &'static str {
        match self {
            Arm::Champion => "champion",
            Arm::Challenger => "challenger",
            Arm::Shadow => "shadow",
        }
    }
}

/// The request's place in `[0, 1)` for `model`: FNV-1a (64 bit) of the model name, a zero
/// byte and `key` (the first entity key of the request, or its request id when it names no
/// entity), mixed by MurmurHash3's 64-bit finalizer (FNV's high bits alone split keys that
/// differ only at the end unevenly), top 53 bits as a fraction. Every runtime computes the same value, so a canary
/// keeps an entity on one arm everywhere and a test can say where each request goes.
pub fn canary_bucket(model: &str, key: &str) -> f64 {
    let h = model
        .bytes()
        .chain(std::iter::once(0))
        .chain(key.bytes())
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
    let h = (h ^ (h >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    let h = (h ^ (h >> 33)).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    let h = h ^ (h >> 33);
    (h >> 11) as f64 / (1u64 << 53) as f64
}

impl Traffic {
    /// The policy with nothing in force.
    pub fn none(model: &str) -> Traffic {
        Traffic {
            model: model.into(),
            challenger: None,
            canary_share: 0.0,
            shadow: false,
            seq: 0,
            updated_at: String::new(),
            by: String::new(),
            reason: String::new(),
        }
    }

    /// The challenger version when the policy sends it any traffic (a canary share above
    /// zero or shadow scoring) and it is not the champion itself.
    pub fn active_challenger(&self, champion: u64) -> Option<u64> {
        self.challenger
            .filter(|v| *v != champion && (self.canary_share > 0.0 || self.shadow))
    }

    /// Whether the request keyed `key` goes to the challenger (see [`canary_bucket`]).
    pub fn to_challenger(&self, champion: u64, key: &str) -> bool {
        self.active_challenger(champion).is_some()
            && self.canary_share > 0.0
            && canary_bucket(&self.model, key) < self.canary_share
    }
}

#[cfg(test)]
mod traffic_tests {
    use super::*;

    #[test]
    fn the_canary_share_is_kept_and_the_same_key_always_lands_on_the_same_arm() {
        let mut t = Traffic::none("fraud");
        t.challenger = Some(4);
        t.canary_share = 0.25;
        let n = 10_000;
        let hits = (0..n)
            .filter(|i| t.to_challenger(3, &format!("card-{i}")))
            .count();
        assert!((2_300..2_700).contains(&hits), "{hits}");
        assert_eq!(t.to_challenger(3, "card-7"), t.to_challenger(3, "card-7"));
        // Not when the challenger is the champion, nor with share 0.
        assert_eq!(
            (0..n)
                .filter(|i| t.to_challenger(4, &format!("c{i}")))
                .count(),
            0
        );
        t.canary_share = 0.0;
        assert_eq!(t.active_challenger(3), None);
        t.shadow = true;
        assert_eq!(t.active_challenger(3), Some(4));
        assert!(!t.to_challenger(3, "card-7"));
        // Fixed values: every runtime must compute exactly these.
        assert_eq!(canary_bucket("fraud", ""), canary_bucket("fraud", ""));
        assert!(canary_bucket("fraud", "a") != canary_bucket("fraud2", "a"));
        assert!((0.0..1.0).contains(&canary_bucket("m", "k")));
    }
}
