//! The deployment, checked without a cloud account (the Terraform provider registry is not
//! reachable from CI, so `terraform init/validate/plan` cannot run):
//!
//! - every `.tf` file parses (hcl-rs) and `terraform fmt -check` accepts it;
//! - the wiring: each stage of the routing table has its target (a Lambda, or the Batch job
//!   for training) with exactly its triggers, a dead-letter queue, and a role whose S3 access
//!   is built only from its read and write prefixes;
//! - every variable is documented; the Worker's bindings match `wrangler.toml`;
//! - the package (`cargo xtask package`): sums and sizes match the manifest, every artifact
//!   is within budget and referenced by what deploys it;
//! - checkov passes over `terraform/`, the Kubernetes manifest and the Dockerfiles.
//!
//! Tools come from `MLPIPE_CHECKOV` (else `.tools/checkov`) and `terraform` on the PATH; the
//! package from `MLPIPE_PACKAGE_MANIFEST` (else `target/package/manifest.json`). Without one
//! the test that needs it is skipped loudly, except under `CI`, where it fails.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use events::{Route, Target, Trigger, routing_table};
use hcl::{Block, Body, Expression};
use tests::missing;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn terraform_dir() -> PathBuf {
    root().join("terraform")
}

/// Every `.tf` file under `dir`, recursively, sorted.
fn tf_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if name != ".terraform" {
                    stack.push(path);
                }
            } else if name.ends_with(".tf") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn parse(path: &Path) -> Body {
    let text = std::fs::read_to_string(path).unwrap();
    hcl::parse(&text).unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()))
}

/// The blocks of every `.tf` file in one module folder (not recursive), with their files.
fn module(dir: &str) -> Vec<(PathBuf, Block)> {
    let dir = terraform_dir().join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "tf"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} has no .tf files", dir.display());
    files
        .into_iter()
        .flat_map(|f| {
            parse(&f)
                .into_blocks()
                .map(move |b| (f.clone(), b))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn label(block: &Block, i: usize) -> Option<&str> {
    block.labels().get(i).map(|l| l.as_str())
}

/// `resource "<kind>" "<name>"` blocks of a module.
fn resources<'a>(blocks: &'a [(PathBuf, Block)], kind: &str) -> Vec<&'a Block> {
    blocks
        .iter()
        .map(|(_, b)| b)
        .filter(|b| b.identifier() == "resource" && label(b, 0) == Some(kind))
        .collect()
}

fn attr<'a>(body: &'a Body, key: &str) -> Option<&'a Expression> {
    body.attributes().find(|a| a.key() == key).map(|a| a.expr())
}

fn sub_blocks<'a>(body: &'a Body, ident: &'a str) -> impl Iterator<Item = &'a Block> + 'a {
    body.blocks().filter(move |b| b.identifier() == ident)
}

/// An expression as HCL text (for checks on references such as `var.read_prefixes`).
fn text(expr: &Expression) -> String {
    expr.to_string()
}

fn string(expr: Option<&Expression>) -> Option<String> {
    match expr? {
        Expression::String(s) => Some(s.clone()),
        _ => None,
    }
}

fn strings(expr: Option<&Expression>) -> Option<Vec<String>> {
    match expr? {
        Expression::Array(items) => items.iter().map(|e| string(Some(e))).collect(),
        _ => None,
    }
}

/// One object trigger as a module block writes it: prefix, suffix and the size bounds.
type ObjectTrigger = (String, String, Option<u64>, Option<u64>);

/// `[{ prefix = "...", suffix = "...", max_size = N }, ...]` as tuples.
fn triggers(expr: Option<&Expression>) -> Option<Vec<ObjectTrigger>> {
    let Expression::Array(items) = expr? else {
        return None;
    };
    items
        .iter()
        .map(|item| {
            let Expression::Object(obj) = item else {
                return None;
            };
            let value = |name: &str| {
                obj.iter()
                    .find(|(k, _)| k.to_string().trim_matches('"') == name)
                    .map(|(_, v)| v)
            };
            let size = |name: &str| value(name).and_then(|v| number(Some(v))).map(|n| n as u64);
            Some((
                string(value("prefix"))?,
                string(value("suffix"))?,
                size("min_size"),
                size("max_size"),
            ))
        })
        .collect()
}

fn object_triggers(route: &Route) -> Vec<ObjectTrigger> {
    route
        .triggers
        .iter()
        .filter_map(|t| match t {
            Trigger::Object {
                prefix,
                suffix,
                min_size,
                max_size,
            } => Some((prefix.clone(), suffix.clone(), *min_size, *max_size)),
            Trigger::Schedule { .. } => None,
        })
        .collect()
}

fn schedules(route: &Route) -> Vec<String> {
    route
        .triggers
        .iter()
        .filter_map(|t| match t {
            Trigger::Schedule { expression } => Some(expression.clone()),
            Trigger::Object { .. } => None,
        })
        .collect()
}

fn quoted(items: &[&str]) -> String {
    let q: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", q.join(", "))
}

/// The routing attributes of a stage's module block, as they must read in `stages.tf`.
fn expected_routing_attributes(route: &Route) -> String {
    let triggers: Vec<String> = object_triggers(route)
        .iter()
        .map(|(p, s, min, max)| {
            let bound = match (min, max) {
                (Some(n), _) => format!(", min_size = {n}"),
                (_, Some(n)) => format!(", max_size = {n}"),
                _ => String::new(),
            };
            format!("{{ prefix = {p:?}, suffix = {s:?}{bound} }}")
        })
        .collect();
    let mut out = format!(
        "  stage           = {:?}\n  object_triggers = [{}]\n",
        route.stage.name(),
        triggers.join(", ")
    );
    if route.target == Target::Function {
        let s: Vec<String> = schedules(route).iter().map(|s| format!("{s:?}")).collect();
        out.push_str(&format!("  schedules       = [{}]\n", s.join(", ")));
    }
    out.push_str(&format!(
        "  read_prefixes   = {}\n  write_prefixes  = {}\n",
        quoted(&route.reads),
        quoted(&route.writes)
    ));
    out
}

// ---------------------------------------------------------------------------------------
// Parsing, formatting, documentation

#[test]
fn every_tf_file_parses_and_every_variable_is_documented() {
    let files = tf_files(&terraform_dir());
    assert!(files.len() >= 20, "only {} .tf files", files.len());
    let mut undocumented = Vec::new();
    for file in &files {
        for block in parse(file).blocks() {
            if block.identifier() != "variable" {
                continue;
            }
            let name = label(block, 0).unwrap_or("?");
            let ok =
                string(attr(block.body(), "description")).is_some_and(|d| d.trim().len() >= 10);
            if !ok || attr(block.body(), "type").is_none() {
                undocumented.push(format!("{}: {name}", file.display()));
            }
        }
    }
    assert!(
        undocumented.is_empty(),
        "variables without a description (10+ characters) or a type:\n{}",
        undocumented.join("\n")
    );
}

#[test]
fn terraform_fmt_accepts_every_file() {
    let Ok(out) = Command::new("terraform")
        .args(["fmt", "-check", "-recursive", "-diff"])
        .arg(terraform_dir())
        .output()
    else {
        return missing("terraform (on the PATH)");
    };
    assert!(
        out.status.success(),
        "terraform fmt -check -recursive terraform/ wants changes:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn both_environments_use_the_pipeline_module() {
    for env in ["envs/dev", "envs/prod"] {
        let blocks = module(env);
        let pipeline = blocks
            .iter()
            .map(|(_, b)| b)
            .find(|b| b.identifier() == "module" && label(b, 0) == Some("pipeline"))
            .unwrap_or_else(|| panic!("{env} has no module \"pipeline\""));
        assert_eq!(
            string(attr(pipeline.body(), "source")).as_deref(),
            Some("../../modules/pipeline"),
            "{env}"
        );
        for file in [
            "variables.tf",
            "outputs.tf",
            "versions.tf",
            "terraform.tfvars.example",
        ] {
            assert!(
                terraform_dir().join(env).join(file).is_file(),
                "{env}/{file} is missing"
            );
        }
        let outputs: BTreeSet<String> = blocks
            .iter()
            .filter(|(_, b)| b.identifier() == "output")
            .filter_map(|(_, b)| label(b, 0).map(str::to_string))
            .collect();
        assert!(
            outputs.iter().any(|o| o.contains("endpoint")),
            "{env} has no endpoint output: {outputs:?}"
        );
        assert!(
            outputs.iter().any(|o| o.contains("bucket")),
            "{env} has no bucket output: {outputs:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Wiring from the routing table

#[test]
fn every_stage_has_its_target_with_exactly_its_triggers_and_prefixes() {
    let path = terraform_dir().join("modules/pipeline/stages.tf");
    let body = parse(&path);
    let stage_modules: BTreeMap<String, &Block> = body
        .blocks()
        .filter(|b| b.identifier() == "module")
        .filter_map(|b| Some((label(b, 0)?.to_string(), b)))
        .collect();
    let table = routing_table();
    // A stage's module is named for it; a stage that also runs as a batch job above a size
    // (two rows) has that row's module as `<stage>-job`.
    let module_name = |route: &Route| {
        let split = table
            .iter()
            .any(|r| r.stage == route.stage && r.target != route.target);
        if split && route.target == Target::BatchJob {
            format!("{}-job", route.stage.name())
        } else {
            route.stage.name().to_string()
        }
    };
    let names: BTreeSet<String> = table.iter().map(module_name).collect();
    let extra: Vec<&String> = stage_modules
        .keys()
        .filter(|k| !names.contains(*k))
        .collect();
    assert!(
        extra.is_empty(),
        "stages.tf has modules for stages the routing table lacks: {extra:?}"
    );
    for route in &table {
        let name = route.stage.name();
        let module = module_name(route);
        let hint = format!(
            "\n{}: module \"{module}\" must carry the routing table's row:\n{}",
            path.display(),
            expected_routing_attributes(route)
        );
        let block = stage_modules
            .get(&module)
            .unwrap_or_else(|| panic!("no module \"{module}\"{hint}"));
        let b = block.body();
        let source = match route.target {
            Target::Function => "../function",
            Target::BatchJob => "../training",
        };
        assert_eq!(string(attr(b, "source")).as_deref(), Some(source), "{hint}");
        assert_eq!(string(attr(b, "stage")).as_deref(), Some(name), "{hint}");
        assert_eq!(
            triggers(attr(b, "object_triggers")),
            Some(object_triggers(route)),
            "object_triggers{hint}"
        );
        let want_schedules = schedules(route);
        match route.target {
            Target::Function => assert_eq!(
                strings(attr(b, "schedules")),
                Some(want_schedules),
                "schedules{hint}"
            ),
            Target::BatchJob => assert!(
                want_schedules.is_empty() && attr(b, "schedules").is_none(),
                "the training module takes no schedules{hint}"
            ),
        }
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            strings(attr(b, "read_prefixes")),
            Some(owned(&route.reads)),
            "read_prefixes{hint}"
        );
        assert_eq!(
            strings(attr(b, "write_prefixes")),
            Some(owned(&route.writes)),
            "write_prefixes{hint}"
        );
    }
}

/// The S3 statements of every `aws_iam_policy_document` in a module: object reads only from
/// `var.read_prefixes`, object writes only to `var.write_prefixes`, listing on the bucket
/// only, no other S3 action, and none on a wildcard resource.
fn assert_s3_access_from_prefixes(dir: &str) {
    let blocks = module(dir);
    let docs: Vec<&Block> = blocks
        .iter()
        .map(|(_, b)| b)
        .filter(|b| b.identifier() == "data" && label(b, 0) == Some("aws_iam_policy_document"))
        .collect();
    assert!(!docs.is_empty(), "{dir}: no aws_iam_policy_document");
    let (mut reads, mut writes) = (0, 0);
    for doc in docs {
        for st in sub_blocks(doc.body(), "statement") {
            let actions = strings(attr(st.body(), "actions"))
                .unwrap_or_else(|| panic!("{dir}: a statement's actions must be a literal list"));
            let s3: Vec<&String> = actions.iter().filter(|a| a.starts_with("s3:")).collect();
            if s3.is_empty() {
                continue;
            }
            let resources = attr(st.body(), "resources")
                .map(text)
                .unwrap_or_else(|| panic!("{dir}: S3 statement without resources"));
            assert!(
                !resources.contains("\"*\""),
                "{dir}: S3 actions {s3:?} on a wildcard resource"
            );
            for action in &s3 {
                match action.as_str() {
                    "s3:GetObject" | "s3:GetObjectVersion" | "s3:GetObjectAttributes" => {
                        assert!(
                            resources.contains("var.read_prefixes")
                                && !resources.contains("var.write_prefixes"),
                            "{dir}: {action} must be on the read prefixes only: {resources}"
                        );
                        reads += 1;
                    }
                    // Only the training queue's watcher deletes, its own records.
                    "s3:DeleteObject" => {
                        assert!(
                            resources.contains("var.delete_prefixes")
                                && !resources.contains("var.read_prefixes")
                                && !resources.contains("var.write_prefixes"),
                            "{dir}: {action} must be on the delete prefixes only: {resources}"
                        );
                    }
                    "s3:PutObject" | "s3:AbortMultipartUpload" => {
                        assert!(
                            resources.contains("var.write_prefixes")
                                && !resources.contains("var.read_prefixes"),
                            "{dir}: {action} must be on the write prefixes only: {resources}"
                        );
                        writes += 1;
                    }
                    // Listing names only, on the bucket itself. Not limited by s3:prefix:
                    // S3 answers a read of a missing key with 404 only to a caller allowed
                    // to list, and a GetObject carries no s3:prefix to match; the stages'
                    // exactly-once checks need that 404.
                    "s3:ListBucket" => {
                        let compact: String = resources
                            .split_whitespace()
                            .collect::<String>()
                            .replace(",]", "]");
                        assert!(
                            compact == "[var.bucket_arn]",
                            "{dir}: s3:ListBucket only on the bucket: {resources}"
                        );
                    }
                    other => panic!(
                        "{dir}: S3 action {other} is outside what the stages need (get, put, list, and the watcher's delete)"
                    ),
                }
            }
        }
    }
    assert!(
        reads > 0 && writes > 0,
        "{dir}: no object read or write grant"
    );
}

#[test]
fn a_function_is_a_lambda_with_its_triggers_dead_letter_queue_and_least_privilege() {
    let dir = "modules/function";
    let blocks = module(dir);
    let lambdas = resources(&blocks, "aws_lambda_function");
    assert_eq!(lambdas.len(), 1, "{dir}: one aws_lambda_function");
    let lambda = lambdas[0].body();
    assert_eq!(
        string(attr(lambda, "handler")).as_deref(),
        Some("bootstrap")
    );
    assert_eq!(
        string(attr(lambda, "runtime")).as_deref(),
        Some("provided.al2023")
    );
    let env = sub_blocks(lambda, "environment")
        .next()
        .and_then(|e| attr(e.body(), "variables"))
        .map(text)
        .unwrap_or_default();
    assert!(
        env.contains("MLPIPE_STAGE") && env.contains("var.stage"),
        "{dir}: the function's environment must name its stage: {env}"
    );
    let pipeline =
        std::fs::read_to_string(terraform_dir().join("modules/pipeline/main.tf")).unwrap();
    assert!(
        pipeline.contains("MLPIPE_STORE = module.storage.store_url"),
        "modules/pipeline: every function gets the store"
    );
    let filename = attr(lambda, "filename").map(text).unwrap_or_default();
    assert!(
        filename.contains("var.package_zip"),
        "{dir}: the code is the packaged zip: {filename}"
    );
    // Dead-letter queue.
    let dlq = sub_blocks(lambda, "dead_letter_config")
        .next()
        .and_then(|d| attr(d.body(), "target_arn"))
        .map(text)
        .unwrap_or_else(|| panic!("{dir}: the Lambda has no dead_letter_config"));
    let queues: Vec<String> = resources(&blocks, "aws_sqs_queue")
        .iter()
        .filter_map(|b| label(b, 1).map(|n| format!("aws_sqs_queue.{n}.arn")))
        .collect();
    assert!(
        queues.iter().any(|q| dlq.contains(q.as_str())),
        "{dir}: dead_letter_config {dlq} is not one of the module's queues {queues:?}"
    );
    // One rule per object trigger and per schedule, each with a target.
    let rules = resources(&blocks, "aws_cloudwatch_event_rule");
    let for_each = |b: &Block| attr(b.body(), "for_each").map(text).unwrap_or_default();
    let object_rule = rules
        .iter()
        .find(|r| for_each(r).contains("object_triggers"))
        .unwrap_or_else(|| panic!("{dir}: no event rule for_each over var.object_triggers"));
    let pattern = attr(object_rule.body(), "event_pattern")
        .map(text)
        .unwrap_or_default();
    for needle in ["Object Created", "aws.s3", "prefix", "suffix"] {
        assert!(
            pattern.contains(needle),
            "{dir}: the object rule's pattern lacks {needle}: {pattern}"
        );
    }
    let schedule_rule = rules
        .iter()
        .find(|r| for_each(r).contains("schedules"))
        .unwrap_or_else(|| panic!("{dir}: no event rule for_each over var.schedules"));
    assert!(attr(schedule_rule.body(), "schedule_expression").is_some());
    let targets = resources(&blocks, "aws_cloudwatch_event_target");
    for rule in [object_rule, schedule_rule] {
        let name = label(rule, 1).unwrap();
        let target = targets
            .iter()
            .find(|t| {
                attr(t.body(), "rule")
                    .map(text)
                    .is_some_and(|r| r.contains(&format!("aws_cloudwatch_event_rule.{name}")))
            })
            .unwrap_or_else(|| panic!("{dir}: rule {name} has no target"));
        assert!(
            sub_blocks(target.body(), "dead_letter_config")
                .next()
                .is_some(),
            "{dir}: the target of rule {name} has no dead-letter queue"
        );
    }
    assert!(
        !resources(&blocks, "aws_lambda_permission").is_empty(),
        "{dir}: EventBridge needs permission to invoke"
    );
    assert!(!resources(&blocks, "aws_iam_role").is_empty());
    assert_s3_access_from_prefixes(dir);
}

#[test]
fn training_is_a_batch_job_submitted_by_its_triggers() {
    let dir = "modules/training";
    let blocks = module(dir);
    for kind in [
        "aws_batch_compute_environment",
        "aws_batch_job_queue",
        "aws_batch_job_definition",
        "aws_ecr_repository",
        "aws_sqs_queue",
    ] {
        assert!(!resources(&blocks, kind).is_empty(), "{dir}: no {kind}");
    }
    let def = resources(&blocks, "aws_batch_job_definition")[0].body();
    let props = attr(def, "container_properties")
        .map(text)
        .unwrap_or_default();
    assert!(
        props.contains("Ref::key") && props.contains("GPU"),
        "{dir}: the job takes the trigger key as a parameter and a GPU: {props}"
    );
    let rule = resources(&blocks, "aws_cloudwatch_event_rule")
        .into_iter()
        .find(|r| {
            attr(r.body(), "for_each")
                .map(text)
                .is_some_and(|f| f.contains("object_triggers"))
        })
        .unwrap_or_else(|| panic!("{dir}: no event rule for_each over var.object_triggers"));
    let name = label(rule, 1).unwrap();
    let target = resources(&blocks, "aws_cloudwatch_event_target")
        .into_iter()
        .find(|t| {
            attr(t.body(), "rule")
                .map(text)
                .is_some_and(|r| r.contains(&format!("aws_cloudwatch_event_rule.{name}")))
        })
        .unwrap_or_else(|| panic!("{dir}: rule {name} has no target"));
    let t = target.body();
    assert!(
        sub_blocks(t, "batch_target").next().is_some(),
        "{dir}: batch_target"
    );
    let transformer = sub_blocks(t, "input_transformer")
        .next()
        .unwrap_or_else(|| panic!("{dir}: the target has no input_transformer"));
    let paths = attr(transformer.body(), "input_paths")
        .map(text)
        .unwrap_or_default();
    assert!(
        paths.contains("$.detail.object.key"),
        "{dir}: the transformer passes the triggering key: {paths}"
    );
    let template = attr(transformer.body(), "input_template")
        .map(text)
        .unwrap_or_default();
    assert!(
        template.contains("Parameters") && template.contains("<key>"),
        "{dir}: the key becomes the job's `key` parameter: {template}"
    );
    assert!(
        sub_blocks(t, "dead_letter_config").next().is_some(),
        "{dir}: target DLQ"
    );
    assert_s3_access_from_prefixes(dir);
}

// ---------------------------------------------------------------------------------------
// The edge

/// The fields of an HCL object expression, by name.
fn object_fields(expr: &Expression) -> Option<BTreeMap<String, &Expression>> {
    let Expression::Object(obj) = expr else {
        return None;
    };
    Some(
        obj.iter()
            .map(|(k, v)| (k.to_string().trim_matches('"').to_string(), v))
            .collect(),
    )
}

fn number(expr: Option<&Expression>) -> Option<f64> {
    match expr? {
        Expression::Number(n) => n.as_f64(),
        _ => None,
    }
}

#[test]
fn worker_bindings_match_wrangler_toml() {
    let wrangler: toml::Table = toml::from_str(
        &std::fs::read_to_string(root().join("edge/edge-worker/wrangler.toml")).unwrap(),
    )
    .unwrap();
    let names = |key: &str| -> BTreeSet<String> {
        wrangler
            .get(key)
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
            .filter_map(|t| t.get("binding")?.as_str().map(str::to_string))
            .collect()
    };
    let r2 = names("r2_buckets");
    let kv = names("kv_namespaces");
    let vars: BTreeSet<String> = wrangler
        .get("vars")
        .and_then(|v| v.as_table())
        .map(|t| t.keys().cloned().collect())
        .unwrap_or_default();
    // [[ratelimits]]: (name, namespace_id, limit, period).
    let ratelimits: BTreeSet<(String, String, i64, i64)> = wrangler
        .get("ratelimits")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
        .map(|t| {
            let simple = &t["simple"];
            (
                t["name"].as_str().unwrap().to_string(),
                t["namespace_id"].as_str().unwrap().to_string(),
                simple["limit"].as_integer().unwrap(),
                simple["period"].as_integer().unwrap(),
            )
        })
        .collect();
    assert!(!r2.is_empty() && !kv.is_empty() && !vars.is_empty() && !ratelimits.is_empty());

    let blocks = module("modules/edge");
    let versions = resources(&blocks, "cloudflare_worker_version");
    assert_eq!(versions.len(), 1, "one Worker version");
    let version = versions[0].body();
    let Some(Expression::Array(bindings)) = attr(version, "bindings") else {
        panic!("the Worker version's bindings must be a list of objects");
    };
    let mut by_type: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut limits = BTreeSet::new();
    for binding in bindings {
        let fields = object_fields(binding)
            .unwrap_or_else(|| panic!("a binding is not an object: {binding}"));
        let (Some(kind), Some(name)) = (
            string(fields.get("type").copied()),
            string(fields.get("name").copied()),
        ) else {
            panic!("a binding without a literal type and name: {binding}");
        };
        if kind == "ratelimit" {
            let simple = object_fields(fields["simple"]).unwrap();
            limits.insert((
                name.clone(),
                string(fields.get("namespace_id").copied()).unwrap(),
                number(simple.get("limit").copied()).unwrap() as i64,
                number(simple.get("period").copied()).unwrap() as i64,
            ));
        }
        by_type.entry(kind).or_default().insert(name);
    }
    let get = |k: &str| by_type.get(k).cloned().unwrap_or_default();
    assert_eq!(get("r2_bucket"), r2, "R2 bindings");
    assert_eq!(get("kv_namespace"), kv, "KV bindings");
    assert_eq!(get("plain_text"), vars, "plain-text vars");
    assert_eq!(limits, ratelimits, "rate-limiting bindings");
    // Credentials are secrets, never plain vars; wrangler.toml names them in a comment
    // (`wrangler secret put NAME`).
    let secrets = get("secret_text");
    assert_eq!(
        secrets,
        BTreeSet::from(["OTEL_EXPORTER_OTLP_HEADERS".to_string()])
    );
    let wrangler_text =
        std::fs::read_to_string(root().join("edge/edge-worker/wrangler.toml")).unwrap();
    for s in &secrets {
        assert!(
            wrangler_text.contains(&format!("wrangler secret put {s}")),
            "wrangler.toml does not say how to set the secret {s}"
        );
    }
    // A literal, or a variable of the module whose default is the date.
    let date = match attr(version, "compatibility_date") {
        Some(expr @ Expression::Traversal(_)) => {
            let var = text(expr);
            let name = var.strip_prefix("var.").unwrap_or(&var).to_string();
            blocks
                .iter()
                .map(|(_, b)| b)
                .find(|b| b.identifier() == "variable" && label(b, 0) == Some(name.as_str()))
                .and_then(|b| string(attr(b.body(), "default")))
        }
        other => string(other),
    };
    assert_eq!(
        date,
        wrangler
            .get("compatibility_date")
            .and_then(|v| v.as_str())
            .map(str::to_string),
        "compatibility_date"
    );
    assert_eq!(
        string(attr(version, "main_module")).as_deref(),
        Some("index.js"),
        "the Worker's main module"
    );
    // Both of worker-build's outputs go up as modules: the entry and the wasm it imports.
    let Some(Expression::Array(modules)) = attr(version, "modules") else {
        panic!("the Worker version's modules must be a list");
    };
    let modules: BTreeMap<String, String> = modules
        .iter()
        .map(|m| {
            let f = object_fields(m).unwrap();
            (
                string(f.get("name").copied()).unwrap(),
                string(f.get("content_type").copied()).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        modules,
        BTreeMap::from([
            (
                "index.js".to_string(),
                "application/javascript+module".to_string()
            ),
            ("index_bg.wasm".to_string(), "application/wasm".to_string()),
        ])
    );
}

// ---------------------------------------------------------------------------------------
// The Cloudflare provider, read from its source (it cannot be downloaded here)

/// The provider release every Cloudflare resource and argument was checked against: the
/// configurable attributes of its schemas (`terraform/providers/README.md` says how the
/// list was made).
const CLOUDFLARE_ALLOW_LIST: &str = "terraform/providers/cloudflare-v5.22.0.json";

/// Arguments that belong to Terraform, not to a provider's schema.
const META_ARGUMENTS: [&str; 5] = ["count", "for_each", "depends_on", "provider", "lifecycle"];

/// The dotted argument paths `expr` sets below `prefix`: object keys and the keys of a
/// list's objects (`bindings.name`, `simple.limit`).
fn expr_paths(expr: &Expression, prefix: &str, out: &mut BTreeSet<String>) {
    match expr {
        Expression::Object(_) => {
            for (k, v) in object_fields(expr).unwrap() {
                let path = format!("{prefix}.{k}");
                out.insert(path.clone());
                expr_paths(v, &path, out);
            }
        }
        Expression::Array(items) => {
            for item in items {
                expr_paths(item, prefix, out);
            }
        }
        _ => {}
    }
}

/// Every argument path a resource or data block sets (meta-arguments left out).
fn argument_paths(body: &Body) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for a in body.attributes() {
        if META_ARGUMENTS.contains(&a.key()) {
            continue;
        }
        out.insert(a.key().to_string());
        expr_paths(a.expr(), a.key(), &mut out);
    }
    for b in body.blocks() {
        if META_ARGUMENTS.contains(&b.identifier()) || b.identifier() == "dynamic" {
            continue;
        }
        let mut inner = BTreeSet::new();
        for p in argument_paths(b.body()) {
            inner.insert(format!("{}.{p}", b.identifier()));
        }
        out.insert(b.identifier().to_string());
        out.extend(inner);
    }
    out
}

/// What `blocks` use that the allow-list does not have: resource or data types, argument
/// paths, binding types and the fields of each binding.
fn not_in_provider(allow: &serde_json::Value, blocks: &[(PathBuf, Block)]) -> Vec<String> {
    let set = |v: &serde_json::Value| -> BTreeSet<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect()
    };
    let mut problems = Vec::new();
    for (file, b) in blocks {
        let (kind, table) = match b.identifier() {
            "resource" => (label(b, 0), "resources"),
            "data" => (label(b, 0), "data_sources"),
            _ => continue,
        };
        let Some(kind) = kind.filter(|k| k.starts_with("cloudflare_")) else {
            continue;
        };
        let at = format!("{}: {} {kind}", file.display(), b.identifier());
        let Some(allowed) = allow[table].get(kind) else {
            problems.push(format!("{at}: no such {table} in the provider"));
            continue;
        };
        let allowed = set(allowed);
        for path in argument_paths(b.body()) {
            if !allowed.contains(&path) {
                problems.push(format!(
                    "{at}: argument `{path}` is not in the provider's schema"
                ));
            }
        }
        // Each binding's fields must be those of its type.
        if let Some(Expression::Array(bindings)) = attr(b.body(), "bindings") {
            for binding in bindings {
                let Some(fields) = object_fields(binding) else {
                    continue;
                };
                let Some(kind) = string(fields.get("type").copied()) else {
                    problems.push(format!("{at}: a binding without a literal type"));
                    continue;
                };
                let Some(own) = allow["binding_types"].get(&kind) else {
                    problems.push(format!(
                        "{at}: binding type `{kind}` is not in the provider"
                    ));
                    continue;
                };
                let mut ok = set(own);
                ok.extend(["name".to_string(), "type".to_string()]);
                let mut used = BTreeSet::new();
                for (k, v) in &fields {
                    used.insert(k.clone());
                    expr_paths(v, k, &mut used);
                }
                for f in used.difference(&ok) {
                    problems.push(format!("{at}: a `{kind}` binding has no field `{f}`"));
                }
            }
        }
    }
    problems
}

/// Every module and environment folder's blocks.
fn every_module() -> Vec<(PathBuf, Block)> {
    tf_files(&terraform_dir())
        .into_iter()
        .flat_map(|f| {
            parse(&f)
                .blocks()
                .cloned()
                .map(|b| (f.clone(), b))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn every_cloudflare_resource_and_argument_exists_in_the_checked_provider_release() {
    let allow: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join(CLOUDFLARE_ALLOW_LIST)).unwrap())
            .unwrap();
    let blocks = every_module();
    let used = blocks
        .iter()
        .filter(|(_, b)| label(b, 0).is_some_and(|k| k.starts_with("cloudflare_")))
        .count();
    assert!(
        used >= 8,
        "the edge's Cloudflare resources were not found ({used})"
    );
    let problems = not_in_provider(&allow, &blocks);
    assert!(
        problems.is_empty(),
        "not in cloudflare/cloudflare {} ({CLOUDFLARE_ALLOW_LIST}):\n{}",
        allow["tag"],
        problems.join("\n")
    );
    // Every module admits the range the list was checked for, and every environment pins
    // exactly the release it was recorded from (no lock file is committed: terraform/README.md).
    let constraint = allow["constraint"].as_str().unwrap();
    let exact = allow["tag"].as_str().unwrap().trim_start_matches('v');
    let mut pinned = 0;
    for f in tf_files(&terraform_dir()) {
        let text = std::fs::read_to_string(&f).unwrap();
        if text.contains("cloudflare/cloudflare") {
            let want = if is_environment(&f) {
                exact
            } else {
                constraint
            };
            assert!(
                text.contains(&format!("version = \"{want}\"")),
                "{} does not pin cloudflare to \"{want}\"",
                f.display()
            );
            pinned += 1;
        }
    }
    assert!(pinned >= 3, "{pinned} files pin the provider");
}

fn is_environment(f: &Path) -> bool {
    f.strip_prefix(terraform_dir().join("envs")).is_ok()
}

/// The aws provider: the modules admit both 5.100 (the release the apply test runs,
/// tests/tests/terraform_apply.rs) and 6.x, and the environments pin one exact 6.x release.
#[test]
fn every_configuration_admits_the_tested_aws_provider_and_environments_pin_one() {
    let mut modules = 0;
    let mut environments = 0;
    for f in tf_files(&terraform_dir()) {
        let text = std::fs::read_to_string(&f).unwrap();
        if !text.contains("\"hashicorp/aws\"") {
            continue;
        }
        let version = text
            .split("\"hashicorp/aws\"")
            .nth(1)
            .and_then(|rest| rest.split("version = \"").nth(1))
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("{} names no aws version", f.display()));
        if is_environment(&f) {
            let parts: Vec<&str> = version.split('.').collect();
            assert!(
                parts.len() == 3
                    && parts[0] == "6"
                    && parts.iter().all(|p| p.parse::<u32>().is_ok()),
                "{} pins aws to {version:?}, not one 6.x release",
                f.display()
            );
            environments += 1;
        } else {
            assert_eq!(version, ">= 5.100.0, < 7.0.0", "{}", f.display());
            modules += 1;
        }
    }
    assert!(
        modules >= 6 && environments == 2,
        "{modules} modules, {environments} environments"
    );
    let test_root = std::fs::read_to_string(root().join("tests/terraform/moto/main.tf")).unwrap();
    assert!(test_root.contains("version = \"5.100.0\""));
}

#[test]
fn the_provider_check_finds_a_stray_argument_binding_and_resource() {
    let allow: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join(CLOUDFLARE_ALLOW_LIST)).unwrap())
            .unwrap();
    let planted = r#"
resource "cloudflare_workers_script" "x" {
  account_id  = "a"
  script_name = "s"
  files       = { "index_bg.wasm" = { content_type = "application/wasm" } }
}
resource "cloudflare_worker_version" "v" {
  account_id = "a"
  worker_id  = "w"
  bindings = [
    { name = "A", type = "kv_namespace", namespace_id = "n" },
    { name = "B", type = "ratelimit", namespace_id = "1", simple = { limit = 1, period = 10, burst = 2 } },
    { name = "C", type = "teleport" },
  ]
  lifecycle {
    create_before_destroy = true
  }
}
resource "cloudflare_worker_script" "typo" {}
"#;
    let blocks: Vec<(PathBuf, Block)> = hcl::parse(planted)
        .unwrap()
        .blocks()
        .cloned()
        .map(|b| (PathBuf::from("planted.tf"), b))
        .collect();
    let problems = not_in_provider(&allow, &blocks);
    let has = |needle: &str| problems.iter().any(|p| p.contains(needle));
    assert!(has("argument `files`"), "{problems:#?}");
    assert!(has("no field `simple.burst`"), "{problems:#?}");
    assert!(has("binding type `teleport`"), "{problems:#?}");
    assert!(
        has("cloudflare_worker_script: no such resources"),
        "{problems:#?}"
    );
    // Meta-arguments and the fields a binding type has are not flagged.
    assert!(
        !has("lifecycle") && !has("namespace_id") && !has("`bindings.name`"),
        "{problems:#?}"
    );
}

// ---------------------------------------------------------------------------------------
// The package

fn package_manifest() -> Option<PathBuf> {
    if let Some(set) = std::env::var_os("MLPIPE_PACKAGE_MANIFEST").filter(|v| !v.is_empty()) {
        let path = PathBuf::from(set);
        assert!(
            path.is_file(),
            "MLPIPE_PACKAGE_MANIFEST={} is not a file",
            path.display()
        );
        return Some(path);
    }
    let default = root().join("target/package/manifest.json");
    default.is_file().then_some(default)
}

fn all_tf_text() -> String {
    tf_files(&terraform_dir())
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_package_matches_its_manifest_is_within_budget_and_is_deployed() {
    let Some(path) = package_manifest() else {
        return missing("the package (target/package/manifest.json from `cargo xtask package`)");
    };
    let dir = path.parent().unwrap();
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let artifacts = manifest["artifacts"].as_array().unwrap();
    let kinds: BTreeSet<&str> = artifacts
        .iter()
        .map(|a| a["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "lambda-zip",
        "worker",
        "spin-component",
        "spin-manifest",
        "train-dockerfile",
        "batch-predict-dockerfile",
        "train-context",
        "definition",
    ] {
        assert!(kinds.contains(kind), "the package has no {kind}: {kinds:?}");
    }
    let sums = std::fs::read_to_string(dir.join("SHA256SUMS")).unwrap();
    let tf = all_tf_text();
    let guide = std::fs::read_to_string(root().join("docs/deploy.md")).unwrap();
    for a in artifacts {
        let rel = a["path"].as_str().unwrap();
        let data = std::fs::read(dir.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert_eq!(
            data.len() as u64,
            a["bytes"].as_u64().unwrap(),
            "{rel}: size"
        );
        let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&data));
        assert_eq!(a["sha256"].as_str(), Some(sha.as_str()), "{rel}: sha256");
        assert!(
            sums.contains(&format!("{sha}  {rel}\n")),
            "{rel}: not in SHA256SUMS"
        );
        // Referenced by what deploys it.
        match a["deployed_by"].as_str().unwrap() {
            "terraform" => {
                let referenced = match a["kind"].as_str().unwrap() {
                    "lambda-zip" => tf.contains("lambda/mlpipe-lambda-${var.architecture}.zip"),
                    "definition" => tf.contains("/definitions\"") && tf.contains("fileset("),
                    _ => tf.contains(rel),
                };
                assert!(
                    referenced,
                    "{rel} is packaged for Terraform but no .tf uses it"
                );
            }
            _ => assert!(
                guide.contains(rel),
                "{rel} is packaged but docs/deploy.md never says how to deploy it"
            ),
        }
    }
    for b in manifest["budgets"].as_array().unwrap() {
        let (bytes, budget) = (b["bytes"].as_u64().unwrap(), b["budget"].as_u64().unwrap());
        assert!(
            bytes <= budget,
            "{} is over budget: {bytes} > {budget} ({})",
            b["artifact"],
            b["measure"]
        );
    }
    // The zip holds an executable `bootstrap` at its root, as provided.al2023 wants.
    let zip = artifacts
        .iter()
        .find(|a| a["kind"] == "lambda-zip")
        .and_then(|a| a["path"].as_str())
        .unwrap();
    let listing = Command::new("unzip").arg("-Z").arg(dir.join(zip)).output();
    match listing {
        Ok(out) if out.status.success() => {
            let listing = String::from_utf8_lossy(&out.stdout);
            let line = listing
                .lines()
                .find(|l| l.ends_with(" bootstrap"))
                .unwrap_or_else(|| panic!("{zip} has no bootstrap at its root:\n{listing}"));
            assert!(
                line.starts_with("-rwx"),
                "bootstrap is not executable: {line}"
            );
        }
        _ => missing("unzip (to list the Lambda zip)"),
    }
}

// ---------------------------------------------------------------------------------------
// Security scan and the own-cluster option

fn find_checkov() -> Option<PathBuf> {
    if let Some(set) = std::env::var_os("MLPIPE_CHECKOV").filter(|v| !v.is_empty()) {
        let path = PathBuf::from(set);
        assert!(
            path.is_file(),
            "MLPIPE_CHECKOV={} is not a file",
            path.display()
        );
        return Some(path);
    }
    let local = root().join(".tools/checkov/bin/checkov");
    local.is_file().then_some(local)
}

fn checkov(checkov: &Path, args: &[&str]) {
    let out = Command::new(checkov)
        .current_dir(root())
        .args(args)
        .args(["--quiet", "--compact", "--skip-download"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "checkov {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn checkov_passes_on_terraform_kubernetes_and_dockerfiles() {
    let Some(bin) = find_checkov() else {
        return missing("checkov (MLPIPE_CHECKOV or .tools/checkov)");
    };
    checkov(&bin, &["-d", "terraform", "--framework", "terraform"]);
    checkov(&bin, &["-d", "infra/k8s", "--framework", "kubernetes"]);
    checkov(
        &bin,
        &[
            "-f",
            "infra/serve.Dockerfile",
            "-f",
            "infra/train.Dockerfile",
            "-f",
            "infra/batch-predict.Dockerfile",
            "--framework",
            "dockerfile",
        ],
    );
}

#[test]
fn the_kubernetes_manifest_probes_health_requires_keys_and_fences_metrics() {
    let manifest = std::fs::read_to_string(root().join("infra/k8s/mlpipe-serve.yaml")).unwrap();
    for needle in [
        "kind: Deployment",
        "kind: Service",
        "livenessProbe",
        "readinessProbe",
        "/v2/health/live",
        "/v2/health/ready",
        "serve",
        "MLPIPE_STORE",
        // Metrics on their own port, admitted from the monitoring namespace only.
        "\"--metrics-addr\", \"0.0.0.0:8002\"",
        "containerPort: 8002",
        // HTTP on 8000 and gRPC on 8001 at the pod address (keys required there).
        "\"--addr\", \"0.0.0.0:8000\"",
        "\"--grpc-addr\", \"0.0.0.0:8001\"",
        "containerPort: 8000",
        "containerPort: 8001",
        "appProtocol: grpc",
        "kubernetes.io/metadata.name: monitoring",
    ] {
        assert!(
            manifest.contains(needle),
            "infra/k8s/mlpipe-serve.yaml lacks {needle}"
        );
    }
    let dockerfile = std::fs::read_to_string(root().join("infra/serve.Dockerfile")).unwrap();
    assert!(
        dockerfile.contains("--bin mlpipe")
            && dockerfile.contains("\"--addr\", \"0.0.0.0:8000\"")
            && dockerfile.contains("\"--grpc-addr\", \"0.0.0.0:8001\"")
            && dockerfile.contains("EXPOSE 8000 8001"),
        "infra/serve.Dockerfile builds the mlpipe CLI and serves on 0.0.0.0:8000 and :8001"
    );
    // Both ship with API keys required: a server on the pod address refuses to start
    // without a key unless told to serve everyone.
    for (file, text) in [("manifest", &manifest), ("Dockerfile", &dockerfile)] {
        assert!(
            !text.contains("--insecure-no-auth"),
            "the {file} turns API keys off"
        );
    }
}
