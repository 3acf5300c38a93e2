//! The pipeline's stages, as every record and route names them.

use serde::{Deserialize, Serialize};

/// A pipeline stage. Stages never call each other; they meet at objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// Raw upload -> validated, versioned Parquet, quarantine, dataset snapshot.
    Ingest,
    /// Dataset snapshot -> offline feature table, online store, reference profile.
    Features,
    /// Feature-view manifest or retrain request -> search, evaluation, ONNX model,
    /// registered version, alias moves, run records.
    Train,
    /// Champion alias move or feature-view manifest -> the champion's bundle or the
    /// version's online records where the edge reads them, and a publication record.
    Publish,
    /// Schedule -> prediction-log windows against the champion's reference profile,
    /// reports, retrain requests when drift holds.
    Drift,
    /// A file under `batch-input/<model>/` -> its rows scored by the model's champion in
    /// `batch-output/<model>/<input>/` (a function below a size, a batch job above it).
    BatchPredict,
}

impl Stage {
    /// Every stage, in pipeline order.
    pub const ALL: [Stage; 6] = [
        Stage::Ingest,
        Stage::Features,
        Stage::Train,
        Stage::Publish,
        Stage::Drift,
        Stage::BatchPredict,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Ingest => "ingest",
            Stage::Features => "features",
            Stage::Train => "train",
            Stage::Publish => "publish",
            Stage::Drift => "drift",
            Stage::BatchPredict => "batch-predict",
        }
    }

    /// The stage called `name` (as [`Stage::name`] spells it).
    pub fn from_name(name: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_serde_and_from_name() {
        for stage in Stage::ALL {
            assert_eq!(Stage::from_name(stage.name()), Some(stage));
            let json = serde_json::to_string(&stage).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", stage.name()));
        }
        assert_eq!(Stage::from_name("ingestt"), None);
    }
}
