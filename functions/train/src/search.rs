//! Hyperparameter search: seeded random configurations per family, judged by successive
//! halving (ASHA-style). Every trial starts on a small share of the resource (training rows
//! for trees, epochs for networks); after each rung only the best `1/reduction_factor`
//! continue, with `reduction_factor` times the resource, until the survivors use all of it.
//! Rungs run their trials in parallel; results are ordered by trial id, so the outcome does
//! not depend on which trial finished first.
//!
//! Small data selects differently ([`Selection`]): with at most [`CV_MAX_ROWS`] train +
//! validation rows, a validation split is a few dozen rows and its winner is noise, so every
//! trial is judged by [`CV_FOLDS`]-fold cross-validation over train + validation (seeded,
//! stratified by class for classification) on the full resource; gradient-boosted trees stop
//! on each held-out fold and the refit uses the folds' mean number of rounds; the binary
//! threshold is chosen on the out-of-fold predictions. The rule depends on the row count
//! only, never on the dataset.

use std::time::Instant;

use rand::{RngExt, SeedableRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::config::{Family, Metric, Search};
use crate::data::{Dataset, Split};
use crate::evaluate::{self, Outputs};
use crate::gbm::GbmParams;
use crate::model::{self, Budget, Fitted, Params};
use crate::nn::NetParams;

/// One rung of one trial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RungScore {
    pub rung: usize,
    pub resource: f64,
    /// Validation value of the main metric (`None`: undefined or the fit failed).
    pub metric: Option<f64>,
    pub seconds: f64,
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    pub id: usize,
    pub seed: u64,
    pub params: Params,
    pub rungs: Vec<RungScore>,
}

impl Trial {
    pub fn last_metric(&self) -> Option<f64> {
        self.rungs.last().and_then(|r| r.metric)
    }
}

/// Train + validation rows at or below which trials are judged by cross-validation.
pub const CV_MAX_ROWS: usize = 5_000;
/// Folds of that cross-validation.
pub const CV_FOLDS: usize = 5;

/// How the search judged its trials; the run record keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "kebab-case")]
pub enum Selection {
    /// Fitted on the train split, judged on the validation split, by successive halving.
    Holdout {
        train_rows: usize,
        validation_rows: usize,
    },
    /// `folds`-fold cross-validation over train + validation, out-of-fold predictions.
    CrossValidation {
        folds: usize,
        rows: usize,
        stratified: bool,
        /// The boosting rounds the refit uses (mean of the folds' early-stopped rounds).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rounds: Option<usize>,
    },
}

impl Selection {
    /// One line for logs and reports.
    pub fn describe(&self) -> String {
        match self {
            Selection::Holdout {
                train_rows,
                validation_rows,
            } => format!(
                "holdout: trained on {train_rows} rows, judged on {validation_rows} validation rows"
            ),
            Selection::CrossValidation {
                folds,
                rows,
                stratified,
                rounds,
            } => format!(
                "{folds}-fold{} cross-validation over {rows} train + validation rows{}",
                if *stratified { " stratified" } else { "" },
                rounds
                    .map(|r| format!(", refit with {r} boosting rounds"))
                    .unwrap_or_default()
            ),
        }
    }
}

/// The search's result: every trial, the winner's index, a fitted model of the winner, the
/// winner's predictions on `selection_rows` (validation rows, or every train + validation
/// row out of fold: where the decision threshold is chosen), and the parameters the final
/// refit on train + validation uses.
#[derive(Debug)]
pub struct Outcome {
    pub trials: Vec<Trial>,
    pub best: usize,
    pub model: Fitted,
    pub validation_predictions: Vec<f64>,
    pub selection_rows: Vec<usize>,
    pub rungs: Vec<f64>,
    pub selection: Selection,
    pub final_params: Params,
}

/// A fitted trial model and its validation predictions.
type Survivor = (Fitted, Vec<f64>);

fn log_uniform(rng: &mut rand_chacha::ChaCha8Rng, lo: f64, hi: f64) -> f64 {
    (rng.random_range(lo.ln()..hi.ln())).exp()
}

/// `trials` configurations of `family`; the first is the family's defaults.
pub fn sample(family: Family, trials: usize, seed: u64) -> Vec<Params> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ ((family as u64 + 1) * 0x9E37));
    let mut out = vec![Params::default_for(family)];
    while out.len() < trials {
        out.push(match family {
            Family::Gbm => {
                let learning_rate = log_uniform(&mut rng, 0.02, 0.3) as f32;
                Params::Gbm(GbmParams {
                    learning_rate,
                    // Enough rounds for the step size; early stopping ends most fits sooner.
                    max_trees: ((10.0 / learning_rate).ceil() as usize).clamp(100, 500),
                    max_leaves: [15usize, 31, 63, 127][rng.random_range(0..4usize)],
                    min_leaf_weight: [0.5f32, 1.0, 5.0, 20.0][rng.random_range(0..4usize)],
                    l2: log_uniform(&mut rng, 0.01, 10.0) as f32,
                    max_bin: [63u16, 127, 255][rng.random_range(0..3usize)],
                    subsample: [0.7f32, 0.85, 1.0][rng.random_range(0..3usize)],
                    colsample: [0.6f64, 0.8, 1.0][rng.random_range(0..3usize)],
                    ..GbmParams::default()
                })
            }
            Family::Linear => Params::Linear(NetParams {
                learning_rate: log_uniform(&mut rng, 3e-3, 0.1),
                weight_decay: log_uniform(&mut rng, 1e-6, 1e-2),
                batch_size: [256, 512, 1024][rng.random_range(0..3usize)],
                ..NetParams::linear()
            }),
            Family::Mlp => Params::Mlp(NetParams {
                hidden: [vec![32], vec![64], vec![64, 32], vec![128, 64]]
                    [rng.random_range(0..4usize)]
                .clone(),
                learning_rate: log_uniform(&mut rng, 1e-3, 1e-2),
                weight_decay: log_uniform(&mut rng, 1e-6, 1e-3),
                epochs: [15, 20, 30][rng.random_range(0..3usize)],
                batch_size: [256, 512][rng.random_range(0..2usize)],
            }),
        });
    }
    out
}

/// Resources of the rungs: `min_resource * reduction_factor^i`, ending at 1.
pub fn rungs(search: &Search) -> Vec<f64> {
    let mut out = Vec::new();
    let mut r = search.min_resource.clamp(1e-3, 1.0);
    // Within 1% of the full resource counts as full (1/9 * 3 * 3 is 0.99999...).
    while r < 0.99 {
        out.push(r);
        r *= search.reduction_factor as f64;
    }
    out.push(1.0);
    out
}

/// Trials at once, and threads per trial (the cores shared out).
///
/// Tried and measured (100,000 rows x 20 features, 2 cores): giving every trial all cores,
/// so a rung's slowest trial could spread over cores the others left idle, did not shorten
/// the search (28.3 s vs 29.4 s) and raised peak memory from 243 MB to 327 MB: the trials
/// contend for the same cores, and the total work is what bounds the search.
pub fn parallelism(search: &Search) -> (usize, usize) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let parallel = if search.parallel == 0 {
        cores
    } else {
        search.parallel
    }
    .max(1);
    (parallel, (cores / parallel).max(1))
}

/// Runs the search over `families` on the train split, judged on validation.
pub fn run(
    ds: &Dataset,
    families: &[Family],
    search: &Search,
    metric: Metric,
    weights: &[f64],
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Outcome, TrainError> {
    let train = ds.rows(Split::Train);
    let valid = ds.rows(Split::Validation);
    if uses_cross_validation(ds) {
        return run_cv(ds, families, search, metric, weights, progress);
    }
    let train_w: Vec<f64> = train.iter().map(|&i| weights[i]).collect();
    let valid_y = ds.targets(&valid);
    let mut trials = new_trials(families, search);
    let resources = rungs(search);
    let (parallel, threads) = parallelism(search);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(parallel)
        .build()
        .map_err(|e| TrainError::Fit(format!("thread pool: {e}")))?;
    let mut alive: Vec<usize> = (0..trials.len()).collect();
    let mut last: Vec<(usize, Option<Survivor>)> = Vec::new();
    for (rung, &resource) in resources.iter().enumerate() {
        progress(&format!(
            "rung {}/{}: {} trial(s) on {:.0}% of the resource",
            rung + 1,
            resources.len(),
            alive.len(),
            resource * 100.0
        ));
        let results: Vec<(usize, RungScore, Option<Survivor>)> = pool.install(|| {
            alive
                .par_iter()
                .map(|&id| {
                    let t = &trials[id];
                    let start = Instant::now();
                    let budget = Budget {
                        resource,
                        threads,
                        seed: t.seed,
                    };
                    let fitted = model::fit(ds, &train, &train_w, &t.params, budget)
                        .and_then(|m| m.predict(ds, &valid).map(|p| (m, p)));
                    let seconds = start.elapsed().as_secs_f64();
                    match fitted {
                        Ok((m, p)) => {
                            let o = Outputs {
                                task: ds.task,
                                k: ds.n_classes(),
                                y: &valid_y,
                                p: &p,
                            };
                            let threshold = 0.5;
                            let value =
                                evaluate::score(metric, o, threshold).filter(|v| v.is_finite());
                            let score = RungScore {
                                rung,
                                resource,
                                metric: value,
                                seconds,
                                model: m.describe(),
                                error: None,
                            };
                            (id, score, Some((m, p)))
                        }
                        Err(e) => (
                            id,
                            RungScore {
                                rung,
                                resource,
                                metric: None,
                                seconds,
                                model: String::new(),
                                error: Some(e.to_string()),
                            },
                            None,
                        ),
                    }
                })
                .collect()
        });
        last.clear();
        for (id, score, fitted) in results {
            progress(&trial_line(&trials[id], &score, metric, ""));
            trials[id].rungs.push(score);
            last.push((id, fitted));
        }
        // Rank by metric (failures last), ties by id.
        let mut ranked = alive.clone();
        ranked.sort_by(|&a, &b| {
            let (ma, mb) = (trials[a].last_metric(), trials[b].last_metric());
            if evaluate::better(metric, ma, mb) {
                std::cmp::Ordering::Less
            } else if evaluate::better(metric, mb, ma) {
                std::cmp::Ordering::Greater
            } else {
                a.cmp(&b)
            }
        });
        if rung + 1 < resources.len() {
            let keep = alive.len().div_ceil(search.reduction_factor).max(1);
            alive = ranked[..keep].to_vec();
            alive.sort_unstable();
        } else {
            alive = ranked;
        }
    }
    let best = alive[0];
    if trials[best].last_metric().is_none() {
        return Err(no_usable_model(&trials));
    }
    let (model, validation_predictions) = last
        .into_iter()
        .find(|(id, _)| *id == best)
        .and_then(|(_, f)| f)
        .ok_or_else(|| TrainError::Fit("the best trial's model is missing".into()))?;
    let final_params = trials[best].params.clone();
    Ok(Outcome {
        trials,
        best,
        model,
        validation_predictions,
        selection_rows: valid.clone(),
        rungs: resources,
        selection: Selection::Holdout {
            train_rows: train.len(),
            validation_rows: valid.len(),
        },
        final_params,
    })
}

/// Every family's `trials` configurations, numbered, each with its own seed.
fn new_trials(families: &[Family], search: &Search) -> Vec<Trial> {
    let mut trials: Vec<Trial> = Vec::new();
    for family in families {
        for params in sample(*family, search.trials, search.seed) {
            let id = trials.len();
            trials.push(Trial {
                id,
                seed: search.seed.wrapping_mul(1_000_003).wrapping_add(id as u64),
                params,
                rungs: Vec::new(),
            });
        }
    }
    trials
}

/// One trial's progress line: its family, `what` metric value, time and error.
fn trial_line(trial: &Trial, score: &RungScore, metric: Metric, what: &str) -> String {
    format!(
        "  trial {} ({}): {what}{} = {} in {:.2}s{}",
        trial.id,
        model::family_name(trial.params.family()),
        metric.name(),
        score.metric.map_or("n/a".into(), |v| format!("{v:.5}")),
        score.seconds,
        score
            .error
            .as_deref()
            .map(|e| format!(" ({e})"))
            .unwrap_or_default()
    )
}

/// The error when no trial produced a model, with the first trials' reasons.
fn no_usable_model(trials: &[Trial]) -> TrainError {
    let why: Vec<String> = trials
        .iter()
        .filter_map(|t| t.rungs.last().and_then(|r| r.error.clone()))
        .take(3)
        .collect();
    TrainError::Fit(format!(
        "no trial produced a usable model ({})",
        why.join("; ")
    ))
}

/// Whether the search selects by cross-validation: at most [`CV_MAX_ROWS`] train +
/// validation rows.
pub fn uses_cross_validation(ds: &Dataset) -> bool {
    let rows = ds
        .split
        .iter()
        .filter(|s| matches!(s, Split::Train | Split::Validation))
        .count();
    rows <= CV_MAX_ROWS
}

/// The fold (0..k) of each of `rows`: a seeded shuffle, dealt round-robin; for
/// classification class by class, so every fold holds each class in proportion.
pub fn assign_folds(ds: &Dataset, rows: &[usize], k: usize, seed: u64) -> Vec<usize> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0xF01D_5EED);
    let mut groups: Vec<Vec<usize>> = if ds.task == crate::config::Task::Regression {
        vec![(0..rows.len()).collect()]
    } else {
        let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); ds.n_classes().max(2)];
        for (pos, &r) in rows.iter().enumerate() {
            let c = (ds.y[r] as usize).min(by_class.len() - 1);
            by_class[c].push(pos);
        }
        by_class
    };
    let mut fold = vec![0usize; rows.len()];
    let mut next = 0usize;
    for group in &mut groups {
        // Fisher-Yates with the seeded generator.
        for i in (1..group.len()).rev() {
            let j = rng.random_range(0..=i);
            group.swap(i, j);
        }
        for &pos in group.iter() {
            fold[pos] = next % k;
            next += 1;
        }
    }
    fold
}

/// One trial judged by cross-validation: its out-of-fold predictions, the folds' boosting
/// rounds (trees only) and the last fold's model.
struct CvFit {
    oof: Vec<f64>,
    rounds: Vec<usize>,
    model: Fitted,
}

fn cv_fit(
    ds: &Dataset,
    rows: &[usize],
    folds: &[usize],
    k: usize,
    weights: &[f64],
    params: &Params,
    budget: Budget,
) -> Result<CvFit, TrainError> {
    let width = if ds.task == crate::config::Task::MulticlassClassification {
        ds.n_classes()
    } else {
        1
    };
    let mut oof = vec![f64::NAN; rows.len() * width];
    let mut rounds = Vec::with_capacity(k);
    let mut last = None;
    for f in 0..k {
        let (fit_rows, held): (Vec<usize>, Vec<usize>) = {
            let mut fit_rows = Vec::new();
            let mut held = Vec::new();
            for (pos, &r) in rows.iter().enumerate() {
                if folds[pos] == f {
                    held.push(pos);
                } else {
                    fit_rows.push(r);
                }
            }
            (fit_rows, held)
        };
        if held.is_empty() {
            continue;
        }
        let held_rows: Vec<usize> = held.iter().map(|&p| rows[p]).collect();
        let fit_w: Vec<f64> = fit_rows.iter().map(|&r| weights[r]).collect();
        let held_w: Vec<f64> = held_rows.iter().map(|&r| weights[r]).collect();
        let m = model::fit_with_eval(
            ds,
            &fit_rows,
            &fit_w,
            params,
            budget,
            Some((&held_rows, &held_w)),
        )?;
        let p = m.predict(ds, &held_rows)?;
        for (i, &pos) in held.iter().enumerate() {
            oof[pos * width..(pos + 1) * width].copy_from_slice(&p[i * width..(i + 1) * width]);
        }
        if let Fitted::Gbm(g) = &m {
            rounds.push(g.rounds());
        }
        last = Some(m);
    }
    let model = last.ok_or_else(|| TrainError::Fit("cross-validation had no fold".into()))?;
    Ok(CvFit { oof, rounds, model })
}

/// The search on small data: every trial judged by k-fold cross-validation over train +
/// validation (see the module's documentation).
fn run_cv(
    ds: &Dataset,
    families: &[Family],
    search: &Search,
    metric: Metric,
    weights: &[f64],
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Outcome, TrainError> {
    let mut rows = ds.rows(Split::Train);
    rows.extend(ds.rows(Split::Validation));
    rows.sort_unstable();
    let k = CV_FOLDS.min(rows.len()).max(2);
    let folds = assign_folds(ds, &rows, k, search.seed);
    let y = ds.targets(&rows);
    let stratified = ds.task != crate::config::Task::Regression;
    let mut trials = new_trials(families, search);
    progress(&format!(
        "{} train + validation rows (at most {CV_MAX_ROWS}): {} trial(s) judged by {k}-fold{} cross-validation",
        rows.len(),
        trials.len(),
        if stratified { " stratified" } else { "" }
    ));
    let (parallel, threads) = parallelism(search);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(parallel)
        .build()
        .map_err(|e| TrainError::Fit(format!("thread pool: {e}")))?;
    let results: Vec<(RungScore, Option<CvFit>)> = pool.install(|| {
        trials
            .par_iter()
            .map(|t| {
                let start = Instant::now();
                let budget = Budget {
                    resource: 1.0,
                    threads,
                    seed: t.seed,
                };
                let fitted = cv_fit(ds, &rows, &folds, k, weights, &t.params, budget);
                let seconds = start.elapsed().as_secs_f64();
                match fitted {
                    Ok(cv) => {
                        let o = Outputs {
                            task: ds.task,
                            k: ds.n_classes(),
                            y: &y,
                            p: &cv.oof,
                        };
                        let value = evaluate::score(metric, o, 0.5).filter(|v| v.is_finite());
                        let model = match mean_rounds(&cv.rounds) {
                            Some(r) => format!("{k} folds, {r} boosting rounds on average"),
                            None => format!("{k} folds, {}", cv.model.describe()),
                        };
                        (
                            RungScore {
                                rung: 0,
                                resource: 1.0,
                                metric: value,
                                seconds,
                                model,
                                error: None,
                            },
                            Some(cv),
                        )
                    }
                    Err(e) => (
                        RungScore {
                            rung: 0,
                            resource: 1.0,
                            metric: None,
                            seconds,
                            model: String::new(),
                            error: Some(e.to_string()),
                        },
                        None,
                    ),
                }
            })
            .collect()
    });
    let mut fits: Vec<Option<CvFit>> = Vec::with_capacity(results.len());
    for (id, (score, fit)) in results.into_iter().enumerate() {
        progress(&trial_line(&trials[id], &score, metric, "out-of-fold "));
        trials[id].rungs.push(score);
        fits.push(fit);
    }
    let mut best = 0;
    for id in 1..trials.len() {
        if evaluate::better(metric, trials[id].last_metric(), trials[best].last_metric()) {
            best = id;
        }
    }
    let Some(cv) = fits.get_mut(best).and_then(Option::take) else {
        return Err(no_usable_model(&trials));
    };
    if trials[best].last_metric().is_none() {
        return Err(TrainError::Fit(
            "no trial produced a usable out-of-fold score".into(),
        ));
    }
    let rounds = mean_rounds(&cv.rounds);
    let final_params = match (&trials[best].params, rounds) {
        (Params::Gbm(p), Some(r)) => Params::Gbm(crate::gbm::GbmParams {
            max_trees: r,
            // The rounds are chosen: the refit grows exactly that many.
            early_stopping_rounds: 0,
            ..p.clone()
        }),
        (p, _) => p.clone(),
    };
    Ok(Outcome {
        trials,
        best,
        model: cv.model,
        validation_predictions: cv.oof,
        selection_rows: rows.clone(),
        rungs: vec![1.0],
        selection: Selection::CrossValidation {
            folds: k,
            rows: rows.len(),
            stratified,
            rounds,
        },
        final_params,
    })
}

/// The folds' mean boosting rounds, rounded, at least 1 (`None` without trees).
fn mean_rounds(rounds: &[usize]) -> Option<usize> {
    (!rounds.is_empty()).then(|| {
        ((rounds.iter().sum::<usize>() as f64 / rounds.len() as f64).round() as usize).max(1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rungs_grow_by_the_reduction_factor_to_the_full_resource() {
        let s = Search {
            min_resource: 0.1,
            reduction_factor: 3,
            ..Search::default()
        };
        assert_eq!(rungs(&s).len(), 4);
        assert_eq!(*rungs(&s).last().unwrap_or(&0.0), 1.0);
        let s = Search {
            min_resource: 1.0,
            ..Search::default()
        };
        assert_eq!(rungs(&s), vec![1.0]);
        let s = Search {
            min_resource: 0.1111111,
            ..Search::default()
        };
        assert_eq!(rungs(&s).len(), 3, "{:?}", rungs(&s));
    }

    #[test]
    fn sampling_is_seeded_and_starts_from_the_defaults() {
        for f in [Family::Gbm, Family::Linear, Family::Mlp] {
            let a = sample(f, 5, 7);
            assert_eq!(a, sample(f, 5, 7));
            assert_ne!(a, sample(f, 5, 8));
            assert_eq!(a[0], Params::default_for(f));
            assert_eq!(a.len(), 5);
        }
    }
}
