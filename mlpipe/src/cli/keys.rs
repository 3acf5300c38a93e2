//! `mlpipe keys`: API keys for the edge endpoints. A key is printed once, at creation; the
//! store keeps its SHA-256 only (`keys/<id>.json`), and the publish stage copies the hashes
//! to the edge (`edge/keys.json`). Revoking keeps the record, so a revoked key is answered
//! 403 and still listed.

use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Subcommand;
use records::access::ApiKey;
use serde_json::json;

use super::Context;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create a key and print it (once: only its SHA-256 is stored).
    Create {
        /// A unique name for the key (letters, digits, '-', '_', '.'); `revoke` takes it.
        #[arg(long)]
        name: String,
        /// Models the key may call, comma-separated (default: every model).
        #[arg(long, value_delimiter = ',')]
        models: Vec<String>,
        /// Lifetime: a number with s, m, h or d (e.g. 90d); default: no expiry.
        #[arg(long)]
        expires: Option<String>,
        /// Let the key call any model version by number (without it: only the versions
        /// that hold an alias, champion or challenger).
        #[arg(long)]
        any_version: bool,
        /// Requests per second this key may make (burst: the same number, at least 1),
        /// instead of the server's default. On the Worker: the nearest rate-limit tier.
        #[arg(long)]
        rate: Option<f64>,
        #[arg(long)]
        json: bool,
    },
    /// Every key: name, prefix, scope, created, expires, state (keys themselves are never
    /// shown again).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by name; running servers refuse it within their key refresh interval.
    Revoke {
        name: String,
        #[arg(long)]
        json: bool,
    },
}

/// `90d`, `12h`, `30m`, `45s` as microseconds.
pub fn parse_duration_us(text: &str) -> Result<i64> {
    let text = text.trim();
    let (digits, unit) = text.split_at(text.len().saturating_sub(1));
    let n: i64 = match digits.parse() {
        Ok(n) if n > 0 => n,
        _ => {
            bail!("'{text}' is not a duration: use a positive number with s, m, h or d (e.g. 90d)")
        }
    };
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            bail!("'{text}' is not a duration: use a positive number with s, m, h or d (e.g. 90d)")
        }
    };
    n.checked_mul(secs)
        .and_then(|s| s.checked_mul(1_000_000))
        .ok_or_else(|| anyhow::anyhow!("'{text}' is too long a duration"))
}

fn now_us() -> i64 {
    storage::now_ms().saturating_mul(1000)
}

/// Microseconds since the epoch as RFC 3339 (UTC, seconds).
fn time(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| us.to_string())
}

fn state(k: &ApiKey, now: i64) -> &'static str {
    if k.revoked_at_us.is_some_and(|t| t <= now) {
        "revoked"
    } else if k.expires_at_us.is_some_and(|t| t <= now) {
        "expired"
    } else {
        "active"
    }
}

/// A key's listing: never its hash or secret.
fn row(k: &ApiKey, now: i64, last_used: Option<i64>) -> serde_json::Value {
    json!({
        "name": k.name,
        "prefix": k.prefix(),
        "models": k.models,
        "created": time(k.created_at_us),
        "expires": k.expires_at_us.map(time),
        "revoked": k.revoked_at_us.map(time),
        "rate_per_s": k.rate_per_s,
        "any_version": k.any_version,
        "state": state(k, now),
        // Reported by native servers (`keys/<id>.last-used`); the edge runtimes do not
        // report use back to the store.
        "last_used": last_used.map(time),
    })
}

pub async fn run(ctx: &Context, command: KeysCommand) -> Result<ExitCode> {
    let store = ctx.open()?;
    let now = now_us();
    match command {
        KeysCommand::Create {
            name,
            models,
            expires,
            any_version,
            rate,
            json,
        } => {
            if let Some(r) = rate
                && !(r > 0.0 && r.is_finite())
            {
                bail!("--rate must be a number of requests per second above 0");
            }
            let expires_at_us = match expires {
                Some(e) => Some(now.saturating_add(parse_duration_us(&e)?)),
                None => None,
            };
            let models: Vec<String> = models
                .into_iter()
                .map(|m| m.trim().to_string())
                .filter(|m| !m.is_empty())
                .collect();
            let scope = access::Scope {
                models,
                expires_at_us,
                rate_per_s: rate,
                any_version,
            };
            let (key, record) = access::create(&store, &name, scope, now).await?;
            if json {
                let mut v = row(&record, now, None);
                v["key"] = json!(key);
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("{key}");
                eprintln!(
                    "created key '{}' ({}{}{}): store it now, it is not shown again; `mlpipe publish` (or the pipeline's publish stage) gives it to the edge",
                    record.name,
                    record.prefix(),
                    if record.models.is_empty() {
                        ", every model".to_string()
                    } else {
                        format!(", models {}", record.models.join(","))
                    },
                    record
                        .expires_at_us
                        .map_or(String::new(), |t| format!(", expires {}", time(t)))
                );
            }
        }
        KeysCommand::List { json } => {
            let keys = access::list(&store).await?;
            let used = access::last_used(&store).await?;
            if json {
                let rows: Vec<_> = keys
                    .iter()
                    .map(|k| row(k, now, used.get(&k.id).copied()))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else if keys.is_empty() {
                println!("no API keys (create one with `mlpipe keys create --name NAME`)");
            } else {
                println!(
                    "{:<20} {:<18} {:<20} {:<21} {:<21} {:<8} last used",
                    "name", "prefix", "models", "created", "expires", "state"
                );
                for k in &keys {
                    println!(
                        "{:<20} {:<18} {:<20} {:<21} {:<21} {:<8} {}",
                        k.name,
                        k.prefix(),
                        if k.models.is_empty() {
                            "*".to_string()
                        } else {
                            k.models.join(",")
                        },
                        time(k.created_at_us),
                        k.expires_at_us.map_or("never".into(), time),
                        state(k, now),
                        used.get(&k.id).map_or("-".into(), |t| time(*t)),
                    );
                }
            }
        }
        KeysCommand::Revoke { name, json } => {
            let record = access::revoke(&store, &name, now).await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&row(&record, now, None))?
                );
            } else {
                println!(
                    "revoked key '{}' ({}); servers refuse it within their key refresh interval",
                    record.name,
                    record.prefix()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::parse_duration_us;

    #[test]
    fn durations_read_with_their_unit() {
        assert_eq!(parse_duration_us("90d").ok(), Some(90 * 86_400 * 1_000_000));
        assert_eq!(parse_duration_us("2h").ok(), Some(7_200_000_000));
        assert_eq!(parse_duration_us("1s").ok(), Some(1_000_000));
        for bad in [
            "",
            "d",
            "0d",
            "-1d",
            "10",
            "10w",
            "1.5h",
            "99999999999999999d",
        ] {
            assert!(parse_duration_us(bad).is_err(), "{bad}");
        }
    }
}
