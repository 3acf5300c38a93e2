//! Seeded generator of realistic card transactions for the sample project and the benchmarks.
//!
//! Fraud is behavioural, so windowed features matter: a compromised card suddenly makes a
//! burst of transactions within an hour or two, for amounts several times its own usual
//! spend, in a country and at merchants it has never used, mostly online. A single
//! transaction seen alone looks ordinary far more often than not.

use std::io::Write;

use chrono::{DateTime, TimeZone, Utc};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub const HEADER: &str = "transaction_id,card_id,merchant_id,merchant_category,amount,currency,country,channel,timestamp,is_fraud";

const CATEGORIES: [(&str, f64); 8] = [
    ("grocery", 45.0),
    ("restaurants", 35.0),
    ("fuel", 60.0),
    ("travel", 400.0),
    ("electronics", 250.0),
    ("online_retail", 70.0),
    ("entertainment", 30.0),
    ("pharmacy", 25.0),
];
const COUNTRIES: [(&str, &str); 8] = [
    ("FR", "EUR"),
    ("DE", "EUR"),
    ("ES", "EUR"),
    ("IT", "EUR"),
    ("GB", "GBP"),
    ("US", "USD"),
    ("NL", "EUR"),
    ("IE", "EUR"),
];
const FOREIGN: [&str; 6] = ["BR", "NG", "RU", "VN", "PH", "UA"];

/// Options for [`generate`].
#[derive(Debug, Clone)]
pub struct SampleOptions {
    pub rows: usize,
    pub seed: u64,
    /// Deliberately broken rows appended (spread through the file) to show the quarantine.
    pub bad_rows: usize,
    pub start: DateTime<Utc>,
    pub days: i64,
}

impl Default for SampleOptions {
    fn default() -> Self {
        SampleOptions {
            rows: 20_000,
            seed: 42,
            bad_rows: 12,
            start: Utc
                .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
                .single()
                .unwrap_or_default(),
            days: 60,
        }
    }
}

struct Card {
    id: String,
    country: usize,
    typical: f64,
    merchants: Vec<usize>,
}

struct Tx {
    ts: i64,
    line: String,
}

/// Summary of a generated file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct SampleStats {
    pub rows: usize,
    pub fraud: usize,
    pub bad: usize,
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    // Box-Muller.
    let u1: f64 = rng.random::<f64>().max(1e-12);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// Writes a CSV of about `rows` transactions (plus `bad_rows` broken ones) to `out`.
pub fn generate(opts: &SampleOptions, out: &mut impl Write) -> std::io::Result<SampleStats> {
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let n_merchants = (opts.rows / 50).clamp(50, 20_000);
    let merchant_category: Vec<usize> = (0..n_merchants)
        .map(|_| rng.random_range(0..CATEGORIES.len()))
        .collect();
    let n_cards = (opts.rows / 40).max(10);
    let span = opts.days * 86_400;
    let start = opts.start.timestamp();
    let mut txs: Vec<Tx> = Vec::with_capacity(opts.rows + opts.bad_rows);
    let mut fraud = 0;
    let mut tx_counter: u64 = 0;
    let mut next_id = |rng: &mut ChaCha8Rng| {
        tx_counter += 1;
        format!(
            "tx_{:016x}",
            (tx_counter << 20) ^ rng.random_range(0..1u64 << 20)
        )
    };
    let cards: Vec<Card> = (0..n_cards)
        .map(|i| {
            let country = if rng.random_bool(0.5) {
                0
            } else {
                rng.random_range(0..COUNTRIES.len())
            };
            let merchants = (0..rng.random_range(3..9))
                .map(|_| rng.random_range(0..n_merchants))
                .collect();
            Card {
                id: format!("card_{i:06}"),
                country,
                typical: (3.0 + 0.6 * normal(&mut rng)).exp(),
                merchants,
            }
        })
        .collect();
    let per_card = opts.rows as f64 / n_cards as f64;
    for card in &cards {
        let count = ((per_card * (0.5 + rng.random::<f64>())).round() as usize).max(1);
        let (country, currency) = COUNTRIES[card.country];
        for _ in 0..count {
            let ts = start + rng.random_range(0..span);
            let merchant = if rng.random_bool(0.85) {
                card.merchants[rng.random_range(0..card.merchants.len())]
            } else {
                rng.random_range(0..n_merchants)
            };
            let (category, base) = CATEGORIES[merchant_category[merchant]];
            let amount = (card.typical * base / 50.0 * (0.35 * normal(&mut rng)).exp()).max(0.5);
            let channel = match rng.random_range(0..10) {
                0..=5 => "pos",
                6..=8 => "online",
                _ => "atm",
            };
            let travelling = rng.random_bool(0.02);
            let tx_country = if travelling {
                COUNTRIES[rng.random_range(0..COUNTRIES.len())].0
            } else {
                country
            };
            // A little label noise: some fraud looks like ordinary spending.
            let label = rng.random_bool(0.0007);
            fraud += label as usize;
            let id = next_id(&mut rng);
            txs.push(Tx {
                ts,
                line: line(
                    &id, &card.id, merchant, category, amount, currency, tx_country, channel, ts,
                    label,
                ),
            });
        }
        // About 5% of cards are compromised once: a burst of unusual spending.
        if rng.random_bool(0.05) {
            let t0 = start + rng.random_range(span / 10..span);
            let foreign = FOREIGN[rng.random_range(0..FOREIGN.len())];
            for _ in 0..rng.random_range(3..9) {
                let ts = t0 + rng.random_range(0..7200);
                let merchant = rng.random_range(0..n_merchants);
                let (category, _) = CATEGORIES[merchant_category[merchant]];
                let amount = card.typical * rng.random_range(3.0..12.0);
                let channel = if rng.random_bool(0.8) {
                    "online"
                } else {
                    "pos"
                };
                let tx_country = if rng.random_bool(0.75) {
                    foreign
                } else {
                    country
                };
                let id = next_id(&mut rng);
                fraud += 1;
                txs.push(Tx {
                    ts,
                    line: line(
                        &id, &card.id, merchant, category, amount, currency, tx_country, channel,
                        ts, true,
                    ),
                });
            }
        }
    }
    txs.sort_by_key(|t| t.ts);
    let good = txs.len();
    let bad = bad_rows(&mut rng, opts.bad_rows, &txs, start);
    writeln!(out, "{HEADER}")?;
    let stride = if bad.is_empty() {
        usize::MAX
    } else {
        (good / (bad.len() + 1)).max(1)
    };
    let mut bad_iter = bad.iter();
    for (i, tx) in txs.iter().enumerate() {
        writeln!(out, "{}", tx.line)?;
        if (i + 1) % stride == 0
            && let Some(b) = bad_iter.next()
        {
            writeln!(out, "{b}")?;
        }
    }
    for b in bad_iter {
        writeln!(out, "{b}")?;
    }
    Ok(SampleStats {
        rows: good,
        fraud,
        bad: bad.len(),
    })
}

#[allow(clippy::too_many_arguments)]
fn line(
    id: &str,
    card: &str,
    merchant: usize,
    category: &str,
    amount: f64,
    currency: &str,
    country: &str,
    channel: &str,
    ts: i64,
    fraud: bool,
) -> String {
    let time = DateTime::from_timestamp(ts, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ");
    format!(
        "{id},{card},m_{merchant:05},{category},{amount:.2},{currency},{country},{channel},{time},{}",
        fraud as u8
    )
}

/// Broken rows of the kinds real exports contain; each breaks at least one contract rule.
fn bad_rows(rng: &mut ChaCha8Rng, n: usize, txs: &[Tx], start: i64) -> Vec<String> {
    let ts = DateTime::from_timestamp(start + 86_400, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let kinds = [
        format!("tx_bad0000000000001,card_000001,m_00001,grocery,-12.50,EUR,FR,pos,{ts},0"),
        format!("tx_bad0000000000002,card_000002,m_00002,grocery,12.50,XXX,FR,pos,{ts},0"),
        "tx_bad0000000000003,card_000003,m_00003,grocery,12.50,EUR,FR,pos,not-a-date,0".to_string(),
        format!("tx_bad0000000000004,,m_00004,grocery,12.50,EUR,FR,pos,{ts},0"),
        format!("tx_bad0000000000005,card_000005,m_00005,grocery,\"12,50\",EUR,FR,pos,{ts},0"),
        format!("tx_bad0000000000006,card_000006,m_00006,casino,12.50,EUR,FR,pos,{ts},0"),
        format!("tx_bad0000000000007,card_000007,m_00007,grocery,12.50,EUR,FR,pos,{ts},maybe"),
        format!("tx_bad0000000000008,card_000008,m_00008,grocery,99999999,EUR,FR,pos,{ts},0"),
        format!("bad id,card_000009,m_00009,grocery,12.50,EUR,FR,telepathy,{ts},0"),
        format!("tx_bad000000000000a,card_000010,m_00010,grocery,12.50,EUR,France,pos,{ts},0"),
    ];
    let mut out: Vec<String> = kinds.into_iter().take(n).collect();
    // Duplicates of real transaction ids (a re-sent row).
    while out.len() < n && !txs.is_empty() {
        out.push(txs[rng.random_range(0..txs.len())].line.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_file_and_fraud_is_rare_but_present() {
        let opts = SampleOptions {
            rows: 5000,
            ..Default::default()
        };
        let mut a = Vec::new();
        let mut b = Vec::new();
        let stats = generate(&opts, &mut a).unwrap();
        generate(&opts, &mut b).unwrap();
        assert_eq!(a, b);
        assert!(stats.rows > 3000 && stats.rows < 8000, "{stats:?}");
        assert!(
            stats.fraud > 0 && stats.fraud * 20 < stats.rows,
            "{stats:?}"
        );
        let text = String::from_utf8(a).unwrap();
        assert!(text.starts_with(HEADER));
        assert_eq!(text.lines().count(), 1 + stats.rows + stats.bad);
    }
}
