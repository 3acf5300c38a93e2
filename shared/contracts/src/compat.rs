//! Contract evolution: may a new contract version replace the current one?
//!
//! Curated versions written under the old contract must stay readable next to new ones, so a
//! change is classified by what it does to data already admitted:
//! - compatible: adds nullable columns or widens rules (old data still satisfies the new
//!   contract);
//! - tightened: narrows rules (old data keeps its versions; the new rules apply to new data);
//! - breaking: changes a type or a key, drops a required column, or adds a required column
//!   (old and new versions no longer share a schema). Refused unless `new_lineage = true`.

use serde::{Deserialize, Serialize};

use crate::{ColumnSpec, Contract};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Compatible,
    Tightened,
    Breaking,
}

/// One difference between two contract versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub kind: ChangeKind,
    pub what: String,
}

/// The verdict on a contract change: the worst change decides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compatibility {
    pub changes: Vec<Change>,
}

impl Compatibility {
    pub fn worst(&self) -> Option<ChangeKind> {
        self.changes.iter().map(|c| c.kind).max()
    }
    pub fn is_breaking(&self) -> bool {
        self.worst() == Some(ChangeKind::Breaking)
    }
    pub fn describe(&self, kind: ChangeKind) -> String {
        self.changes
            .iter()
            .filter(|c| c.kind == kind)
            .map(|c| c.what.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Compares the current contract with a proposed one.
pub fn compare(old: &Contract, new: &Contract) -> Compatibility {
    let mut changes = Vec::new();
    let mut push = |kind, what: String| changes.push(Change { kind, what });

    if old.entity_key != new.entity_key {
        push(
            ChangeKind::Breaking,
            format!("entity_key {:?} -> {:?}", old.entity_key, new.entity_key),
        );
    }
    if old.event_time != new.event_time {
        push(
            ChangeKind::Breaking,
            format!("event_time {:?} -> {:?}", old.event_time, new.event_time),
        );
    }
    if old.primary_key != new.primary_key {
        push(
            ChangeKind::Breaking,
            format!("primary_key {:?} -> {:?}", old.primary_key, new.primary_key),
        );
    }
    for o in &old.columns {
        match new.column(&o.name) {
            None if !o.nullable => push(
                ChangeKind::Breaking,
                format!("required column '{}' dropped", o.name),
            ),
            None => push(
                ChangeKind::Tightened,
                format!("nullable column '{}' dropped", o.name),
            ),
            Some(n) => compare_column(o, n, &mut push),
        }
    }
    for n in &new.columns {
        if old.column(&n.name).is_none() {
            if n.nullable {
                push(
                    ChangeKind::Compatible,
                    format!("nullable column '{}' added", n.name),
                );
            } else {
                push(
                    ChangeKind::Breaking,
                    format!("required column '{}' added", n.name),
                );
            }
        }
    }
    let (o, n) = (&old.rules, &new.rules);
    if n.min_rows != o.min_rows {
        let kind = if n.min_rows < o.min_rows {
            ChangeKind::Compatible
        } else {
            ChangeKind::Tightened
        };
        push(kind, format!("min_rows {} -> {}", o.min_rows, n.min_rows));
    }
    if n.max_null_fraction != o.max_null_fraction
        || n.unique_primary_key != o.unique_primary_key
        || n.freshness != o.freshness
        || n.on_fail != o.on_fail
    {
        push(ChangeKind::Tightened, "dataset rules changed".into());
    }
    if old.csv != new.csv
        || old.format != new.format
        || old.limits != new.limits
        || old.extra_columns != new.extra_columns
    {
        push(ChangeKind::Compatible, "reading options changed".into());
    }
    Compatibility { changes }
}

fn compare_column(o: &ColumnSpec, n: &ColumnSpec, push: &mut impl FnMut(ChangeKind, String)) {
    let name = &o.name;
    if o.ty != n.ty {
        push(
            ChangeKind::Breaking,
            format!("column '{name}' type {} -> {}", o.ty.name(), n.ty.name()),
        );
        return;
    }
    if o.nullable != n.nullable {
        if n.nullable {
            push(
                ChangeKind::Compatible,
                format!("column '{name}' now nullable"),
            );
        } else {
            push(
                ChangeKind::Tightened,
                format!("column '{name}' now required"),
            );
        }
    }
    let bound = |old: Option<f64>, new: Option<f64>, lower: bool| -> Option<ChangeKind> {
        match (old, new) {
            (a, b) if a == b => None,
            (_, None) => Some(ChangeKind::Compatible),
            (None, Some(_)) => Some(ChangeKind::Tightened),
            (Some(a), Some(b)) => Some(if (lower && b < a) || (!lower && b > a) {
                ChangeKind::Compatible
            } else {
                ChangeKind::Tightened
            }),
        }
    };
    if let Some(k) = bound(o.min, n.min, true) {
        push(k, format!("column '{name}' min {:?} -> {:?}", o.min, n.min));
    }
    if let Some(k) = bound(o.max, n.max, false) {
        push(k, format!("column '{name}' max {:?} -> {:?}", o.max, n.max));
    }
    let len = |v: Option<usize>| v.map(|x| x as f64);
    if let Some(k) = bound(len(o.min_length), len(n.min_length), true) {
        push(k, format!("column '{name}' min_length changed"));
    }
    if let Some(k) = bound(len(o.max_length), len(n.max_length), false) {
        push(k, format!("column '{name}' max_length changed"));
    }
    match (&o.values, &n.values) {
        (a, b) if a == b && o.case_insensitive == n.case_insensitive => {}
        (_, None) => push(
            ChangeKind::Compatible,
            format!("column '{name}' allowed values removed"),
        ),
        (Some(a), Some(b))
            if a.iter().all(|v| b.contains(v)) && (n.case_insensitive || !o.case_insensitive) =>
        {
            push(
                ChangeKind::Compatible,
                format!("column '{name}' allowed values widened"),
            )
        }
        _ => push(
            ChangeKind::Tightened,
            format!("column '{name}' allowed values narrowed"),
        ),
    }
    if o.pattern != n.pattern {
        let kind = if n.pattern.is_none() {
            ChangeKind::Compatible
        } else {
            ChangeKind::Tightened
        };
        push(kind, format!("column '{name}' pattern changed"));
    }
    if o.unique != n.unique {
        let kind = if n.unique {
            ChangeKind::Tightened
        } else {
            ChangeKind::Compatible
        };
        push(
            kind,
            format!("column '{name}' unique {} -> {}", o.unique, n.unique),
        );
    }
    if o.format != n.format
        || o.timezone != n.timezone
        || o.boolean != n.boolean
        || o.source != n.source
    {
        push(
            ChangeKind::Compatible,
            format!("column '{name}' reading options changed"),
        );
    }
    if o.not_before != n.not_before || o.not_after != n.not_after {
        push(
            ChangeKind::Tightened,
            format!("column '{name}' time bounds changed"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contract(columns: &str) -> Contract {
        Contract::from_toml(&format!("dataset = \"tx\"\n{columns}"), "t.toml").unwrap()
    }

    const BASE: &str = "[[columns]]\nname = \"id\"\ntype = \"string\"\nnullable = false\n[[columns]]\nname = \"amount\"\ntype = \"float\"\nmin = 0\nmax = 100\n";

    #[test]
    fn identical_has_no_changes() {
        assert_eq!(compare(&contract(BASE), &contract(BASE)).worst(), None);
    }

    #[test]
    fn adding_nullable_and_widening_are_compatible() {
        let new = contract(&format!(
            "{}\n[[columns]]\nname = \"note\"\ntype = \"string\"\n",
            BASE.replace("max = 100", "max = 1000")
        ));
        let c = compare(&contract(BASE), &new);
        assert_eq!(c.worst(), Some(ChangeKind::Compatible), "{c:?}");
    }

    #[test]
    fn narrowing_is_tightened() {
        let c = compare(
            &contract(BASE),
            &contract(&BASE.replace("max = 100", "max = 10")),
        );
        assert_eq!(c.worst(), Some(ChangeKind::Tightened));
    }

    #[test]
    fn type_change_and_dropped_required_column_break() {
        let c = compare(
            &contract(BASE),
            &contract(&BASE.replace("type = \"float\"", "type = \"integer\"")),
        );
        assert!(c.is_breaking(), "{c:?}");
        let c = compare(
            &contract(BASE),
            &contract("[[columns]]\nname = \"amount\"\ntype = \"float\"\nmin = 0\nmax = 100\n"),
        );
        assert!(c.is_breaking());
        assert!(c.describe(ChangeKind::Breaking).contains("'id' dropped"));
        let c = compare(
            &contract(BASE),
            &contract(&format!(
                "{BASE}[[columns]]\nname = \"x\"\ntype = \"string\"\nnullable = false\n"
            )),
        );
        assert!(c.is_breaking());
    }
}
