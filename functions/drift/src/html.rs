//! A self-contained HTML page for one report: a summary, then per feature its test, score
//! and a reference-vs-current histogram drawn as inline SVG (no scripts, no fonts or styles
//! from elsewhere), so it opens offline and can be mailed or attached to a ticket.

use std::fmt::Write as _;

use crate::Report;
use crate::check::FeatureDrift;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn fmt_opt(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{v:.4}"))
}

/// Reference (grey) and current (blue) shares per bin, side by side.
fn histogram_svg(f: &FeatureDrift) -> String {
    let h = &f.histogram;
    let n = h.bins.len().max(1);
    let (w, ht, pad) = (520.0_f64, 140.0_f64, 20.0_f64);
    let rs: f64 = h.reference.iter().sum::<f64>().max(1.0);
    let cs: f64 = h.current.iter().sum::<f64>().max(1.0);
    let shares: Vec<(f64, f64)> = (0..h.bins.len())
        .map(|i| {
            (
                h.reference.get(i).copied().unwrap_or(0.0) / rs,
                h.current.get(i).copied().unwrap_or(0.0) / cs,
            )
        })
        .collect();
    let top = shares
        .iter()
        .flat_map(|(a, b)| [*a, *b])
        .fold(0.0_f64, f64::max)
        .max(1e-9);
    let slot = (w - 2.0 * pad) / n as f64;
    let bar = (slot / 2.0 - 1.0).max(1.0);
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{}" role="img" aria-label="histogram of {}">"#,
        ht + 2.0 * pad,
        esc(&f.feature)
    );
    for (i, (r, c)) in shares.iter().enumerate() {
        let x = pad + i as f64 * slot;
        let rh = r / top * ht;
        let ch = c / top * ht;
        let label = esc(h.bins.get(i).map(String::as_str).unwrap_or(""));
        let _ = write!(
            s,
            r##"<rect x="{x:.1}" y="{:.1}" width="{bar:.1}" height="{rh:.1}" fill="#9aa0a6"><title>{label}: reference {:.1}%</title></rect><rect x="{:.1}" y="{:.1}" width="{bar:.1}" height="{ch:.1}" fill="#1a73e8"><title>{label}: current {:.1}%</title></rect>"##,
            pad + ht - rh,
            r * 100.0,
            x + bar + 1.0,
            pad + ht - ch,
            c * 100.0
        );
    }
    let _ = write!(
        s,
        r##"<line x1="{pad}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#555"/></svg>"##,
        pad + ht,
        w - pad,
        pad + ht
    );
    s
}

/// The page for `report`.
pub fn render(report: &Report) -> String {
    let v = &report.verdict;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Drift: {model} {run}</title><style>
body{{font-family:system-ui,sans-serif;margin:2em;color:#202124}}table{{border-collapse:collapse}}td,th{{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left}}
.drift{{color:#c5221f;font-weight:600}}.ok{{color:#188038}}.muted{{color:#777}}section{{margin:1.5em 0}}
</style></head><body><h1>Drift report: {model} version {version}</h1>
<p>Window {run} ({window}) &middot; {rows} rows &middot; logs {logs} &middot; reference {profile}</p>
<p class="{cls}">{verdict}</p><table><tr><th>feature</th><th>kind</th><th>test</th><th>score</th><th>threshold</th><th>p-value</th><th>rows</th><th>drift</th></tr>"#,
        model = esc(&report.model),
        run = esc(&report.run),
        version = report.version,
        window = esc(&report.window),
        rows = v.rows,
        logs = esc(&report.logs),
        profile = esc(&report.reference_profile),
        cls = if v.dataset_drift { "drift" } else { "ok" },
        verdict = if !v.judged {
            format!(
                "Not judged: {} rows (fewer than the minimum) or no testable feature.",
                v.rows
            )
        } else if v.dataset_drift {
            format!(
                "Dataset drift: {} of {} features drifted ({:.0}% &ge; {:.0}%).",
                v.features_drifted,
                v.features_tested,
                v.drift_share * 100.0,
                v.threshold_share * 100.0
            )
        } else {
            format!(
                "No dataset drift: {} of {} features drifted ({:.0}% &lt; {:.0}%).",
                v.features_drifted,
                v.features_tested,
                v.drift_share * 100.0,
                v.threshold_share * 100.0
            )
        }
    );
    for f in report.features.iter().chain(&report.prediction) {
        let _ = write!(
            s,
            r##"<tr><td><a href="#f-{id}">{name}</a></td><td>{kind}</td><td>{test:?}</td><td>{score}</td><td>{thr}</td><td>{p}</td><td>{rows}</td><td class="{cls}">{drift}</td></tr>"##,
            id = esc(&f.feature),
            name = esc(&f.feature),
            kind = f.kind,
            test = f.test,
            score = fmt_opt(f.score),
            thr = f.threshold,
            p = fmt_opt(f.p_value),
            rows = f.current_rows,
            cls = if f.ignored {
                "muted"
            } else if f.drifted {
                "drift"
            } else {
                "ok"
            },
            drift = if f.ignored {
                "not tested"
            } else if f.drifted {
                "drift"
            } else {
                "ok"
            }
        );
    }
    s.push_str("</table>");
    for f in report.features.iter().chain(&report.prediction) {
        let _ = write!(
            s,
            r#"<section id="f-{id}"><h2>{name}</h2><p>{kind}, {test:?}: score {score} (threshold {thr}); null rate {rn:.2}% reference, {cn:.2}% current{new}{note}</p>{svg}<p class="muted">grey: reference share per bin; blue: current share</p></section>"#,
            id = esc(&f.feature),
            name = esc(&f.feature),
            kind = f.kind,
            test = f.test,
            score = fmt_opt(f.score),
            thr = f.threshold,
            rn = f.reference_null_rate * 100.0,
            cn = f.current_null_rate * 100.0,
            new = if f.new_categories.is_empty() {
                String::new()
            } else {
                format!("; new categories: {}", esc(&f.new_categories.join(", ")))
            },
            note = f
                .note
                .as_deref()
                .map(|n| format!("; {}", esc(n)))
                .unwrap_or_default(),
            svg = histogram_svg(f)
        );
    }
    let _ = write!(
        s,
        r#"<p class="muted">Written {} by mlpipe's drift stage.</p></body></html>"#,
        esc(&report.created_at)
    );
    s
}
