//! Logistic/linear regression and a small MLP, trained with `candle` (CPU by default; the
//! `cuda` feature trains on the first GPU when one is present).
//!
//! Inputs are imputed with the training mean and standardised on the host with exactly the
//! f32 operations the exported graph performs, so the ONNX model sees what training saw.
//! Regression targets are standardised for training and the scaling is folded back into the
//! last layer. candle's CPU random generator cannot be seeded, so the weights are
//! initialised here from the trial's seed: the same seed gives the same model.

use candle_core::{D, DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::config::Task;
use crate::export::{self, Dense, Head, Network};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetParams {
    /// Hidden layer widths; empty for a linear model.
    pub hidden: Vec<usize>,
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub epochs: usize,
    pub batch_size: usize,
}

impl NetParams {
    pub fn linear() -> NetParams {
        NetParams {
            hidden: Vec::new(),
            learning_rate: 0.02,
            weight_decay: 1e-4,
            epochs: 12,
            batch_size: 512,
        }
    }

    pub fn mlp() -> NetParams {
        NetParams {
            hidden: vec![64, 32],
            learning_rate: 3e-3,
            weight_decay: 1e-4,
            epochs: 20,
            batch_size: 512,
        }
    }
}

fn err(e: candle_core::Error) -> TrainError {
    TrainError::Fit(format!("candle: {e}"))
}

/// The device training runs on: the first CUDA GPU when built with `cuda` and one is
/// present, else the CPU. Chosen once per process (a CUDA context per trial would cost
/// more than a small network's fit) and logged, so a GPU job that fell back to the CPU says so.
pub fn device() -> Device {
    static DEVICE: std::sync::OnceLock<Device> = std::sync::OnceLock::new();
    DEVICE
        .get_or_init(|| {
            #[cfg(feature = "cuda")]
            match Device::new_cuda(0) {
                Ok(d) => {
                    tracing::info!(device = ?d.location(), "candle trains on the GPU");
                    return d;
                }
                Err(e) => {
                    // candle's error text carries a backtrace after its first line.
                    let e = e.to_string();
                    let e = e.lines().next().unwrap_or_default();
                    tracing::warn!(
                        error = e,
                        "built with cuda but no usable GPU: training on the CPU"
                    );
                }
            }
            Device::Cpu
        })
        .clone()
}

fn splitmix(s: &mut u64) -> u64 {
    *s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *s;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn uniform(s: &mut u64) -> f32 {
    (splitmix(s) >> 40) as f32 / (1u64 << 24) as f32
}

/// Training-set imputation and scaling statistics (f32, as the graph applies them).
fn standardisation(x: &[f32], n: usize, f: usize) -> (Vec<f32>, Vec<f32>) {
    let mut mean = vec![0f32; f];
    let mut scale = vec![1f32; f];
    for j in 0..f {
        let vals: Vec<f64> = (0..n)
            .map(|i| f64::from(x[i * f + j]))
            .filter(|v| !v.is_nan())
            .collect();
        if vals.is_empty() {
            continue;
        }
        let m = vals.iter().sum::<f64>() / vals.len() as f64;
        // Missing values are filled with the mean, so they add nothing to the variance.
        let var = vals.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / n.max(1) as f64;
        mean[j] = m as f32;
        let sd = var.sqrt() as f32;
        scale[j] = if sd.is_finite() && sd > 1e-6 { sd } else { 1.0 };
    }
    (mean, scale)
}

/// A fitted network plus the device it was trained on.
#[derive(Debug, Clone)]
pub struct Net {
    pub network: Network,
}

/// Fits on row-major `x` (`n` rows of `f`, NaN = missing) with targets `y` (0/1, class
/// index or value) and per-row weights. `k` is the number of classes (multi-class).
#[allow(clippy::too_many_arguments)]
pub fn fit(
    x: &[f32],
    n: usize,
    f: usize,
    y: &[f64],
    weights: &[f64],
    task: Task,
    k: usize,
    params: &NetParams,
    epochs: usize,
    seed: u64,
) -> Result<Net, TrainError> {
    if n == 0 || x.len() != n * f || y.len() != n || weights.len() != n {
        return Err(TrainError::Fit(
            "network: empty or mismatched training data".into(),
        ));
    }
    let dev = device();
    let (mean, scale) = standardisation(x, n, f);
    let proto = Network {
        fill: mean.clone(),
        mean: mean.clone(),
        scale: scale.clone(),
        layers: Vec::new(),
        head: Head::Identity,
    };
    let mut xs = Vec::with_capacity(n * f);
    for i in 0..n {
        xs.extend(proto.standardise(&x[i * f..(i + 1) * f]));
    }
    let out = match task {
        Task::MulticlassClassification => k,
        _ => 1,
    };
    let (y_mean, y_scale) = if task == Task::Regression {
        let m = y.iter().sum::<f64>() / n as f64;
        let sd = (y.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / n as f64).sqrt();
        (m, if sd > 1e-12 { sd } else { 1.0 })
    } else {
        (0.0, 1.0)
    };
    let target: Vec<f32> = match task {
        Task::MulticlassClassification => {
            let mut t = vec![0f32; n * k];
            for (i, v) in y.iter().enumerate() {
                t[i * k + (*v as usize).min(k - 1)] = 1.0;
            }
            t
        }
        _ => y.iter().map(|v| ((v - y_mean) / y_scale) as f32).collect(),
    };
    let xs = Tensor::from_vec(xs, (n, f), &dev).map_err(err)?;
    let ys = Tensor::from_vec(target, (n, out), &dev).map_err(err)?;
    let ws = Tensor::from_vec(
        weights.iter().map(|w| *w as f32).collect::<Vec<_>>(),
        (n, 1),
        &dev,
    )
    .map_err(err)?;

    // Layers, initialised from the seed: weights U(±sqrt(6/fan_in)) (He) under ReLU,
    // U(±1/sqrt(fan_in)) for the output layer; biases 0.
    let mut dims = vec![f];
    dims.extend(params.hidden.iter().copied());
    dims.push(out);
    let mut rng = seed ^ 0x6d6c_7069_7065;
    let mut vars = Vec::new();
    for (li, d) in dims.windows(2).enumerate() {
        let last = li + 2 == dims.len();
        let bound = if last {
            1.0 / (d[0] as f32).sqrt()
        } else {
            (6.0 / d[0] as f32).sqrt()
        };
        let w: Vec<f32> = (0..d[0] * d[1])
            .map(|_| (uniform(&mut rng) * 2.0 - 1.0) * bound)
            .collect();
        vars.push(
            Var::from_tensor(&Tensor::from_vec(w, (d[0], d[1]), &dev).map_err(err)?)
                .map_err(err)?,
        );
        vars.push(
            Var::from_tensor(&Tensor::zeros(d[1], DType::F32, &dev).map_err(err)?).map_err(err)?,
        );
    }
    let forward = |x: &Tensor, vars: &[Var]| -> candle_core::Result<Tensor> {
        let mut h = x.clone();
        let layers = vars.len() / 2;
        for l in 0..layers {
            h = h
                .matmul(vars[2 * l].as_tensor())?
                .broadcast_add(vars[2 * l + 1].as_tensor())?;
            if l + 1 < layers {
                h = h.relu()?;
            }
        }
        Ok(h)
    };
    let loss_fn = |z: &Tensor, y: &Tensor, w: &Tensor| -> candle_core::Result<Tensor> {
        let per = match task {
            // Stable logistic loss: max(z,0) - z*y + ln(1 + e^-|z|).
            Task::BinaryClassification => {
                let softplus = (z.abs()?.neg()?.exp()? + 1.0)?.log()?;
                ((z.relu()? - (z * y)?)? + softplus)?
            }
            Task::MulticlassClassification => {
                let logp = candle_nn::ops::log_softmax(z, D::Minus1)?;
                (logp * y)?.sum_keepdim(1)?.neg()?
            }
            Task::Regression => (z - y)?.sqr()?,
        };
        (per.broadcast_mul(w))?.sum_all()? / w.sum_all()?.to_scalar::<f32>()? as f64
    };
    let mut opt = AdamW::new(
        vars.clone(),
        ParamsAdamW {
            lr: params.learning_rate,
            weight_decay: params.weight_decay,
            ..Default::default()
        },
    )
    .map_err(err)?;
    let bs = params.batch_size.clamp(1, n);
    let mut order: Vec<u32> = (0..n as u32).collect();
    for _ in 0..epochs.max(1) {
        for i in (1..n).rev() {
            order.swap(i, (splitmix(&mut rng) % (i as u64 + 1)) as usize);
        }
        let perm = Tensor::from_vec(order.clone(), n, &dev).map_err(err)?;
        for start in (0..n).step_by(bs) {
            let idx = perm.narrow(0, start, bs.min(n - start)).map_err(err)?;
            let step = || -> candle_core::Result<Tensor> {
                let z = forward(&xs.index_select(&idx, 0)?, &vars)?;
                loss_fn(&z, &ys.index_select(&idx, 0)?, &ws.index_select(&idx, 0)?)
            };
            let loss = step().map_err(err)?;
            opt.backward_step(&loss).map_err(err)?;
        }
    }
    let loss = loss_fn(&forward(&xs, &vars).map_err(err)?, &ys, &ws)
        .and_then(|l| l.to_scalar::<f32>())
        .map_err(err)?;
    if !loss.is_finite() {
        return Err(TrainError::Fit(format!(
            "network: training diverged (loss {loss}); lower the learning rate"
        )));
    }
    let mut layers = Vec::new();
    for (li, d) in dims.windows(2).enumerate() {
        let mut weights = vars[2 * li]
            .as_tensor()
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(err)?;
        let mut bias = vars[2 * li + 1].as_tensor().to_vec1::<f32>().map_err(err)?;
        if li + 2 == dims.len() && task == Task::Regression {
            weights.iter_mut().for_each(|w| *w *= y_scale as f32);
            bias.iter_mut()
                .for_each(|b| *b = (f64::from(*b) * y_scale + y_mean) as f32);
        }
        layers.push(Dense {
            inputs: d[0],
            outputs: d[1],
            weights,
            bias,
        });
    }
    Ok(Net {
        network: Network {
            layers,
            head: match task {
                Task::BinaryClassification => Head::Sigmoid,
                Task::MulticlassClassification => Head::Softmax,
                Task::Regression => Head::Identity,
            },
            ..proto
        },
    })
}

impl Net {
    /// Model outputs computed by candle, row-major: binary P(positive) (1 per row),
    /// multi-class probabilities (k per row), regression value (1 per row).
    pub fn predict(&self, x: &[f32], n: usize) -> Result<Vec<f64>, TrainError> {
        let m = &self.network;
        let f = m.n_features();
        if n == 0 {
            return Ok(Vec::new());
        }
        let dev = Device::Cpu;
        let mut xs = Vec::with_capacity(n * f);
        for i in 0..n {
            xs.extend(m.standardise(&x[i * f..(i + 1) * f]));
        }
        let run = || -> candle_core::Result<Vec<f32>> {
            let mut h = Tensor::from_vec(xs, (n, f), &dev)?;
            for (i, l) in m.layers.iter().enumerate() {
                let w = Tensor::from_slice(&l.weights, (l.inputs, l.outputs), &dev)?;
                let b = Tensor::from_slice(&l.bias, l.outputs, &dev)?;
                h = h.matmul(&w)?.broadcast_add(&b)?;
                if i + 1 < m.layers.len() {
                    h = h.relu()?;
                }
            }
            let h = match m.head {
                Head::Sigmoid => candle_nn::ops::sigmoid(&h)?,
                Head::Softmax => candle_nn::ops::softmax(&h, D::Minus1)?,
                Head::Identity => h,
            };
            h.flatten_all()?.to_vec1::<f32>()
        };
        Ok(run().map_err(err)?.into_iter().map(f64::from).collect())
    }

    pub fn to_onnx(&self) -> Result<Vec<u8>, TrainError> {
        export::network_to_onnx(&self.network).map_err(|e| TrainError::Export(e.to_string()))
    }

    /// Permutation sensitivity on up to 2,000 rows of `x`: the mean absolute change of the
    /// model output when one column is shuffled, normalised to sum to 1.
    pub fn importance(&self, x: &[f32], n: usize, seed: u64) -> Vec<f64> {
        let m = &self.network;
        let f = m.n_features();
        let n = n.min(2000);
        let base: Vec<Vec<f32>> = (0..n).map(|i| m.forward(&x[i * f..(i + 1) * f])).collect();
        let mut rng = seed;
        let mut out = vec![0f64; f];
        for (j, slot) in out.iter_mut().enumerate() {
            let mut perm: Vec<usize> = (0..n).collect();
            for i in (1..n).rev() {
                perm.swap(i, (splitmix(&mut rng) % (i as u64 + 1)) as usize);
            }
            let mut total = 0f64;
            for i in 0..n {
                let mut row = x[i * f..(i + 1) * f].to_vec();
                row[j] = x[perm[i] * f + j];
                let p = m.forward(&row);
                total += p
                    .iter()
                    .zip(&base[i])
                    .map(|(a, b)| f64::from((a - b).abs()))
                    .sum::<f64>();
            }
            *slot = total / n.max(1) as f64;
        }
        crate::gbm::normalise(&mut out);
        out
    }
}
