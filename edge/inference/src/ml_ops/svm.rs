//! ONNX-ML `SVMClassifier` and `SVMRegressor`, as skl2onnx emits them for scikit-learn's
//! `SVC`, `NuSVC`, `SVR`, `NuSVR` and `OneClassSVM`.
//!
//! Written to the operator specification and to onnxruntime's evaluation, which is the one
//! users' serving stacks run: one-vs-one decision values with libsvm's layout of the dual
//! coefficients, votes for the label, and with `prob_a`/`prob_b` Platt's pairwise
//! probabilities coupled by libsvm's `multiclass_probability`. (ONNX's reference evaluator
//! computes that coupling's off-diagonal terms as one dot product and so differs from
//! onnxruntime and libsvm on three or more classes; we follow libsvm.)

use tract_hir::internal::*;
use tract_onnx::pb::NodeProto;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kernel {
    Linear,
    Poly,
    Rbf,
    Sigmoid,
}

/// The score transform applied last (`post_transform`); PROBIT is refused at load.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Post {
    None,
    Logistic,
    Softmax,
    SoftmaxZero,
}

/// Kernel and parameters shared by both operators.
#[derive(Debug, Clone, PartialEq)]
struct Machine {
    kernel: Kernel,
    gamma: f32,
    coef0: f32,
    degree: f32,
    /// Values per row (per support vector).
    features: usize,
    /// Support vectors, `features` values each; empty in linear mode.
    vectors: Vec<f32>,
    coefs: Vec<f32>,
    rho: Vec<f32>,
}

impl Machine {
    fn read(node: &NodeProto, op: &str) -> TractResult<Machine> {
        let params: Vec<f32> = node.get_attr_opt_vec("kernel_params")?.unwrap_or_default();
        let kernel = match node
            .get_attr_opt::<String>("kernel_type")?
            .as_deref()
            .unwrap_or("LINEAR")
        {
            "LINEAR" => Kernel::Linear,
            "POLY" => Kernel::Poly,
            "RBF" => Kernel::Rbf,
            "SIGMOID" => Kernel::Sigmoid,
            other => bail!("{op}: kernel_type {other}"),
        };
        Ok(Machine {
            kernel,
            gamma: params.first().copied().unwrap_or(0.0),
            coef0: params.get(1).copied().unwrap_or(0.0),
            degree: params.get(2).copied().unwrap_or(0.0),
            features: 0,
            vectors: node
                .get_attr_opt_vec("support_vectors")?
                .unwrap_or_default(),
            coefs: node.get_attr_opt_vec("coefficients")?.unwrap_or_default(),
            rho: node.get_attr_opt_vec("rho")?.unwrap_or_default(),
        })
    }

    /// The kernel between a row and a support vector (or a coefficient row in linear mode,
    /// where the kernel is always linear), accumulated in f32 as onnxruntime does.
    fn kernel(&self, kernel: Kernel, a: &[f32], b: &[f32]) -> f32 {
        match kernel {
            Kernel::Linear => dot(a, b),
            Kernel::Poly => (dot(a, b) * self.gamma + self.coef0).powf(self.degree),
            Kernel::Sigmoid => (dot(a, b) * self.gamma + self.coef0).tanh(),
            Kernel::Rbf => {
                let s: f32 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
                (-self.gamma * s).exp()
            }
        }
    }

    fn vector(&self, j: usize) -> &[f32] {
        &self.vectors[j * self.features..(j + 1) * self.features]
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn post_transform(node: &NodeProto, op: &str) -> TractResult<Post> {
    Ok(
        match node
            .get_attr_opt::<String>("post_transform")?
            .as_deref()
            .unwrap_or("NONE")
        {
            "NONE" => Post::None,
            "LOGISTIC" => Post::Logistic,
            "SOFTMAX" => Post::Softmax,
            "SOFTMAX_ZERO" => Post::SoftmaxZero,
            other => bail!("{op}: post_transform {other} is not supported"),
        },
    )
}

/// Class labels: the label output's element type follows them.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Labels {
    Ints(Vec<i64>),
    Strings(Vec<String>),
}

impl Labels {
    fn len(&self) -> usize {
        match self {
            Labels::Ints(v) => v.len(),
            Labels::Strings(v) => v.len(),
        }
    }

    pub(super) fn datum_type(&self) -> DatumType {
        match self {
            Labels::Ints(_) => DatumType::I64,
            Labels::Strings(_) => DatumType::String,
        }
    }
}

/// Where a row's label comes from: a class index, or (one decision value with other than
/// two labels) onnxruntime's bare 1 / 0.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Label {
    Class(usize),
    Raw(i64),
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Classifier {
    machine: Machine,
    /// Support vectors per class and where each class's start (SVC mode; empty: linear).
    per_class: Vec<usize>,
    starts: Vec<usize>,
    prob_a: Vec<f32>,
    prob_b: Vec<f32>,
    pub(super) labels: Labels,
    classes: usize,
    all_positive: bool,
    post: Post,
    /// Columns of the scores output.
    pub(super) width: usize,
}

impl Classifier {
    pub(super) fn read(node: &NodeProto) -> TractResult<Classifier> {
        let op = "SVMClassifier";
        let mut machine = Machine::read(node, op)?;
        let strings: Option<Vec<String>> = node.get_attr_opt_vec("classlabels_strings")?;
        let ints: Option<Vec<i64>> = node.get_attr_opt_vec("classlabels_ints")?;
        let labels = match (strings, ints) {
            (Some(s), _) if !s.is_empty() => Labels::Strings(s),
            (_, Some(i)) => Labels::Ints(i),
            _ => Labels::Ints(vec![]),
        };
        let classes = labels.len().max(1);
        let per_class: Vec<usize> = node
            .get_attr_opt_vec::<i64>("vectors_per_class")?
            .unwrap_or_default()
            .into_iter()
            .map(usize::try_from)
            .collect::<Result<_, _>>()?;
        let mut starts = Vec::with_capacity(per_class.len());
        let mut total = 0usize;
        for &n in &per_class {
            starts.push(total);
            total = total
                .checked_add(n)
                .context("SVMClassifier: too many vectors")?;
        }
        let pairs = classes * (classes - 1) / 2;
        let svc = total > 0;
        if svc {
            ensure!(
                per_class.len() == classes,
                "{op}: vectors_per_class has {} entries for {classes} classes",
                per_class.len()
            );
            ensure!(
                machine.vectors.len() % total == 0 && !machine.vectors.is_empty(),
                "{op}: {} support vector values for {total} vectors",
                machine.vectors.len()
            );
            machine.features = machine.vectors.len() / total;
            ensure!(
                machine.coefs.len() == (classes - 1) * total,
                "{op}: {} coefficients for {classes} classes and {total} vectors",
                machine.coefs.len()
            );
            ensure!(
                machine.rho.len() >= pairs,
                "{op}: {} rho values for {pairs} class pairs",
                machine.rho.len()
            );
        } else {
            ensure!(
                !machine.coefs.is_empty() && machine.coefs.len() % classes == 0,
                "{op}: {} coefficients for {classes} classes",
                machine.coefs.len()
            );
            machine.features = machine.coefs.len() / classes;
            ensure!(!machine.rho.is_empty(), "{op}: no rho");
        }
        let prob_a: Vec<f32> = node.get_attr_opt_vec("prob_a")?.unwrap_or_default();
        let prob_b: Vec<f32> = node.get_attr_opt_vec("prob_b")?.unwrap_or_default();
        if svc && !prob_a.is_empty() {
            ensure!(
                prob_a.len() >= pairs && prob_b.len() >= pairs,
                "{op}: prob_a / prob_b need {pairs} values"
            );
        }
        let all_positive = machine.coefs.iter().all(|&c| c >= 0.0);
        let mut classifier = Classifier {
            machine,
            per_class,
            starts,
            prob_a,
            prob_b,
            labels,
            classes,
            all_positive,
            post: post_transform(node, op)?,
            width: 0,
        };
        let scores = classifier.scores_len();
        classifier.width = classifier.finish(vec![0.0; scores], None).1.len();
        Ok(classifier)
    }

    fn svc(&self) -> bool {
        !self.per_class.is_empty()
    }

    fn proba(&self) -> bool {
        self.svc() && !self.prob_a.is_empty()
    }

    fn scores_len(&self) -> usize {
        if self.proba() || !self.svc() {
            self.classes
        } else {
            self.classes * (self.classes - 1) / 2
        }
    }

    /// One row: (label, scores).
    fn row(&self, x: &[f32], kernels: &mut Vec<f32>) -> (Label, Vec<f32>) {
        let m = &self.machine;
        if !self.svc() {
            let scores: Vec<f32> = (0..self.classes)
                .map(|j| {
                    let w = &m.coefs[j * m.features..(j + 1) * m.features];
                    m.kernel(Kernel::Linear, x, w) + m.rho[0]
                })
                .collect();
            return self.finish(scores, None);
        }
        let total: usize = self.per_class.iter().sum();
        kernels.clear();
        kernels.extend((0..total).map(|j| m.kernel(m.kernel, x, m.vector(j))));
        let k = self.classes;
        let mut votes = vec![0f32; k];
        let mut decisions = Vec::with_capacity(k * (k - 1) / 2);
        let mut evals = 0;
        for i in 0..k {
            let (si, ci) = (self.starts[i], self.per_class[i]);
            for j in i + 1..k {
                let (sj, cj) = (self.starts[j], self.per_class[j]);
                let s1 = dot(
                    &m.coefs[(j - 1) * total + si..(j - 1) * total + si + ci],
                    &kernels[si..si + ci],
                );
                let s2 = dot(
                    &m.coefs[i * total + sj..i * total + sj + cj],
                    &kernels[sj..sj + cj],
                );
                let s = m.rho[evals] + s1 + s2;
                decisions.push(s);
                if s > 0.0 {
                    votes[i] += 1.0;
                } else {
                    votes[j] += 1.0;
                }
                evals += 1;
            }
        }
        let scores = if self.proba() {
            let mut pairwise = vec![0f32; k * k];
            let mut index = 0;
            for i in 0..k {
                for j in i + 1..k {
                    let v = decisions[index] * self.prob_a[index] + self.prob_b[index];
                    let p = (1.0 - logistic(v)).clamp(1.0e-7, 1.0 - 1.0e-7);
                    pairwise[i * k + j] = p;
                    pairwise[j * k + i] = 1.0 - p;
                    index += 1;
                }
            }
            multiclass_probability(k, &pairwise)
        } else {
            decisions
        };
        self.finish(scores, Some(&votes))
    }

    /// The label from the votes (or the scores), then the scores' final form.
    fn finish(&self, scores: Vec<f32>, votes: Option<&[f32]>) -> (Label, Vec<f32>) {
        let by = votes.unwrap_or(&scores);
        let (max_class, max_weight) = argmax(by);
        let mut second = None;
        let label = if self.machine.rho.len() == 1 {
            if self.labels.len() == 2 {
                second = Some(());
                if !self.proba() && self.all_positive && max_weight >= 0.5 {
                    Label::Class(1)
                } else {
                    Label::Class(max_class)
                }
            } else if max_weight > 0.0 {
                Label::Raw(1)
            } else {
                Label::Raw(0)
            }
        } else {
            Label::Class(max_class)
        };
        (label, self.write_scores(scores, second.is_some()))
    }

    fn write_scores(&self, scores: Vec<f32>, second: bool) -> Vec<f32> {
        if scores.len() >= 2 {
            return match self.post {
                Post::None => scores,
                Post::Logistic => scores.into_iter().map(logistic).collect(),
                Post::Softmax => softmax(&scores),
                Post::SoftmaxZero => softmax_zero(&scores),
            };
        }
        let Some(&s) = scores.first() else {
            return scores;
        };
        if !second {
            return vec![s];
        }
        match self.post {
            Post::None => vec![-s, s],
            Post::Logistic => vec![logistic(-s), logistic(s)],
            Post::Softmax => softmax(&[-s, s]),
            Post::SoftmaxZero => softmax_zero(&[-s, s]),
        }
    }

    /// Labels `[N]` and scores `[N, width]` for a `[N, F]` (or `[F]`) input.
    pub(super) fn eval(&self, x: &Tensor) -> TractResult<(Tensor, Tensor)> {
        let (flat, rows) = rows_of(x, self.machine.features, "SVMClassifier")?;
        let f = self.machine.features;
        let mut kernels = Vec::new();
        let mut labels = Vec::with_capacity(rows);
        let mut scores = Vec::with_capacity(rows * self.width);
        for r in 0..rows {
            let (label, s) = self.row(&flat[r * f..(r + 1) * f], &mut kernels);
            labels.push(label);
            scores.extend(s);
        }
        let class = |l: &Label| match l {
            Label::Class(c) => *c,
            Label::Raw(v) => usize::try_from(*v).unwrap_or(0),
        };
        let labels = match &self.labels {
            Labels::Ints(names) => {
                let v: Vec<i64> = labels
                    .iter()
                    .map(|l| match l {
                        Label::Raw(v) => *v,
                        Label::Class(c) => names.get(*c).copied().unwrap_or(*c as i64),
                    })
                    .collect();
                tract_ndarray::Array1::from_vec(v).into_tensor()
            }
            Labels::Strings(names) => {
                let v: Vec<String> = labels
                    .iter()
                    .map(|l| names.get(class(l)).cloned().unwrap_or_default())
                    .collect();
                tract_ndarray::Array1::from_vec(v).into_tensor()
            }
        };
        let scores = tract_ndarray::Array2::from_shape_vec((rows, self.width), scores)?;
        Ok((labels, scores.into_tensor()))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Regressor {
    machine: Machine,
    /// Support vectors (0: linear mode).
    supports: usize,
    one_class: bool,
}

impl Regressor {
    pub(super) fn read(node: &NodeProto) -> TractResult<Regressor> {
        let op = "SVMRegressor";
        let mut machine = Machine::read(node, op)?;
        let supports = usize::try_from(node.get_attr_opt::<i64>("n_supports")?.unwrap_or(0))?;
        ensure!(!machine.rho.is_empty(), "{op}: no rho");
        if supports > 0 {
            ensure!(
                !machine.vectors.is_empty() && machine.vectors.len() % supports == 0,
                "{op}: {} support vector values for {supports} vectors",
                machine.vectors.len()
            );
            machine.features = machine.vectors.len() / supports;
            ensure!(
                machine.coefs.len() >= supports,
                "{op}: {} coefficients for {supports} vectors",
                machine.coefs.len()
            );
        } else {
            ensure!(!machine.coefs.is_empty(), "{op}: no coefficients");
            machine.features = machine.coefs.len();
        }
        ensure!(
            post_transform(node, op)? == Post::None,
            "{op}: only post_transform NONE is supported"
        );
        Ok(Regressor {
            machine,
            supports,
            one_class: node.get_attr_opt::<i64>("one_class")?.unwrap_or(0) != 0,
        })
    }

    /// `[N, 1]` for a `[N, F]` (or `[F]`) input.
    pub(super) fn eval(&self, x: &Tensor) -> TractResult<Tensor> {
        let m = &self.machine;
        let (flat, rows) = rows_of(x, m.features, "SVMRegressor")?;
        let v: Vec<f32> = (0..rows)
            .map(|r| {
                let row = &flat[r * m.features..(r + 1) * m.features];
                let s = if self.supports > 0 {
                    (0..self.supports)
                        .map(|j| m.coefs[j] * m.kernel(m.kernel, row, m.vector(j)))
                        .sum::<f32>()
                } else {
                    m.kernel(Kernel::Linear, row, &m.coefs)
                } + m.rho[0];
                match (self.one_class, s > 0.0) {
                    (false, _) => s,
                    (true, true) => 1.0,
                    (true, false) => -1.0,
                }
            })
            .collect();
        Ok(tract_ndarray::Array2::from_shape_vec((rows, 1), v)?.into_tensor())
    }
}

/// The input as f32 values, `features` per row, and the row count.
fn rows_of(x: &Tensor, features: usize, op: &str) -> TractResult<(Vec<f32>, usize)> {
    let width = x.shape().last().copied().unwrap_or(1);
    ensure!(
        width == features,
        "{op}: rows of {width} values, the model has {features} features"
    );
    let f = x.cast_to::<f32>()?;
    let flat: Vec<f32> = f.to_plain_array_view::<f32>()?.iter().copied().collect();
    let rows = flat.len().checked_div(features).unwrap_or(0);
    Ok((flat, rows))
}

/// Index and value of the first maximum (0 and 0 for an empty slice).
fn argmax(v: &[f32]) -> (usize, f32) {
    let mut best = (0, v.first().copied().unwrap_or(0.0));
    for (i, &x) in v.iter().enumerate().skip(1) {
        if x > best.1 {
            best = (i, x);
        }
    }
    best
}

/// onnxruntime's `ComputeLogistic`: symmetric in the sign of `v`, so it never overflows.
fn logistic(v: f32) -> f32 {
    let p = 1.0 / (1.0 + (-v.abs()).exp());
    if v < 0.0 { 1.0 - p } else { p }
}

fn softmax(v: &[f32]) -> Vec<f32> {
    let max = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = v.iter().map(|x| (x - max).exp()).collect();
    let sum: f32 = e.iter().sum();
    e.into_iter().map(|x| x / sum).collect()
}

/// onnxruntime's `ComputeSoftmaxZero`: zeros stay (nearly) zero.
fn softmax_zero(v: &[f32]) -> Vec<f32> {
    let max = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let scale = (-max).exp();
    let mut sum = 0.0;
    let e: Vec<f32> = v
        .iter()
        .map(|&x| {
            if x.abs() > 1.0e-7 {
                let y = (x - max).exp();
                sum += y;
                y
            } else {
                x * scale
            }
        })
        .collect();
    e.into_iter().map(|x| x / sum).collect()
}

/// libsvm's `multiclass_probability` (Wu, Lin and Weng's second method): class
/// probabilities from the pairwise ones `r[i * k + j]`.
fn multiclass_probability(k: usize, r: &[f32]) -> Vec<f32> {
    let mut q = vec![0f32; k * k];
    let mut qp = vec![0f32; k];
    let mut p = vec![1.0 / k as f32; k];
    let eps = 0.005 / k as f32;
    for t in 0..k {
        for j in 0..t {
            q[t * k + t] += r[j * k + t] * r[j * k + t];
            q[t * k + j] = q[j * k + t];
        }
        for j in t + 1..k {
            q[t * k + t] += r[j * k + t] * r[j * k + t];
            q[t * k + j] = -r[j * k + t] * r[t * k + j];
        }
    }
    for _ in 0..k.max(100) {
        let mut pqp = 0.0;
        for t in 0..k {
            qp[t] = (0..k).map(|j| q[t * k + j] * p[j]).sum();
            pqp += p[t] * qp[t];
        }
        let max_error = qp.iter().map(|x| (x - pqp).abs()).fold(0.0, f32::max);
        if max_error < eps {
            break;
        }
        for t in 0..k {
            let diff = (-qp[t] + pqp) / q[t * k + t];
            p[t] += diff;
            pqp = (pqp + diff * (diff * q[t * k + t] + 2.0 * qp[t])) / (1.0 + diff) / (1.0 + diff);
            for j in 0..k {
                qp[j] = (qp[j] + diff * q[t * k + j]) / (1.0 + diff);
                p[j] /= 1.0 + diff;
            }
        }
    }
    p
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn coupling_recovers_consistent_pairwise_probabilities() {
        // Pairwise probabilities from p = (0.5, 0.3, 0.2): r_ij = p_i / (p_i + p_j).
        let p = [0.5f32, 0.3, 0.2];
        let mut r = vec![0f32; 9];
        for i in 0..3 {
            for j in 0..3 {
                if i != j {
                    r[i * 3 + j] = p[i] / (p[i] + p[j]);
                }
            }
        }
        let got = multiclass_probability(3, &r);
        for (g, w) in got.iter().zip(p) {
            assert!((g - w).abs() < 1e-3, "{got:?}");
        }
    }

    #[test]
    fn one_vs_one_decisions_vote_and_binary_scores_are_mirrored() {
        // Two classes, one support vector each, linear kernel on one feature.
        let machine = Machine {
            kernel: Kernel::Linear,
            gamma: 0.0,
            coef0: 0.0,
            degree: 0.0,
            features: 1,
            vectors: vec![1.0, -1.0],
            coefs: vec![1.0, -1.0],
            rho: vec![0.5],
        };
        let svc = Classifier {
            machine,
            per_class: vec![1, 1],
            starts: vec![0, 1],
            prob_a: vec![],
            prob_b: vec![],
            labels: Labels::Ints(vec![7, 9]),
            classes: 2,
            all_positive: false,
            post: Post::None,
            width: 2,
        };
        // decision = 0.5 + x * 1 + (-x) * (-1) = 0.5 + 2x.
        let x = tract_ndarray::arr2(&[[1f32], [-1.0]]).into_tensor();
        let (labels, scores) = svc.eval(&x).unwrap();
        let labels: Vec<i64> = labels
            .to_plain_array_view::<i64>()
            .unwrap()
            .iter()
            .copied()
            .collect();
        let scores: Vec<f32> = scores
            .to_plain_array_view::<f32>()
            .unwrap()
            .iter()
            .copied()
            .collect();
        assert_eq!(labels, [7, 9]);
        assert_eq!(scores, [-2.5, 2.5, 1.5, -1.5]);
        let wrong = tract_ndarray::arr2(&[[1f32, 2.0]]).into_tensor();
        assert!(svc.eval(&wrong).is_err());
    }
}
