//! `mlpipe sample`: write seeded sample card transactions as CSV.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::Args;

#[derive(Args)]
pub struct SampleArgs {
    #[arg(long, default_value_t = 20_000)]
    rows: usize,
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Deliberately broken rows to include (they land in quarantine).
    #[arg(long, default_value_t = 12)]
    bad_rows: usize,
}

pub fn run(args: SampleArgs) -> Result<ExitCode> {
    let SampleArgs {
        rows,
        out,
        seed,
        bad_rows,
    } = args;
    let file =
        std::fs::File::create(&out).with_context(|| format!("creating {}", out.display()))?;
    let mut writer = std::io::BufWriter::new(file);
    let opts = mlpipe::sample::SampleOptions {
        rows,
        seed,
        bad_rows,
        ..Default::default()
    };
    let stats = mlpipe::sample::generate(&opts, &mut writer)
        .with_context(|| format!("writing {}", out.display()))?;
    std::io::Write::flush(&mut writer)?;
    println!(
        "wrote {}: {} transactions ({} fraud), {} broken rows",
        out.display(),
        stats.rows,
        stats.fraud,
        stats.bad
    );
    Ok(ExitCode::SUCCESS)
}
