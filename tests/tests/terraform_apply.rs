//! The AWS side of the deployment, applied: `terraform init`, `validate`, `plan`, `apply`, a
//! second `plan` that must find nothing to change, and `destroy`, with the real aws
//! provider, against a local moto server, following the guide's steps (docs/deploy.md):
//! package (the zips `cargo xtask package` built in the same run), create the
//! infrastructure, find the seeded definitions, upload the sample, observe which keys each
//! EventBridge rule matches, tear down, and find nothing left in the account.
//!
//! The root is `tests/terraform/moto/main.tf` (modules/pipeline with Batch off: moto cannot
//! create compute environments); the server is `tests/terraform/moto_server.py` (moto with
//! the two corrections it documents); the account is read by `tests/terraform/moto_account.py`.
//! The provider comes from a filesystem mirror (`MLPIPE_TF_PLUGIN_DIR`, else
//! `/opt/tf-plugins`), used in place by `-plugin-dir`; Python from `MLPIPE_PYTHON` (else
//! `.venv/bin/python`). Without one of them, or terraform, or the package, the test is
//! skipped loudly, except under `CI`, where it fails.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use events::{Route, Target, Trigger, routing_table};
use serde_json::Value;
use tests::{Group, missing, repo_root};

const NAME_PREFIX: &str = "mlpipe-apply";

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

fn plugin_dir() -> PathBuf {
    env_path("MLPIPE_TF_PLUGIN_DIR").unwrap_or_else(|| PathBuf::from("/opt/tf-plugins"))
}

fn python() -> PathBuf {
    env_path("MLPIPE_PYTHON").unwrap_or_else(|| repo_root().join(".venv/bin/python"))
}

fn package_dir() -> Option<PathBuf> {
    let manifest = env_path("MLPIPE_PACKAGE_MANIFEST")
        .unwrap_or_else(|| repo_root().join("target/package/manifest.json"));
    manifest
        .is_file()
        .then(|| manifest.parent().unwrap().to_path_buf())
}

fn has_terraform() -> bool {
    Command::new("terraform")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The moto server of `moto_server.py` on a free port, serving TLS; stopped on drop.
struct Moto {
    _server: Group,
    endpoint: String,
}

impl Moto {
    fn start(python: &Path, log: &Path) -> Moto {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let log = std::fs::File::create(log).unwrap();
        let mut server = Group::spawn(
            Command::new(python)
                .arg(repo_root().join("tests/terraform/moto_server.py"))
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(log.try_clone().unwrap())
                .stderr(log),
        )
        .expect("start moto_server.py");
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = server.child().try_wait() {
                panic!("moto_server.py exited at start ({status}): is moto installed in the venv?");
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "moto_server.py did not listen within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto {
            _server: server,
            endpoint: format!("https://127.0.0.1:{port}"),
        }
    }
}

/// One terraform command in the generated root, with the provider from the mirror and no
/// prompts; panics with its output when it fails.
struct Terraform {
    dir: PathBuf,
    cli_config: PathBuf,
    vars: Vec<String>,
}

impl Terraform {
    fn run(&self, args: &[&str]) -> String {
        self.run_status(args, &[0]).1
    }

    /// Runs `args` (plus the variables, for the commands that take them) and returns the
    /// exit code, which must be one of `ok`, and the output.
    fn run_status(&self, args: &[&str], ok: &[i32]) -> (i32, String) {
        let (command, rest) = args.split_first().unwrap();
        // A saved plan carries its variables.
        let takes_vars = matches!(*command, "plan" | "destroy")
            || (*command == "apply" && !rest.contains(&"tfplan"));
        let started = Instant::now();
        let output = Command::new("terraform")
            .current_dir(&self.dir)
            .args([command, "-no-color"])
            .args(if takes_vars {
                self.vars.clone()
            } else {
                vec![]
            })
            .args(rest)
            .env("TF_CLI_CONFIG_FILE", &self.cli_config)
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_INPUT", "0")
            .env("CHECKPOINT_DISABLE", "1")
            .output()
            .expect("run terraform");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let code = output.status.code().unwrap_or(-1);
        eprintln!(
            "terraform {}: exit {code} in {:.0} s",
            args[0],
            started.elapsed().as_secs_f64()
        );
        assert!(
            ok.contains(&code),
            "terraform {} failed (exit {code}):\n{text}",
            args.join(" ")
        );
        (code, text)
    }
}

fn account(python: &Path, endpoint: &str, args: &[&str]) -> Value {
    let output = Command::new(python)
        .arg(repo_root().join("tests/terraform/moto_account.py"))
        .arg(args[0])
        .arg(endpoint)
        .args(&args[1..])
        .output()
        .expect("run moto_account.py");
    assert!(
        output.status.success(),
        "moto_account.py {}: {}",
        args[0],
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn names(inventory: &Value, kind: &str) -> BTreeSet<String> {
    inventory[kind]
        .as_array()
        .unwrap_or_else(|| panic!("inventory has no {kind:?}: {inventory}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// The root, copied into `dir` with its module source pointed at the repository's module
/// (the copy is where terraform keeps its state and working files, outside the
/// repository). Terraform takes local module sources only as relative paths: up from `dir`
/// to `/`, then down to the module.
fn generate_root(dir: &Path) {
    let root = repo_root();
    let text = std::fs::read_to_string(root.join("tests/terraform/moto/main.tf")).unwrap();
    let relative = "source = \"../../../terraform/modules/pipeline\"";
    assert!(text.contains(relative), "the test root names its module");
    let dir = dir.canonicalize().unwrap();
    let module = root
        .join("terraform/modules/pipeline")
        .canonicalize()
        .unwrap();
    let up = "../".repeat(dir.components().count() - 1);
    let down = module.strip_prefix("/").unwrap().display();
    std::fs::write(
        dir.join("main.tf"),
        text.replace(relative, &format!("source = \"{up}{down}\"")),
    )
    .unwrap();
}

/// What moto 5.2 accepts but does not return, so a plan after apply wants to set it again:
/// a Lambda function's dead-letter target and logging settings, and the bucket's
/// EventBridge notification switch. Any other change in that plan fails the test.
const MOTO_DOES_NOT_STORE: &[(&str, &str)] = &[
    ("aws_lambda_function", "dead_letter_config"),
    ("aws_lambda_function", "logging_config"),
    ("aws_s3_bucket_notification", "eventbridge"),
];

/// (resource type, top-level attribute) of every change in a saved plan (`terraform show
/// -json`); a resource to create, replace or delete counts as ("type", "*").
fn changed_attributes(plan: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for change in plan["resource_changes"].as_array().into_iter().flatten() {
        let kind = change["type"].as_str().unwrap_or("?").to_string();
        match actions(change).as_slice() {
            ["no-op"] | ["read"] => {}
            ["update"] => {
                let before = change["change"]["before"].as_object().unwrap();
                let after = change["change"]["after"].as_object().unwrap();
                let unknown = change["change"]["after_unknown"].as_object();
                for (key, value) in after {
                    let pending = unknown.is_some_and(|u| u.get(key) == Some(&Value::Bool(true)));
                    if before.get(key) != Some(value) || pending {
                        out.insert((kind.clone(), key.clone()));
                    }
                }
            }
            _ => {
                out.insert((kind, "*".to_string()));
            }
        }
    }
    out
}

/// Address -> action ("create", "delete", "update", "replace", "no-op", "read") of every
/// resource in a saved plan (`terraform show -json`).
fn planned_actions(plan: &Value) -> BTreeMap<String, String> {
    plan["resource_changes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let actions = actions(c);
            let action = if actions.len() == 2 {
                "replace"
            } else {
                actions[0]
            };
            (
                c["address"].as_str().unwrap().to_string(),
                action.to_string(),
            )
        })
        .collect()
}

/// The actions of one resource change of a saved plan.
fn actions(change: &Value) -> Vec<&str> {
    change["change"]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a.as_str())
        .collect()
}

/// Keys a bucket of the pipeline sees, with the characters AWS leaves as they are in
/// EventBridge events (space, `=`, `+`, non-ASCII), and near misses of every trigger.
const KEYS: &[&str] = &[
    "raw/transactions/transactions.csv",
    "raw/transactions/day=2026-12-05/part 1+2 données.csv",
    "rawdata/transactions.csv",
    "curated/transactions/v=3/part-0.parquet",
    "snapshots/transactions/e2af00c55d9e5ade.json",
    "snapshots/transactions/e2af00c55d9e5ade.json.tmp",
    "features/card_activity/v=a367451e/_manifest.json",
    "features/card_activity/v=a367451e/part-0.parquet",
    "features/_manifest.json",
    "models/fraud/aliases/champion.json",
    "models/fraud/aliases/challenger.json",
    "models/fraud/traffic.json",
    "models/traffic.json",
    "keys/k-0123.json",
    "keys/k-0123.last-used",
    "labels/fraud/2026-12-05 labels.csv",
    "requests/retrain/fraud/r=1.json",
    "drift/fraud/2026-12-05.json",
    "batch-input/fraud/requests.csv",
    "batch-input/fraud/point-in-time/2026 q4.parquet #size=67108864",
    "batch-output/fraud/requests.csv/predictions.parquet",
];

/// The fixture's object size, which a key without ` #size=N` gets.
const FIXTURE_SIZE: u64 = 5;

/// A key of [`KEYS`] and the size of its object.
fn key_and_size(entry: &str) -> (&str, u64) {
    match entry.rsplit_once(" #size=") {
        Some((key, size)) => (key, size.parse().unwrap()),
        None => (entry, FIXTURE_SIZE),
    }
}

/// Whether `trigger` starts its stage for the object of a [`KEYS`] entry.
fn starts(trigger: &Trigger, entry: &str) -> bool {
    let (key, size) = key_and_size(entry);
    trigger.matches(&events::Event::Object(events::ObjectCreated {
        bucket: "b".into(),
        key: key.into(),
        size,
        etag: None,
        version_id: None,
        sequencer: None,
        event_time: Default::default(),
    }))
}

/// A route's module name part: the stage, and `-job` for the batch-job row of a stage that
/// also runs as a function (modules/pipeline/stages.tf).
fn route_name(route: &Route) -> String {
    let split = routing_table()
        .iter()
        .any(|r| r.stage == route.stage && r.target != route.target);
    if split && route.target == Target::BatchJob {
        format!("{}-job", route.stage.name())
    } else {
        route.stage.name().to_string()
    }
}

fn object_triggers(route: &Route) -> Vec<&Trigger> {
    route
        .triggers
        .iter()
        .filter(|t| matches!(t, Trigger::Object { .. }))
        .collect()
}

/// What each object rule must match, from the routing table: the rule of the i-th object
/// trigger of a stage is `<prefix>-<stage>-object-<i>` (modules/function and
/// modules/training); the monitoring module's retrain rule matches retrain requests.
fn expected_matches() -> BTreeMap<String, Vec<String>> {
    let mut expected = BTreeMap::new();
    for route in routing_table() {
        for (i, trigger) in object_triggers(&route).into_iter().enumerate() {
            let name = format!("{NAME_PREFIX}-{}-object-{i}", route_name(&route));
            let keys = KEYS
                .iter()
                .filter(|k| starts(trigger, k))
                .map(|k| key_and_size(k).0.to_string())
                .collect();
            expected.insert(name, keys);
        }
    }
    expected.insert(
        format!("{NAME_PREFIX}-retrain-requested"),
        KEYS.iter()
            .filter(|k| k.starts_with(records::keys::RETRAIN_REQUESTS))
            .map(|k| key_and_size(k).0.to_string())
            .collect(),
    );
    expected
}

fn sorted(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

fn files_under(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).unwrap();
                out.insert(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    out
}

#[test]
fn the_aws_side_applies_to_moto_routes_real_keys_and_destroys_to_nothing() {
    if !has_terraform() {
        return missing("terraform (on the PATH)");
    }
    let plugins = plugin_dir();
    let provider = plugins.join("registry.terraform.io/hashicorp/aws/5.100.0");
    if !provider.is_dir() {
        return missing(&format!(
            "the aws provider 5.100.0 filesystem mirror ({}; set MLPIPE_TF_PLUGIN_DIR)",
            provider.display()
        ));
    }
    let python = python();
    if !python.is_file() {
        return missing("Python with moto and boto3 (MLPIPE_PYTHON or .venv/bin/python)");
    }
    let Some(package) = package_dir() else {
        return missing("the package (MLPIPE_PACKAGE_MANIFEST or target/package)");
    };
    let zip = package.join("lambda/mlpipe-lambda-x86_64.zip");
    assert!(
        zip.is_file(),
        "{} is missing: the package must hold the x86_64 Lambda zip",
        zip.display()
    );

    let work = tempfile::tempdir().unwrap();
    let log = work.path().join("moto.log");
    let moto = Moto::start(&python, &log);
    let endpoint = moto.endpoint.as_str();
    let root_dir = work.path().join("root");
    std::fs::create_dir(&root_dir).unwrap();
    generate_root(&root_dir);
    let cli_config = work.path().join("terraformrc");
    std::fs::write(&cli_config, "").unwrap();
    let tf = Terraform {
        dir: root_dir,
        cli_config,
        vars: vec![
            format!("-var=endpoint={endpoint}"),
            format!("-var=package_dir={}", package.display()),
            format!("-var=name_prefix={NAME_PREFIX}"),
        ],
    };

    let before = account(&python, endpoint, &["inventory"]);
    for (kind, items) in before.as_object().unwrap() {
        if let Some(items) = items.as_array() {
            assert!(
                items.is_empty(),
                "a fresh moto account has {kind}: {items:?}"
            );
        }
    }

    // Create the infrastructure (guide step 3).
    tf.run(&["init", &format!("-plugin-dir={}", plugins.display())]);
    tf.run(&["validate"]);
    tf.run(&["plan", "-out=tfplan"]);
    let applied = tf.run(&["apply", "tfplan"]);
    assert!(applied.contains("Apply complete!"), "{applied}");
    // Applied as planned: a second plan changes nothing but what moto does not store.
    tf.run(&["plan", "-out=replan"]);
    let replan: Value = serde_json::from_str(&tf.run(&["show", "-json", "replan"])).unwrap();
    let drift = changed_attributes(&replan);
    let unexpected: Vec<_> = drift
        .iter()
        .filter(|(kind, attribute)| {
            !MOTO_DOES_NOT_STORE.contains(&(kind.as_str(), attribute.as_str()))
        })
        .collect();
    assert!(
        unexpected.is_empty(),
        "a plan right after apply wants to change {unexpected:?}"
    );

    // The job definition waits for an image that exists (guide step 4). With Batch on, a
    // tag that is not in the repository fails the plan; once pushed, the plan creates the
    // definition with it, moves the training rules from the dead-letter queue to Batch and
    // adds the queue's watcher and its alarm. (Planned only: moto has no Batch.)
    let train = routing_table()
        .into_iter()
        .find(|r| r.target == Target::BatchJob)
        .unwrap();
    let batch_on = "-var=training_batch=true";
    let (_, refused) = tf.run_status(
        &["plan", batch_on, "-var=train_image_tag=v-not-pushed"],
        &[1],
    );
    assert!(
        refused.contains("data \"aws_ecr_image\" \"train\"")
            && refused.contains("reading ECR Images: couldn't find"),
        "the plan should fail on the missing image:\n{refused}"
    );
    let repository = format!("{NAME_PREFIX}-{}", train.stage.name());
    account(&python, endpoint, &["put-image", &repository, "v1"]);
    tf.run(&[
        "plan",
        batch_on,
        "-var=train_image_tag=v1",
        "-out=batchplan",
    ]);
    let batch: Value = serde_json::from_str(&tf.run(&["show", "-json", "batchplan"])).unwrap();
    let actions = planned_actions(&batch);
    let train_module = format!("module.pipeline.module.{}", train.stage.name());
    for (address, action) in [
        ("aws_batch_compute_environment.this[0]", "create"),
        ("aws_batch_job_queue.this[0]", "create"),
        ("aws_batch_job_definition.this[0]", "create"),
        ("aws_cloudwatch_event_target.object[\"0\"]", "create"),
        ("aws_cloudwatch_event_target.parked[\"0\"]", "delete"),
        ("aws_cloudwatch_event_rule.failed[0]", "create"),
        ("module.watch[0].aws_lambda_function.this", "create"),
        (
            "module.watch[0].aws_cloudwatch_event_rule.pattern[\"state\"]",
            "create",
        ),
        ("aws_cloudwatch_metric_alarm.runnable[0]", "create"),
    ] {
        let address = format!("{train_module}.{address}");
        assert_eq!(
            actions.get(&address).map(String::as_str),
            Some(action),
            "{address} in the Batch plan: {actions:#?}"
        );
    }
    let definition = batch["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == format!("{train_module}.aws_batch_job_definition.this[0]"))
        .unwrap();
    let container = definition["change"]["after"]["container_properties"]
        .as_str()
        .unwrap();
    assert!(
        container.contains(&format!("{repository}:v1")),
        "{container}"
    );

    let outputs: Value = serde_json::from_str(&tf.run(&["output", "-json"])).unwrap();
    let bucket = outputs["bucket_name"]["value"]
        .as_str()
        .unwrap()
        .to_string();
    let after = account(&python, endpoint, &["inventory"]);

    // Every function stage is a Lambda function; the rules are the routing table's.
    let functions: BTreeSet<String> = routing_table()
        .iter()
        .filter(|r| r.target == Target::Function)
        .map(|r| format!("{NAME_PREFIX}-{}", r.stage.name()))
        .collect();
    assert_eq!(names(&after, "lambda functions"), functions);
    let expected = expected_matches();
    let rules = names(&after, "eventbridge rules");
    for rule in expected.keys() {
        assert!(rules.contains(rule), "no rule {rule}: {rules:?}");
    }
    for kind in [
        "s3 buckets",
        "sqs queues",
        "sns topics",
        "kms keys",
        "dynamodb tables",
        "cloudwatch alarms",
        "log groups",
        "ecr repositories",
        "iam roles",
    ] {
        assert!(!names(&after, kind).is_empty(), "apply created no {kind}");
    }

    // The definitions were seeded from the package (guide step 3).
    let seeded = account(&python, endpoint, &["list", &bucket, "definitions/"]);
    let seeded: BTreeSet<String> = sorted(&seeded["keys"])
        .into_iter()
        .map(|k| k.trim_start_matches("definitions/").to_string())
        .collect();
    assert_eq!(seeded, files_under(&package.join("definitions")));

    // Upload the sample (guide step 5).
    let sample = repo_root().join("examples/fraud/data/transactions.csv");
    let key = "raw/transactions/transactions.csv";
    account(
        &python,
        endpoint,
        &["put", &bucket, sample.to_str().unwrap(), key],
    );
    let raw = account(&python, endpoint, &["list", &bucket, "raw/"]);
    assert_eq!(sorted(&raw["keys"]), vec![key.to_string()]);

    // Each rule matches exactly the keys the routing table gives its stage; training's
    // rules, with no image set yet, park what they match in the train dead-letter queue.
    let fixture = repo_root().join("shared/events/tests/fixtures/eventbridge-s3.json");
    let mut args = vec!["observe", bucket.as_str(), fixture.to_str().unwrap()];
    args.extend(KEYS);
    let observed = account(&python, endpoint, &args);
    let rules_seen = observed["rules"].as_object().unwrap();
    for (rule, keys) in &expected {
        let seen = rules_seen
            .get(rule)
            .map(sorted)
            .unwrap_or_else(|| panic!("rule {rule} was not observed: {observed}"));
        let mut want = keys.clone();
        want.sort();
        assert_eq!(seen, want, "rule {rule}");
    }
    // With no image set yet, each batch-job row's rule parks what it matches in its
    // dead-letter queue; every other queue stays empty.
    let mut parked_queues = BTreeMap::new();
    for route in routing_table()
        .iter()
        .filter(|r| r.target == Target::BatchJob)
    {
        let mut parked: Vec<String> = KEYS
            .iter()
            .filter(|k| object_triggers(route).iter().any(|t| starts(t, k)))
            .map(|k| key_and_size(k).0.to_string())
            .collect();
        parked.sort();
        assert!(!parked.is_empty(), "no key reaches {}", route_name(route));
        parked_queues.insert(format!("{NAME_PREFIX}-{}-dlq", route_name(route)), parked);
    }
    for (queue, keys) in observed["queues"].as_object().unwrap() {
        let want = parked_queues.get(queue).cloned().unwrap_or_default();
        assert_eq!(sorted(keys), want, "{queue}: {observed}");
    }
    for queue in parked_queues.keys() {
        assert!(
            observed["queues"].get(queue).is_some(),
            "no queue {queue}: {observed}"
        );
    }

    // Tear down (guide step 8): nothing is left.
    let destroyed = tf.run(&["destroy", "-auto-approve"]);
    assert!(destroyed.contains("Destroy complete!"), "{destroyed}");
    let left = account(&python, endpoint, &["inventory"]);
    for (kind, items) in left.as_object().unwrap() {
        if let Some(items) = items.as_array() {
            assert!(items.is_empty(), "destroy left {kind}: {items:?}");
        }
    }
}
