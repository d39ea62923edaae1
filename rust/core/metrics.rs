//! Named numeric metrics (tokens, cost, bytes) summed per node and rolled up the tree.
//!
//! Names are interned once per run into a slot index; each node holds a fixed array of atomic
//! slots, so adding to a metric takes no lock and allocates nothing.

use std::sync::atomic::{AtomicU32, Ordering};

use parking_lot::RwLock;

use super::counter::AtomicF64;
use super::error::Error;

/// How many distinct metric names one run can hold.
pub const MAX_METRICS: usize = 32;

/// Whether metric `name` is money: its name contains `cost` or `usd` (any case). The one rule
/// for every display (the `$` of the terminal, a node's `cost` in the snapshot, the history's
/// and the dashboard's cost columns), exported to Python as `_milepost.is_money`.
pub fn is_money(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.contains("cost") || lower.contains("usd")
}

/// The slots of the money metrics among a run's metric `names`, as a bit mask (see
/// [`MetricSums::money`]).
pub fn money_slots(names: &[String]) -> u32 {
    names.iter().enumerate().filter(|(_, n)| is_money(n)).fold(0, |mask, (slot, _)| mask | (1 << slot))
}

/// Checks a metric update before it reaches any node, local or shared: a name, a finite
/// value, and an integer within the count range (it is summed exactly, as counts are).
pub fn check(name: &str, value: f64, is_float: bool) -> Result<(), Error> {
    if name.is_empty() {
        return Err(Error::EmptyName { what: "metric name" });
    }
    if !value.is_finite() {
        return Err(Error::NotFinite { metric: name.to_owned(), value });
    }
    if !is_float && value.abs() > super::limits::MAX_COUNT as f64 {
        return Err(Error::TooLarge { what: format!("metric {name:?}"), value: format!("{value:.0}") });
    }
    Ok(())
}

/// Maps metric names to slot indices, shared by every node of a run.
#[derive(Debug, Default)]
pub struct MetricRegistry {
    names: RwLock<Vec<String>>,
}

impl MetricRegistry {
    /// The slot for `name`, interning it on first use.
    pub fn slot(&self, name: &str) -> Result<usize, Error> {
        if name.is_empty() {
            return Err(Error::EmptyName { what: "metric name" });
        }
        if let Some(i) = self.names.read().iter().position(|n| n == name) {
            return Ok(i);
        }
        let mut names = self.names.write();
        if let Some(i) = names.iter().position(|n| n == name) {
            return Ok(i);
        }
        if names.len() >= MAX_METRICS {
            return Err(Error::TooManyMetrics { name: name.to_owned(), limit: MAX_METRICS });
        }
        names.push(name.to_owned());
        Ok(names.len() - 1)
    }

    pub fn names(&self) -> Vec<String> {
        self.names.read().clone()
    }
}

/// One node's metric sums. A slot stays integer-valued until a float is added to it.
#[derive(Debug, Default)]
pub struct MetricValues {
    values: [AtomicF64; MAX_METRICS],
    used: AtomicU32,
    floats: AtomicU32,
}

/// A metric sum as it is reported: an integer while only integers were added.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MetricValue {
    Int(i64),
    Float(f64),
}

impl MetricValues {
    pub fn add(&self, slot: usize, value: f64, is_float: bool) {
        self.values[slot].add(value);
        self.used.fetch_or(1 << slot, Ordering::Relaxed);
        if is_float {
            self.floats.fetch_or(1 << slot, Ordering::Relaxed);
        }
    }

    /// Adds every used slot of `self` into `acc` (value, used, float flags).
    pub fn accumulate(&self, acc: &mut MetricSums) {
        let used = self.used.load(Ordering::Relaxed);
        let floats = self.floats.load(Ordering::Relaxed);
        for slot in 0..MAX_METRICS {
            if used & (1 << slot) != 0 {
                acc.values[slot] += self.values[slot].get();
            }
        }
        acc.used |= used;
        acc.floats |= floats;
    }
}

/// Plain (non-atomic) metric sums used while building a snapshot.
#[derive(Debug, Clone, Copy, Default)]
pub struct MetricSums {
    pub values: [f64; MAX_METRICS],
    pub used: u32,
    pub floats: u32,
}

impl MetricSums {
    pub fn merge(&mut self, other: &Self) {
        for slot in 0..MAX_METRICS {
            self.values[slot] += other.values[slot];
        }
        self.used |= other.used;
        self.floats |= other.floats;
    }

    /// The sum of the money metrics (`mask`: see [`money_slots`]), `None` when none is used.
    pub fn money(&self, mask: u32) -> Option<f64> {
        let used = self.used & mask;
        (used != 0).then(|| (0..MAX_METRICS).filter(|s| used & (1 << s) != 0).map(|s| self.values[s]).sum())
    }

    /// `(slot, value)` for every used slot.
    pub fn iter(&self) -> impl Iterator<Item = (usize, MetricValue)> + '_ {
        (0..MAX_METRICS).filter(move |s| self.used & (1 << s) != 0).map(move |s| {
            let v = self.values[s];
            if self.floats & (1 << s) == 0 && v.abs() < 9.0e15 {
                (s, MetricValue::Int(v as i64))
            } else {
                (s, MetricValue::Float(v))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_and_limits() {
        let r = MetricRegistry::default();
        assert_eq!(r.slot("tokens").unwrap(), 0);
        assert_eq!(r.slot("cost").unwrap(), 1);
        assert_eq!(r.slot("tokens").unwrap(), 0);
        assert!(matches!(r.slot(""), Err(Error::EmptyName { .. })));
        for i in 2..MAX_METRICS {
            r.slot(&format!("m{i}")).unwrap();
        }
        assert!(matches!(r.slot("one-too-many"), Err(Error::TooManyMetrics { .. })));
    }

    #[test]
    fn money_is_one_rule() {
        assert!(is_money("cost_usd") && is_money("LLM Cost") && is_money("USD"));
        assert!(!is_money("tokens") && !is_money("latency_s"));
        let mask = money_slots(&["tokens".to_owned(), "cost_usd".to_owned(), "llm_usd".to_owned()]);
        assert_eq!(mask, 0b110);
        let mut sums = MetricSums::default();
        assert_eq!(sums.money(mask), None);
        (sums.values[0], sums.values[1], sums.values[2], sums.used) = (5.0, 0.25, 2.0, 0b111);
        assert_eq!(sums.money(mask), Some(2.25));
    }

    #[test]
    fn checks_come_before_any_node() {
        assert!(check("tokens", 3.0, false).is_ok());
        assert!(matches!(check("", 1.0, false), Err(Error::EmptyName { .. })));
        assert!(matches!(check("x", f64::INFINITY, true), Err(Error::NotFinite { .. })));
        assert!(matches!(check("x", 2f64.powi(60), false), Err(Error::TooLarge { .. })));
        assert!(check("x", 2f64.powi(60), true).is_ok(), "a float sum has no exact range to keep");
    }

    #[test]
    fn ints_stay_ints_until_a_float_arrives() {
        let v = MetricValues::default();
        v.add(0, 3.0, false);
        v.add(0, 4.0, false);
        v.add(1, 0.5, true);
        let mut s = MetricSums::default();
        v.accumulate(&mut s);
        let got: Vec<_> = s.iter().collect();
        assert_eq!(got, vec![(0, MetricValue::Int(7)), (1, MetricValue::Float(0.5))]);
    }
}
