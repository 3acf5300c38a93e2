//! The monitoring assets in `infra/monitoring/` against the metric list in
//! `telemetry::names`: the alert rules load and pass their unit tests under promtool, the
//! dashboard's queries parse; every metric and label the dashboard and the rules query
//! exists, with the right kind; every alert links to a section of the runbook.
//!
//! promtool comes from `MLPIPE_PROMTOOL`, the PATH or `.tools/prometheus/usr/bin/promtool`
//! (where `cargo xtask test` unpacks it). Without it the promtool test is skipped, loudly,
//! except under `CI`, where it fails.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use telemetry::names::{ALL, Kind, Metric};

const DASHBOARD: &str = "infra/monitoring/grafana/mlpipe-dashboard.json";
const ALERTS: &str = "infra/monitoring/prometheus/alerts.yml";
const ALERT_TESTS: &str = "infra/monitoring/prometheus/alerts.test.yml";
const RUNBOOK: &str = "docs/monitoring.md";

/// Label values the code emits, for the labels that have a closed set: a matcher on any
/// other value is a typo that silently matches nothing.
const VALUES: &[(&str, &[&str])] = &[
    (
        "stage",
        &["ingest", "features", "train", "publish", "drift"],
    ),
    ("outcome", &["ok", "failed", "rejected", "skipped"]),
    ("kind", &["in", "out", "rejected"]),
    ("direction", &["read", "written"]),
    ("reason", &["drift", "performance"]),
    (
        "test",
        &["ks", "wasserstein", "psi", "chisquare", "jensenshannon"],
    ),
];

/// Keywords followed by a parenthesised list of label names.
const GROUPING: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(rel: &str) -> String {
    let path = root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn assert_no_problems(what: &str, problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{what}: {} problem(s):\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

// ---------------------------------------------------------------------------------------
// promtool

/// `MLPIPE_PROMTOOL`, else `promtool` on the PATH, else the copy `cargo xtask test` unpacks.
fn find_promtool(root: &Path) -> Option<PathBuf> {
    if let Some(set) = std::env::var_os("MLPIPE_PROMTOOL").filter(|v| !v.is_empty()) {
        let path = PathBuf::from(set);
        assert!(
            path.is_file(),
            "MLPIPE_PROMTOOL={} is not a file",
            path.display()
        );
        return Some(path);
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("promtool"))
            .find(|p| p.is_file())
    });
    let unpacked = root.join(".tools/prometheus/usr/bin/promtool");
    on_path.or_else(|| unpacked.is_file().then_some(unpacked))
}

fn run_promtool(promtool: &Path, args: &[&str]) {
    let out = Command::new(promtool)
        .args(args)
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", promtool.display()));
    assert!(
        out.status.success(),
        "`promtool {}` failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A Grafana query as PromQL: `$__rate_interval`, `$__interval` and `$__range` become
/// durations, every other variable (`$model`, `${model:regex}`) the regex `.*`.
fn grafana_to_promql(expr: &str) -> String {
    let mut out = String::with_capacity(expr.len());
    let mut rest = expr;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let (name, tail) = match after.strip_prefix('{') {
            Some(braced) => braced.split_once('}').unwrap_or((braced, "")),
            None => {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                after.split_at(end)
            }
        };
        let name = name.split(':').next().unwrap_or(name);
        out.push_str(match name {
            "__rate_interval" => "5m",
            "__interval" => "1m",
            "__range" => "1d",
            _ => ".*",
        });
        rest = tail;
    }
    out.push_str(rest);
    out
}

#[test]
fn promtool_accepts_the_rules_their_tests_and_the_dashboard_queries() {
    let root = root();
    let Some(promtool) = find_promtool(&root) else {
        let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
        assert!(
            !ci,
            "promtool not found (MLPIPE_PROMTOOL, PATH, .tools/prometheus/usr/bin/promtool) and \
             CI is set: `cargo xtask test` installs it into .tools/prometheus (Debian's \
             prometheus package, unpacked)"
        );
        eprintln!(
            "\n********************************************************************\n\
             SKIPPED promtool checks of {ALERTS} and {ALERT_TESTS}:\n\
             promtool not found (MLPIPE_PROMTOOL, PATH, .tools/prometheus/usr/bin/promtool).\n\
             `cargo xtask test` installs it.\n\
             ********************************************************************\n"
        );
        return;
    };
    run_promtool(&promtool, &["check", "rules", ALERTS]);
    run_promtool(&promtool, &["test", "rules", ALERT_TESTS]);

    // The dashboard's queries, as recording rules: promtool parses each expression.
    let dashboard: Value = serde_json::from_str(&read(DASHBOARD)).unwrap();
    let mut queries = Vec::new();
    exprs_in(&dashboard, "", "", &mut queries);
    assert!(!queries.is_empty(), "{DASHBOARD}: no queries");
    let mut rules = String::from("groups:\n  - name: mlpipe-dashboard-queries\n    rules:\n");
    for (i, (place, expr)) in queries.iter().enumerate() {
        let expr = serde_json::to_string(&grafana_to_promql(expr)).unwrap();
        rules.push_str(&format!(
            "      # {place}\n      - record: dashboard_query_{i}\n        expr: {expr}\n"
        ));
    }
    let file = std::env::temp_dir().join(format!(
        "mlpipe-dashboard-queries-{}.yml",
        std::process::id()
    ));
    std::fs::write(&file, &rules).unwrap();
    let out = Command::new(promtool)
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(file);
    assert!(
        out.status.success(),
        "{DASHBOARD}: promtool cannot parse a query (rule dashboard_query_N is the Nth):\n{}\n{}\n{rules}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------------------------------
// PromQL: just enough lexing to find metric names, label matchers and grouping clauses.

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    /// A string literal's content.
    Str(String),
    Sym(String),
    /// Numbers, durations, Grafana variables.
    Other,
}

fn lex(expr: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = expr.chars().collect();
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '"' || c == '\'' || c == '`' {
            let mut text = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(format!("unterminated string literal in `{expr}`")),
                    Some('\\') if c != '`' => {
                        text.extend(chars.get(i + 1));
                        i += 2;
                    }
                    Some(&q) if q == c => {
                        i += 1;
                        break;
                    }
                    Some(&other) => {
                        text.push(other);
                        i += 1;
                    }
                }
            }
            toks.push(Tok::Str(text));
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && ident(chars[i]) {
                i += 1;
            }
            toks.push(Tok::Ident(chars[start..i].iter().collect()));
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            i += 1;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric()
                    || chars[i] == '.'
                    || (matches!(chars[i], '+' | '-') && matches!(chars[i - 1], 'e' | 'E')))
            {
                i += 1;
            }
            toks.push(Tok::Other);
        } else if c == '$' {
            i += 1;
            if chars.get(i) == Some(&'{') {
                while i < chars.len() && chars[i] != '}' {
                    i += 1;
                }
                i += 1;
            } else {
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
            }
            toks.push(Tok::Other);
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            if ["=~", "!~", "!=", "==", ">=", "<="].contains(&two.as_str()) {
                toks.push(Tok::Sym(two));
                i += 2;
            } else {
                toks.push(Tok::Sym(c.to_string()));
                i += 1;
            }
        }
    }
    Ok(toks)
}

fn is_sym(tok: Option<&Tok>, s: &str) -> bool {
    matches!(tok, Some(Tok::Sym(t)) if t == s)
}

fn balanced(toks: &[Tok]) -> Result<(), String> {
    let mut open: Vec<&str> = Vec::new();
    for tok in toks {
        let Tok::Sym(s) = tok else { continue };
        match s.as_str() {
            "(" | "[" | "{" => open.push(s.as_str()),
            ")" | "]" | "}" => {
                let want = match s.as_str() {
                    ")" => "(",
                    "]" => "[",
                    _ => "{",
                };
                if open.pop() != Some(want) {
                    return Err(format!("unbalanced `{s}`"));
                }
            }
            _ => {}
        }
    }
    match open.pop() {
        Some(s) => Err(format!("unclosed `{s}`")),
        None => Ok(()),
    }
}

/// The `)` closing the `(` at `open`.
fn closing(toks: &[Tok], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (j, tok) in toks.iter().enumerate().skip(open) {
        if is_sym(Some(tok), "(") {
            depth += 1;
        } else if is_sym(Some(tok), ")") {
            depth = depth.checked_sub(1)?;
            if depth == 0 {
                return Some(j);
            }
        }
    }
    None
}

/// The `(` opening the `)` at `close`.
fn opening(toks: &[Tok], close: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (j, tok) in toks.get(..=close)?.iter().enumerate().rev() {
        if is_sym(Some(tok), ")") {
            depth += 1;
        } else if is_sym(Some(tok), "(") {
            depth = depth.checked_sub(1)?;
            if depth == 0 {
                return Some(j);
            }
        }
    }
    None
}

/// The tokens a `by`/`without` clause applies to: the parenthesised argument after it
/// (`sum by (x) (...)`) or before it (`sum (...) by (x)`).
fn aggregation_scope(toks: &[Tok], clause: usize, close: usize) -> RangeInclusive<usize> {
    if is_sym(toks.get(close + 1), "(")
        && let Some(end) = closing(toks, close + 1)
    {
        return close + 1..=end;
    }
    if clause > 0
        && is_sym(toks.get(clause - 1), ")")
        && let Some(start) = opening(toks, clause - 1)
    {
        return start..=clause - 1;
    }
    0..=toks.len()
}

fn metric(name: &str) -> Option<&'static Metric> {
    ALL.iter().find(|m| m.name == name)
}

/// A series name as the metric it belongs to and the labels it carries: a listed name, or a
/// histogram's `_bucket` (which adds `le`), `_sum` or `_count`.
fn resolve(name: &str) -> Result<(&'static Metric, BTreeSet<&'static str>), String> {
    let labels = |m: &'static Metric| m.labels.iter().copied().collect::<BTreeSet<_>>();
    if let Some(m) = metric(name) {
        if m.kind == Kind::Histogram {
            return Err(format!(
                "{name} is a histogram: query {name}_bucket, {name}_sum or {name}_count"
            ));
        }
        return Ok((m, labels(m)));
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        let Some(m) = name.strip_suffix(suffix).and_then(metric) else {
            continue;
        };
        if m.kind != Kind::Histogram {
            return Err(format!(
                "{name}: {suffix} exists only for histograms, and {} is a {:?}",
                m.name, m.kind
            ));
        }
        let mut set = labels(m);
        if suffix == "_bucket" {
            set.insert("le");
        }
        return Ok((m, set));
    }
    Err(format!("{name} is not in telemetry::names::ALL"))
}

fn listed(labels: &BTreeSet<&str>) -> String {
    labels.iter().copied().collect::<Vec<_>>().join(", ")
}

/// `{label op "value", ...}` from the `{` at `open`.
fn matchers(toks: &[Tok], open: usize) -> Result<Vec<(String, String, String)>, String> {
    let mut out = Vec::new();
    let mut j = open + 1;
    loop {
        match toks.get(j) {
            Some(Tok::Sym(s)) if s == "}" => return Ok(out),
            Some(Tok::Ident(label)) => {
                let op = match toks.get(j + 1) {
                    Some(Tok::Sym(op)) if ["=", "!=", "=~", "!~"].contains(&op.as_str()) => op,
                    _ => return Err(format!("matcher on `{label}` has no operator")),
                };
                let Some(Tok::Str(value)) = toks.get(j + 2) else {
                    return Err(format!("matcher on `{label}` has no quoted value"));
                };
                out.push((label.clone(), op.clone(), value.clone()));
                j += 3;
                if is_sym(toks.get(j), ",") {
                    j += 1;
                }
            }
            _ => return Err("malformed label matchers".to_string()),
        }
    }
}

/// A matcher on a label with a closed set of values must name values from that set.
fn check_value(label: &str, op: &str, value: &str) -> Option<String> {
    let (_, known) = VALUES.iter().find(|(l, _)| *l == label)?;
    if value.contains('$') {
        return None;
    }
    let values: Vec<&str> = if op == "=" || op == "!=" {
        vec![value]
    } else if value
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '|')
    {
        value.split('|').collect()
    } else {
        return None;
    };
    let unknown: Vec<&str> = values.into_iter().filter(|v| !known.contains(v)).collect();
    if unknown.is_empty() {
        return None;
    }
    Some(format!(
        "{label}{op}\"{value}\": `{label}` is never {} (its values: {})",
        unknown.join(", "),
        known.join(", ")
    ))
}

/// Every problem with the metrics, labels and label values `expr` uses.
fn check_expr(expr: &str) -> Vec<String> {
    let toks = match lex(expr) {
        Ok(toks) => toks,
        Err(e) => return vec![e],
    };
    if let Err(e) = balanced(&toks) {
        return vec![e];
    }
    let mut problems = Vec::new();
    // Each mlpipe series in the expression: its token index and the labels it carries.
    let mut series: Vec<(usize, BTreeSet<&'static str>)> = Vec::new();
    for (i, tok) in toks.iter().enumerate() {
        if let Tok::Ident(name) = tok
            && name.starts_with("mlpipe_")
        {
            match resolve(name) {
                Ok((_, labels)) => series.push((i, labels)),
                Err(e) => problems.push(e),
            }
        }
    }
    let labels_in = |range: RangeInclusive<usize>| -> BTreeSet<&'static str> {
        series
            .iter()
            .filter(|(i, _)| range.contains(i))
            .flat_map(|(_, labels)| labels.iter().copied())
            .collect()
    };
    let whole = 0..=toks.len();
    for (i, tok) in toks.iter().enumerate() {
        match tok {
            Tok::Sym(s) if s == "{" => {
                let (owner, allowed) = match i.checked_sub(1).and_then(|p| toks.get(p)) {
                    Some(Tok::Ident(name)) if name.starts_with("mlpipe_") => {
                        match series.iter().find(|(at, _)| *at + 1 == i) {
                            Some((_, labels)) => (name.clone(), labels.clone()),
                            // Not a known metric: reported above.
                            None => continue,
                        }
                    }
                    // Another system's metric.
                    Some(Tok::Ident(_)) => continue,
                    _ => ("the selector".to_string(), labels_in(whole.clone())),
                };
                match matchers(&toks, i) {
                    Err(e) => problems.push(format!("{owner}: {e}")),
                    Ok(found) => {
                        for (label, op, value) in found {
                            if !allowed.contains(label.as_str()) {
                                problems.push(format!(
                                    "{owner} has no label `{label}` (its labels: {})",
                                    listed(&allowed)
                                ));
                            }
                            problems.extend(check_value(&label, &op, &value));
                        }
                    }
                }
            }
            Tok::Ident(word) if GROUPING.contains(&word.as_str()) => {
                if !is_sym(toks.get(i + 1), "(") {
                    continue;
                }
                let Some(close) = closing(&toks, i + 1) else {
                    continue;
                };
                let scope = if word == "by" || word == "without" {
                    aggregation_scope(&toks, i, close)
                } else {
                    whole.clone()
                };
                let allowed = labels_in(scope);
                if allowed.is_empty() {
                    continue;
                }
                for tok in &toks[i + 2..close] {
                    if let Tok::Ident(label) = tok
                        && !allowed.contains(label.as_str())
                    {
                        problems.push(format!(
                            "`{word} (... {label} ...)`: no mlpipe series it applies to has \
                             label `{label}` (their labels: {})",
                            listed(&allowed)
                        ));
                    }
                }
            }
            // Grafana's label_values(metric, label).
            Tok::Ident(word) if word == "label_values" && is_sym(toks.get(i + 1), "(") => {
                let Some(close) = closing(&toks, i + 1) else {
                    continue;
                };
                let allowed = labels_in(i + 1..=close);
                if let Some(Tok::Ident(label)) = toks.get(close - 1)
                    && !allowed.is_empty()
                    && !allowed.contains(label.as_str())
                {
                    problems.push(format!(
                        "label_values: no mlpipe series here has label `{label}` (their labels: {})",
                        listed(&allowed)
                    ));
                }
            }
            _ => {}
        }
    }
    problems
}

// ---------------------------------------------------------------------------------------
// The dashboard

/// Every string under an `expr` key, with its JSON path and the panel it belongs to.
fn exprs_in<'a>(v: &'a Value, path: &str, panel: &str, out: &mut Vec<(String, &'a str)>) {
    match v {
        Value::Object(map) => {
            let panel = match (map.get("gridPos"), map.get("id").and_then(Value::as_i64)) {
                (Some(_), Some(id)) => format!(
                    " (panel {id} \"{}\")",
                    map.get("title").and_then(Value::as_str).unwrap_or_default()
                ),
                _ => panel.to_string(),
            };
            for (key, x) in map {
                let here = format!("{path}/{key}");
                match x.as_str() {
                    Some(expr) if key == "expr" => out.push((format!("{here}{panel}"), expr)),
                    _ => exprs_in(x, &here, &panel, out),
                }
            }
        }
        Value::Array(items) => {
            for (i, x) in items.iter().enumerate() {
                exprs_in(x, &format!("{path}/{i}"), panel, out);
            }
        }
        _ => {}
    }
}

fn collect_panels<'a>(panels: &'a Value, out: &mut Vec<&'a Value>) {
    for panel in panels.as_array().into_iter().flatten() {
        out.push(panel);
        collect_panels(&panel["panels"], out);
    }
}

#[test]
fn the_dashboard_is_well_formed_and_queries_only_listed_metrics_and_labels() {
    let dashboard: Value = serde_json::from_str(&read(DASHBOARD))
        .unwrap_or_else(|e| panic!("{DASHBOARD} is not JSON: {e}"));
    let mut problems = Vec::new();
    for key in ["uid", "title"] {
        if dashboard[key].as_str().is_none_or(str::is_empty) {
            problems.push(format!("no `{key}`"));
        }
    }
    if dashboard["schemaVersion"].as_u64().is_none() {
        problems.push("no integer `schemaVersion`".to_string());
    }

    let mut panels = Vec::new();
    collect_panels(&dashboard["panels"], &mut panels);
    if panels.is_empty() {
        problems.push("no panels".to_string());
    }
    let mut ids: BTreeMap<i64, &str> = BTreeMap::new();
    for panel in panels {
        let title = panel["title"].as_str().unwrap_or("(untitled)");
        let id = panel["id"].as_i64();
        let here = match id {
            Some(id) => format!("panel {id} \"{title}\""),
            None => format!("panel \"{title}\""),
        };
        match id {
            None => problems.push(format!("{here}: `id` is not an integer")),
            Some(id) => {
                if let Some(other) = ids.insert(id, title) {
                    problems.push(format!("{here}: id {id} is also panel \"{other}\"'s"));
                }
            }
        }
        let grid = &panel["gridPos"];
        let field = |k: &str| grid[k].as_u64();
        match (field("x"), field("y"), field("w"), field("h")) {
            (Some(x), Some(_), Some(w), Some(h)) => {
                if w == 0 || h == 0 || x + w > 24 {
                    problems.push(format!(
                        "{here}: gridPos x {x} w {w} h {h} does not fit the 24-column grid"
                    ));
                }
            }
            _ => problems.push(format!("{here}: gridPos needs integer x, y, w and h")),
        }
        let kind = panel["type"].as_str().unwrap_or_default();
        if kind.is_empty() {
            problems.push(format!("{here}: no `type`"));
        }
        if kind == "row" {
            continue;
        }
        let targets = panel["targets"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        if !targets
            .iter()
            .any(|t| t["expr"].as_str().is_some_and(|e| !e.trim().is_empty()))
        {
            problems.push(format!("{here}: no target with a non-empty `expr`"));
        }
        for target in targets {
            let reference = target["refId"].as_str().unwrap_or("?");
            if target["legendFormat"].as_str().is_none_or(str::is_empty) {
                problems.push(format!("{here}: target {reference} has no legendFormat"));
            }
            let source = target["datasource"]["uid"]
                .as_str()
                .or_else(|| panel["datasource"]["uid"].as_str());
            if source != Some("${datasource}") {
                problems.push(format!(
                    "{here}: target {reference} queries {source:?}, not the `${{datasource}}` variable"
                ));
            }
        }
    }

    let mut queries = Vec::new();
    exprs_in(&dashboard, "", "", &mut queries);
    for (place, expr) in &queries {
        for problem in check_expr(expr) {
            problems.push(format!("{place}: {problem}\n      in: {expr}"));
        }
    }

    let variables = dashboard["templating"]["list"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let variable = |name: &str| variables.iter().find(|v| v["name"] == name);
    match variable("datasource") {
        Some(v) if v["type"] == "datasource" && v["query"] == "prometheus" => {}
        _ => problems.push("no `datasource` variable of type datasource for prometheus".into()),
    }
    for v in variables {
        let name = v["name"].as_str().unwrap_or("?");
        let Some(query) = v["query"]
            .as_str()
            .or_else(|| v["query"]["query"].as_str())
            .filter(|_| v["type"] == "query")
        else {
            continue;
        };
        for problem in check_expr(query) {
            problems.push(format!("variable `{name}`: {problem}\n      in: {query}"));
        }
    }
    let model_query = variable("model")
        .and_then(|v| v["query"].as_str().or_else(|| v["query"]["query"].as_str()))
        .map(|q| q.split_whitespace().collect::<String>());
    if model_query.as_deref() != Some("label_values(mlpipe_inference_requests_total,model)") {
        problems.push(format!(
            "the `model` variable should be label_values(mlpipe_inference_requests_total, model), \
             found {model_query:?}"
        ));
    }
    assert_no_problems(DASHBOARD, &problems);
}

// ---------------------------------------------------------------------------------------
// The alert rules: a minimal YAML reader for the shape of a rules file.

#[derive(Debug)]
struct Rule {
    /// `alert NAME` or `record NAME`.
    name: String,
    alert: bool,
    /// 1-based line of the rule's first key.
    line: usize,
    /// Every scalar key under the rule, nested ones (labels, annotations) included.
    fields: BTreeMap<String, String>,
}

/// `key: rest` when `item` starts with a plain mapping key.
fn split_key(item: &str) -> Option<(&str, &str)> {
    let (key, rest) = item.split_once(':')?;
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain && (rest.is_empty() || rest.starts_with(' ')) {
        Some((key, rest.trim()))
    } else {
        None
    }
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// A quoted scalar's content; only a comment may follow the closing quote.
fn quoted(text: &str) -> Result<String, String> {
    let mut chars = text.chars();
    let quote = chars.next().unwrap_or('"');
    let mut out = String::new();
    loop {
        match chars.next() {
            None => return Err(format!("unterminated {quote}-quoted value")),
            Some('\\') if quote == '"' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(c) => out.push(c),
                None => return Err("value ends in a backslash".to_string()),
            },
            Some(c) if c == quote => {
                if quote == '\'' && chars.as_str().starts_with('\'') {
                    chars.next();
                    out.push('\'');
                } else {
                    break;
                }
            }
            Some(c) => out.push(c),
        }
    }
    let tail = chars.as_str().trim();
    if tail.is_empty() || tail.starts_with('#') {
        Ok(out)
    } else {
        Err(format!("unexpected `{tail}` after a quoted value"))
    }
}

/// The value of a key whose text after the colon is `rest` (on line index `at`), and the
/// index of the first line after it. Block scalars (`|`, `>`, with indicators) take the
/// following lines indented deeper than the key; other scalars must fit on their line.
fn scalar(
    lines: &[&str],
    at: usize,
    key_indent: usize,
    rest: &str,
) -> Result<(String, usize), String> {
    if rest.starts_with('|') || rest.starts_with('>') {
        let mut end = at + 1;
        while end < lines.len()
            && (lines[end].trim().is_empty() || indent_of(lines[end]) > key_indent)
        {
            end += 1;
        }
        let body = &lines[at + 1..end];
        let indent = body
            .iter()
            .filter(|l| !l.trim().is_empty())
            .map(|l| indent_of(l))
            .min()
            .unwrap_or(0);
        let text: Vec<&str> = body.iter().map(|l| l.get(indent..).unwrap_or("")).collect();
        return Ok((text.join("\n").trim_end().to_string(), end));
    }
    let value = if rest.starts_with('"') || rest.starts_with('\'') {
        quoted(rest)?
    } else {
        // A plain scalar; ` #` starts a comment (a `#` inside, as in a URL, does not).
        rest.split(" #")
            .next()
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    if let Some(next) = lines.get(at + 1) {
        let t = next.trim();
        if !value.is_empty() && !t.is_empty() && !t.starts_with('#') && indent_of(next) > key_indent
        {
            return Err("a value continued on the next line: write it as a block (`|`)".into());
        }
    }
    Ok((value, at + 1))
}

fn parse_rules(text: &str) -> Result<Vec<Rule>, String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut rules: Vec<Rule> = Vec::new();
    let mut at = 0;
    while at < lines.len() {
        let line = lines[at];
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            at += 1;
            continue;
        }
        // `- key: value` opens a sequence item whose keys sit two columns in.
        let (indent, item) = match trimmed.strip_prefix("- ") {
            Some(item) => (indent_of(line) + 2 + indent_of(item), item.trim_start()),
            None => (indent_of(line), trimmed),
        };
        let Some((key, rest)) = split_key(item) else {
            at += 1;
            continue;
        };
        let (value, next) = scalar(&lines, at, indent, rest)
            .map_err(|e| format!("line {}: `{key}`: {e}", at + 1))?;
        match key {
            "alert" | "record" => rules.push(Rule {
                name: format!("{key} {value}"),
                alert: key == "alert",
                line: at + 1,
                fields: BTreeMap::new(),
            }),
            _ => {
                if let Some(rule) = rules.last_mut() {
                    rule.fields.insert(key.to_string(), value);
                }
            }
        }
        at = next;
    }
    Ok(rules)
}

fn alert_rules() -> Vec<Rule> {
    let text = read(ALERTS);
    let rules = parse_rules(&text).unwrap_or_else(|e| panic!("{ALERTS}: {e}"));
    // Every `expr:` line must have been read as some rule's expression.
    let expr_lines = text
        .lines()
        .map(|l| l.trim_start())
        .map(|l| l.strip_prefix("- ").unwrap_or(l))
        .filter(|l| l.starts_with("expr:"))
        .count();
    let read_exprs = rules
        .iter()
        .filter(|r| r.fields.contains_key("expr"))
        .count();
    assert_eq!(
        read_exprs, expr_lines,
        "{ALERTS}: {expr_lines} `expr:` lines but {read_exprs} rules with an expression were read"
    );
    assert!(rules.iter().any(|r| r.alert), "{ALERTS}: no alerts found");
    rules
}

#[test]
fn the_alert_rules_query_only_listed_metrics_and_labels() {
    let mut problems = Vec::new();
    for rule in alert_rules() {
        let here = format!("line {}: {}", rule.line, rule.name);
        match rule.fields.get("expr") {
            None => problems.push(format!("{here}: no `expr`")),
            Some(expr) => {
                for problem in check_expr(expr) {
                    problems.push(format!("{here}: {problem}"));
                }
            }
        }
        if rule.alert {
            for key in ["for", "severity", "summary", "description"] {
                if rule.fields.get(key).is_none_or(|v| v.is_empty()) {
                    problems.push(format!("{here}: no `{key}`"));
                }
            }
        }
    }
    assert_no_problems(ALERTS, &problems);
}

// ---------------------------------------------------------------------------------------
// Runbook links

/// GitHub's anchor for a heading: lower case, spaces to `-`, other punctuation dropped.
fn github_anchor(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            '-' | '_' => Some(c),
            c if c.is_alphanumeric() => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a Markdown file's headings (outside code fences), with GitHub's `-1`,
/// `-2` suffixes for repeated headings.
fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeSet::new();
    let mut fenced = false;
    for line in markdown.lines() {
        let t = line.trim_start();
        if t.starts_with("```") || t.starts_with("~~~") {
            fenced = !fenced;
            continue;
        }
        let hashes = t.chars().take_while(|&c| c == '#').count();
        if fenced || !(1..=6).contains(&hashes) {
            continue;
        }
        let Some(text) = t[hashes..].strip_prefix(' ') else {
            continue;
        };
        let base = github_anchor(text.trim().trim_end_matches('#').trim());
        let n = seen.entry(base.clone()).or_insert(0);
        out.insert(if *n == 0 { base } else { format!("{base}-{n}") });
        *n += 1;
    }
    out
}

#[test]
fn every_alert_links_to_a_runbook_section() {
    let sections = anchors(&read(RUNBOOK));
    let mut problems = Vec::new();
    for rule in alert_rules().into_iter().filter(|r| r.alert) {
        let here = format!("line {}: {}", rule.line, rule.name);
        let Some(link) = rule
            .fields
            .get("runbook_url")
            .or_else(|| rule.fields.get("runbook"))
        else {
            problems.push(format!("{here}: no runbook_url annotation"));
            continue;
        };
        match link.split_once('#') {
            Some((page, anchor)) if page.ends_with(RUNBOOK) => {
                if !sections.contains(anchor) {
                    problems.push(format!(
                        "{here}: {RUNBOOK} has no heading with anchor `{anchor}` ({link})"
                    ));
                }
            }
            _ => problems.push(format!(
                "{here}: runbook_url `{link}` is not {RUNBOOK}#<anchor>"
            )),
        }
    }
    assert_no_problems(ALERTS, &problems);
}

#[test]
fn the_checker_finds_what_it_is_meant_to_find() {
    assert!(check_expr("sum by (stage) (rate(mlpipe_stage_runs_total[5m]))").is_empty());
    assert!(
        check_expr(
            "histogram_quantile(0.9, sum by (le, model) (rate(mlpipe_inference_latency_seconds_bucket{model=~\"$model\"}[$__rate_interval])))"
        )
        .is_empty()
    );
    assert!(check_expr("label_values(mlpipe_inference_requests_total, model)").is_empty());
    for (bad, expected) in [
        (
            "rate(mlpipe_no_such_total[5m])",
            "not in telemetry::names::ALL",
        ),
        (
            "rate(mlpipe_stage_runs_bucket[5m])",
            "not in telemetry::names::ALL",
        ),
        ("rate(mlpipe_stage_duration_seconds[5m])", "is a histogram"),
        ("mlpipe_drift_share_bucket", "exists only for histograms"),
        (
            "rate(mlpipe_stage_runs_total{model=\"x\"}[5m])",
            "no label `model`",
        ),
        ("mlpipe_drift_share{le=\"1\"}", "no label `le`"),
        (
            "sum by (model) (rate(mlpipe_stage_runs_total[5m]))",
            "label `model`",
        ),
        (
            "sum(rate(mlpipe_stage_runs_total[5m])) by (feature)",
            "label `feature`",
        ),
        (
            "rate(mlpipe_stage_runs_total{outcome=\"fail\"}[5m])",
            "never fail",
        ),
        (
            "rate(mlpipe_stage_rows_total{kind=~\"in|rejcted\"}[5m])",
            "never rejcted",
        ),
        (
            "label_values(mlpipe_inference_requests_total, stage)",
            "label `stage`",
        ),
        ("sum(rate(mlpipe_stage_runs_total[5m])", "unclosed"),
    ] {
        let found = check_expr(bad);
        assert!(
            found.iter().any(|p| p.contains(expected)),
            "`{bad}`: expected a problem containing `{expected}`, got {found:?}"
        );
    }
    assert_eq!(
        grafana_to_promql("rate(x{m=~\"$model\"}[$__rate_interval]) / ${v:regex} [$__range]"),
        "rate(x{m=~\".*\"}[5m]) / .* [1d]"
    );
    assert_eq!(github_anchor("MlpipeStageFailing"), "mlpipestagefailing");
    assert_eq!(
        github_anchor("Drift & quality: `p95`"),
        "drift--quality-p95"
    );
    let rules = parse_rules(
        "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: |\n          sum(x)\n            > 1\n        for: 5m\n        annotations:\n          summary: \"a # b\"\n          runbook_url: docs/monitoring.md#a # comment\n      - record: r\n        expr: 'y'\n",
    )
    .unwrap();
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[0].fields["expr"], "sum(x)\n  > 1");
    assert_eq!(rules[0].fields["for"], "5m");
    assert_eq!(rules[0].fields["summary"], "a # b");
    assert_eq!(rules[0].fields["runbook_url"], "docs/monitoring.md#a");
    assert_eq!(rules[1].name, "record r");
    assert_eq!(rules[1].fields["expr"], "y");
}
