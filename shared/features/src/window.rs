//! Bucketed trailing windows: the one definition of every aggregate, used offline (over a
//! whole event history) and online (over a materialized entity record).
//!
//! A window of `n` buckets of width `w` evaluated at time `t` covers the events `e` of the
//! entity with `e.time < t` whose bucket `floor(e.time / w)` is at least
//! `floor(t / w) - n + 1`: the current, partly elapsed bucket plus the `n - 1` before it.
//! The online record keeps per-bucket partial aggregates, so a request at any time after the
//! last materialized event merges exactly the buckets the offline pass merges, in the same
//! order, with the same arithmetic.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::definition::{Agg, FeatureKind, FeatureView};

/// Count, sum, mean, sum of squared deviations (for std), min and max of a set of values,
/// mergeable (Chan et al.'s parallel update), so buckets combine without the raw values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub count: u64,
    pub sum: f64,
    pub mean: f64,
    pub m2: f64,
    pub min: f64,
    pub max: f64,
}

impl Default for Stats {
    fn default() -> Stats {
        Stats {
            count: 0,
            sum: 0.0,
            mean: 0.0,
            m2: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

impl Stats {
    pub fn push(&mut self, x: f64) {
        self.count += 1;
        self.sum += x;
        let delta = x - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (x - self.mean);
        self.min = self.min.min(x);
        self.max = self.max.max(x);
    }

    pub fn merge(&mut self, other: &Stats) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = *other;
            return;
        }
        let n = (self.count + other.count) as f64;
        let delta = other.mean - self.mean;
        self.mean += delta * other.count as f64 / n;
        self.m2 += other.m2 + delta * delta * self.count as f64 * other.count as f64 / n;
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }
}

/// One value an event contributes to a slot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SlotValue {
    /// The column is null (the event still counts as an event).
    Missing,
    Number(f64),
    /// Stable 64-bit hash of the value, for distinct counts.
    Hash(u64),
}

/// What a slot aggregates: events per bucket, plus stats of a numeric column or the set of
/// distinct values of any column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    pub column: Option<String>,
    pub distinct: bool,
    /// A latest-value slot: each bucket's stats hold only its newest event's value (none
    /// when that value was null), so the online record keeps its format.
    #[serde(default)]
    pub last: bool,
    pub bucket_us: i64,
    /// Buckets kept behind the newest one: the longest window on this slot, in buckets.
    pub keep: i64,
}

/// One window feature compiled onto a slot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowFeature {
    pub feature: String,
    pub slot: usize,
    pub buckets: i64,
    pub agg: Agg,
}

/// The slots and window features of a view, derived from its definition in a fixed order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AggPlan {
    pub slots: Vec<Slot>,
    /// Features of kind aggregate and time-since-previous, in definition order.
    pub outputs: Vec<StateFeature>,
    pub ttl_us: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StateFeature {
    Window(WindowFeature),
    TimeSincePrevious { feature: String },
}

impl StateFeature {
    pub fn name(&self) -> &str {
        match self {
            StateFeature::Window(w) => &w.feature,
            StateFeature::TimeSincePrevious { feature } => feature,
        }
    }
}

impl AggPlan {
    pub fn new(view: &FeatureView) -> AggPlan {
        let mut slots: Vec<Slot> = Vec::new();
        let mut outputs = Vec::new();
        for f in &view.features {
            match &f.kind {
                FeatureKind::Aggregate {
                    agg,
                    column,
                    window_us,
                    bucket_us,
                } => {
                    let distinct = *agg == Agg::DistinctCount;
                    let last = *agg == Agg::Last;
                    // A plain event count needs no column; numeric counts count non-null values.
                    let column = column.clone();
                    let buckets = window_us / bucket_us;
                    let slot = match slots.iter().position(|s| {
                        s.column == column
                            && s.distinct == distinct
                            && s.last == last
                            && s.bucket_us == *bucket_us
                    }) {
                        Some(i) => i,
                        None => {
                            slots.push(Slot {
                                column,
                                distinct,
                                last,
                                bucket_us: *bucket_us,
                                keep: 0,
                            });
                            slots.len() - 1
                        }
                    };
                    slots[slot].keep = slots[slot].keep.max(buckets);
                    outputs.push(StateFeature::Window(WindowFeature {
                        feature: f.name.clone(),
                        slot,
                        buckets,
                        agg: *agg,
                    }));
                }
                FeatureKind::TimeSincePrevious => outputs.push(StateFeature::TimeSincePrevious {
                    feature: f.name.clone(),
                }),
                _ => {}
            }
        }
        AggPlan {
            slots,
            outputs,
            ttl_us: view.ttl_us,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.outputs.is_empty()
    }
}

/// Partial aggregates of one bucket of one slot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    pub index: i64,
    pub events: u64,
    pub stats: Stats,
    /// Sorted distinct value hashes (distinct slots only).
    pub distinct: Vec<u64>,
}

/// Everything request-time evaluation needs about one entity: the bucketed partial
/// aggregates of each slot and the time of its last event. This is the online record.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct EntityState {
    pub last_event_us: Option<i64>,
    pub slots: Vec<VecDeque<Bucket>>,
}

impl EntityState {
    pub fn new(plan: &AggPlan) -> EntityState {
        EntityState {
            last_event_us: None,
            slots: vec![VecDeque::new(); plan.slots.len()],
        }
    }

    /// Adds one event. Events must arrive in non-decreasing time order; `values` has one
    /// entry per slot of the plan.
    pub fn add(&mut self, plan: &AggPlan, time_us: i64, values: &[SlotValue]) {
        self.last_event_us = Some(self.last_event_us.map_or(time_us, |t| t.max(time_us)));
        if self.slots.len() != plan.slots.len() {
            self.slots.resize(plan.slots.len(), VecDeque::new());
        }
        for ((slot, buckets), value) in plan.slots.iter().zip(&mut self.slots).zip(values) {
            let index = time_us.div_euclid(slot.bucket_us);
            let newest = match buckets.back() {
                Some(b) if b.index == index => buckets.back_mut(),
                _ => {
                    buckets.push_back(Bucket {
                        index,
                        events: 0,
                        stats: Stats::default(),
                        distinct: Vec::new(),
                    });
                    buckets.back_mut()
                }
            };
            if let Some(b) = newest {
                b.events += 1;
                if slot.last {
                    // Events arrive in time order (ties in input order): the newest wins.
                    b.stats = Stats::default();
                    if let SlotValue::Number(x) = *value {
                        b.stats.push(x);
                    }
                } else {
                    match *value {
                        SlotValue::Number(x) => b.stats.push(x),
                        SlotValue::Hash(h) => {
                            if let Err(pos) = b.distinct.binary_search(&h) {
                                b.distinct.insert(pos, h);
                            }
                        }
                        SlotValue::Missing => {}
                    }
                }
            }
            let oldest_needed = index - slot.keep + 1;
            while buckets.front().is_some_and(|b| b.index < oldest_needed) {
                buckets.pop_front();
            }
        }
    }

    /// True when this state reads as empty at `at_us`: no event yet, or the last one is
    /// older than the TTL.
    pub fn expired_at(&self, plan: &AggPlan, at_us: i64) -> bool {
        match (self.last_event_us, plan.ttl_us) {
            (None, _) => true,
            (Some(last), Some(ttl)) => at_us - last > ttl,
            (Some(_), None) => false,
        }
    }

    /// The state features of `plan` at time `at_us`, which must be later than every event
    /// added (strictly: that is what keeps an event out of its own features).
    pub fn evaluate(&self, plan: &AggPlan, at_us: i64, out: &mut Vec<Option<f64>>) {
        out.clear();
        let empty = self.expired_at(plan, at_us);
        let mut merged: Vec<(i64, usize, Merged)> = Vec::new();
        for feature in &plan.outputs {
            let value = match feature {
                StateFeature::TimeSincePrevious { .. } => match self.last_event_us {
                    Some(last) if !empty => Some((at_us - last) as f64 / 1e6),
                    _ => None,
                },
                StateFeature::Window(w) => {
                    let m = if empty {
                        Merged::default()
                    } else {
                        // Features over the same slot and span share one merge.
                        match merged
                            .iter()
                            .find(|(n, s, _)| *n == w.buckets && *s == w.slot)
                        {
                            Some((_, _, m)) => m.clone(),
                            None => {
                                let m = self.merge(plan, w.slot, w.buckets, at_us);
                                merged.push((w.buckets, w.slot, m.clone()));
                                m
                            }
                        }
                    };
                    m.value(w.agg, plan.slots[w.slot].column.is_some())
                }
            };
            out.push(value);
        }
    }

    fn merge(&self, plan: &AggPlan, slot: usize, buckets: i64, at_us: i64) -> Merged {
        let spec = &plan.slots[slot];
        let newest = at_us.div_euclid(spec.bucket_us);
        let oldest = newest - buckets + 1;
        let mut m = Merged::default();
        let Some(list) = self.slots.get(slot) else {
            return m;
        };
        if spec.last {
            // The newest bucket in the window that saw an event holds the newest event.
            let unbounded = spec.bucket_us == crate::definition::UNBOUNDED_US;
            if let Some(b) = list
                .iter()
                .rev()
                .filter(|b| unbounded || b.index <= newest)
                .take_while(|b| unbounded || b.index >= oldest)
                .find(|b| b.events > 0)
            {
                m.events = b.events;
                m.stats = b.stats;
            }
            return m;
        }
        // Newest first: buckets are sorted, so the scan stops at the window's old end.
        for b in list
            .iter()
            .rev()
            .take_while(|b| b.index >= oldest)
            .filter(|b| b.index <= newest)
        {
            m.events += b.events;
            m.stats.merge(&b.stats);
            if spec.distinct {
                m.distinct.extend_from_slice(&b.distinct);
            }
        }
        if spec.distinct {
            m.distinct.sort_unstable();
            m.distinct.dedup();
        }
        m
    }

    /// Approximate encoded size, to keep records under the online stores' item limits.
    pub fn bucket_count(&self) -> usize {
        self.slots.iter().map(VecDeque::len).sum()
    }
}

#[derive(Debug, Clone, Default)]
struct Merged {
    events: u64,
    stats: Stats,
    distinct: Vec<u64>,
}

impl Merged {
    fn value(&self, agg: Agg, has_column: bool) -> Option<f64> {
        let s = &self.stats;
        match agg {
            Agg::Count if has_column => Some(s.count as f64),
            Agg::Count => Some(self.events as f64),
            Agg::Sum => Some(if s.count == 0 { 0.0 } else { s.sum }),
            Agg::Mean => (s.count > 0).then_some(s.mean),
            Agg::Min => (s.count > 0).then_some(s.min),
            Agg::Max => (s.count > 0).then_some(s.max),
            Agg::Std => (s.count > 1).then(|| (s.m2.max(0.0) / (s.count - 1) as f64).sqrt()),
            Agg::DistinctCount => Some(self.distinct.len() as f64),
            // A latest-value slot's merge holds the newest event's value alone.
            Agg::Last => (s.count > 0).then_some(s.mean),
        }
    }
}

/// FNV-1a over a type tag and bytes: a hash that is the same on every platform (wasm
/// included) and in every process, unlike std's randomised hasher.
pub fn stable_hash(tag: u8, bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in std::iter::once(&tag).chain(bytes) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Hash of a number for distinct counts: integers and floats with the same value agree.
pub fn hash_number(x: f64) -> u64 {
    let x = if x == 0.0 { 0.0 } else { x };
    stable_hash(1, &x.to_bits().to_le_bytes())
}

pub fn hash_text(s: &str) -> u64 {
    stable_hash(2, s.as_bytes())
}

pub fn hash_bool(b: bool) -> u64 {
    stable_hash(3, &[u8::from(b)])
}

/// Evaluates the plan for each query of one entity against that entity's events, strictly
/// before each query's time, and returns the entity's final state (its online record).
///
/// `event_times` must be sorted ascending; `event_values(i)` gives the slot values of event
/// `i`; `query_times` must be sorted ascending. `out` receives one row of
/// `plan.outputs.len()` values per query.
pub fn entity_pass(
    plan: &AggPlan,
    event_times: &[i64],
    mut event_values: impl FnMut(usize, &mut Vec<SlotValue>),
    query_times: &[i64],
    out: &mut Vec<Option<f64>>,
) -> EntityState {
    let mut state = EntityState::new(plan);
    let mut values = Vec::with_capacity(plan.slots.len());
    let mut row = Vec::with_capacity(plan.outputs.len());
    let mut next = 0;
    for &q in query_times {
        while next < event_times.len() && event_times[next] < q {
            values.clear();
            event_values(next, &mut values);
            state.add(plan, event_times[next], &values);
            next += 1;
        }
        state.evaluate(plan, q, &mut row);
        out.extend_from_slice(&row);
    }
    while next < event_times.len() {
        values.clear();
        event_values(next, &mut values);
        state.add(plan, event_times[next], &values);
        next += 1;
    }
    state
}
