//! Cost per item and the projected cost at completion, with its range.
//!
//! Each node keeps three sums over the items that ended in this process and recorded a cost
//! (their money metrics, see `metrics::is_money`): how many, the sum and the sum of squares
//! of their costs, fed once per such item at its end ([`ItemCosts::add`]). A plain item feeds
//! nothing: the sums cost nothing on the counting hot path.
//!
//! The math, for a node that counts items itself (its steps' sums rolled into its own when its
//! total covers them):
//!
//! - the sample is every item that ended in an item context in this process (`N`, the items
//!   timed), an item that recorded no cost counting as zero. A skipped item, a cache hit or a
//!   failure before the model call costs nothing, and the items still to come will include
//!   such items as often: a mean over the costed items only would overestimate every
//!   projection by their share.
//! - mean `m = S / N`, item variance `s² = (Q − S²/N) / (N − 1)` (the sample's).
//! - the `R = total − processed` items left each cost `m` on average: the projection is
//!   `spent + R·m`. `spent` is the node's whole cost (costs recorded outside items and by
//!   worker processes included); items in flight are among the `R` while what they already
//!   spent is in `spent`, so the projection errs high by at most their partial spend, never
//!   low.
//! - the cost of `R` more items varies by `R·s²` (each item's own spread) plus `R²·s²/N` (the
//!   mean itself is only estimated from `N` items); the range is the projection ± 1.645
//!   standard deviations, about 90% of a normal, and never below what is already spent.
//!
//! A node whose total is its children's (a run of phases) is heading for what it spent itself
//! plus what each child is heading for, the variances added: phases differ (a free "fetch" of
//! a thousand pages, then a costly "summarize"), and one mean over all their items would
//! price the summaries left at the fetches' price. A child that has spent nothing is taken to
//! spend nothing; a child with a cost but no projection (no total) leaves its parent with none.
//!
//! Items counted by worker processes have no per-item costs here (their metrics reach the
//! parent as sums). With no sample, the cost per item is `spent / processed` and the
//! projection `spent · total / processed`, with no range. No total, no projection.

use parking_lot::Mutex;

use super::snapshot::ProjectedCost;

/// How many standard deviations either side of the projection its range spans: the 5% and
/// 95% points of a normal distribution.
const Z_90: f64 = 1.645;

/// Sums of the costs of the items that ended here and recorded one (plus, once rolled up, how
/// many items ended here in all: see the module's docs).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CostSums {
    /// Items that recorded a cost.
    pub costed: u64,
    pub sum: f64,
    pub sum_sq: f64,
    /// Items that ended in an item context in this process, costed or not.
    pub items: u64,
}

impl std::ops::AddAssign for CostSums {
    fn add_assign(&mut self, o: Self) {
        self.costed += o.costed;
        self.sum += o.sum;
        self.sum_sq += o.sum_sq;
        self.items += o.items;
    }
}

/// A node's per-item cost sums: fed once per item that recorded a cost, read by snapshots.
/// A lock, not three atomics: a snapshot never sees a sum without its square.
#[derive(Debug, Default)]
pub struct ItemCosts(Mutex<CostSums>);

impl ItemCosts {
    /// One item's whole cost (the caller checked that it is finite).
    pub fn add(&self, cost: f64) {
        let mut s = self.0.lock();
        s.costed += 1;
        s.sum += cost;
        s.sum_sq += cost * cost;
    }

    /// The sums so far, with `items` the node's items ended here (the caller's count).
    pub fn sums(&self, items: u64) -> CostSums {
        CostSums { items, ..*self.0.lock() }
    }
}

/// Where a node's cost is heading: the projected cost at completion, what is spent, and the
/// variance of the part still to come (`None`: not known, so no range).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Heading {
    pub value: f64,
    pub spent: f64,
    pub var: Option<f64>,
}

impl Heading {
    /// The projection with its ~90% range, never below what is spent.
    pub fn projected(&self) -> ProjectedCost {
        let Some(var) = self.var else { return ProjectedCost { value: self.value, low: None, high: None } };
        let half = Z_90 * var.max(0.0).sqrt();
        let low = (self.value - half).max(self.spent.min(self.value));
        ProjectedCost { value: self.value, low: Some(low), high: Some(self.value + half) }
    }
}

/// The mean cost of an item of a node that spent `spent` on `processed` items (see the
/// module's docs for the sample).
pub fn per_item(spent: Option<f64>, processed: u64, s: &CostSums) -> Option<f64> {
    let spent = spent?;
    if s.costed > 0 {
        Some(s.sum / s.items.max(s.costed) as f64)
    } else {
        (processed > 0).then(|| spent / processed as f64)
    }
}

/// Where the cost of a node that counts its items itself is heading: `spent` on `processed`
/// of `total` items, with the per-item sums `s`.
pub fn from_items(spent: Option<f64>, processed: u64, total: Option<u64>, s: &CostSums) -> Option<Heading> {
    let (spent, total) = (spent?, total?);
    let mean = per_item(Some(spent), processed, s)?;
    let left = total.saturating_sub(processed) as f64;
    let n = s.items.max(s.costed) as f64;
    let var = if left == 0.0 {
        Some(0.0) // nothing is left to vary
    } else if s.costed > 0 && n >= 2.0 {
        let item_var = ((s.sum_sq - s.sum * s.sum / n) / (n - 1.0)).max(0.0);
        Some(left * item_var + left * left * item_var / n)
    } else {
        None // no spread to go on: one item, or items whose own costs are not known here
    };
    Some(Heading { value: spent + left * mean, spent, var })
}

/// What a node's children are heading for, summed as they are rolled up (see the module's
/// docs): start from `Default` and [`Self::add`] each child.
#[derive(Debug, Clone, Copy)]
pub struct ChildHeadings {
    value: f64,
    var: Option<f64>,
    /// A child has a cost but no projection: the node has none either.
    unknown: bool,
}

impl Default for ChildHeadings {
    fn default() -> Self {
        Self { value: 0.0, var: Some(0.0), unknown: false }
    }
}

impl ChildHeadings {
    /// A child that has spent `spent` (`None`: it has no money metric) and is heading for
    /// `heading`.
    pub fn add(&mut self, spent: Option<f64>, heading: Option<Heading>) {
        match (spent, heading) {
            (None, _) => {}
            (Some(_), None) => self.unknown = true,
            (Some(_), Some(h)) => {
                self.value += h.value;
                self.var = self.var.zip(h.var).map(|(a, b)| a + b);
            }
        }
    }

    /// Where a node whose total is its children's is heading: what it spent itself (`own`)
    /// plus its children's headings; `spent` is its whole cost, children's included.
    pub fn heading(&self, spent: Option<f64>, own: Option<f64>) -> Option<Heading> {
        let spent = spent?;
        (!self.unknown).then(|| Heading { value: own.unwrap_or(0.0) + self.value, spent, var: self.var })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sums(costs: &[f64], items: u64) -> CostSums {
        let c = ItemCosts::default();
        for &x in costs {
            c.add(x);
        }
        c.sums(items)
    }

    fn outlook(
        spent: Option<f64>, processed: u64, total: Option<u64>, s: &CostSums,
    ) -> (Option<f64>, Option<ProjectedCost>) {
        (per_item(spent, processed, s), from_items(spent, processed, total, s).map(|h| h.projected()))
    }

    #[test]
    fn no_money_or_no_total_means_no_projection() {
        let s = sums(&[0.1, 0.2], 2);
        assert_eq!(outlook(None, 2, Some(10), &s), (None, None));
        let (per_item, projected) = outlook(Some(0.3), 2, None, &s);
        assert!((per_item.unwrap() - 0.15).abs() < 1e-12);
        assert!(projected.is_none());
    }

    #[test]
    fn projection_is_spent_plus_the_items_left_at_the_mean() {
        let s = sums(&[0.1, 0.2, 0.3, 0.2], 4);
        let (per_item, p) = outlook(Some(0.8), 4, Some(20), &s);
        let p = p.unwrap();
        assert!((per_item.unwrap() - 0.2).abs() < 1e-12);
        assert!((p.value - (0.8 + 16.0 * 0.2)).abs() < 1e-9);
        let (low, high) = (p.low.unwrap(), p.high.unwrap());
        // s² = 0.02/3; sd = sqrt(16 s² + 256 s² / 4)
        let sd = (16.0 * 0.02 / 3.0 + 256.0 * 0.02 / 3.0 / 4.0_f64).sqrt();
        assert!((high - p.value - Z_90 * sd).abs() < 1e-9, "{p:?}");
        assert!((p.value - low - Z_90 * sd).abs() < 1e-9, "{p:?}");
    }

    #[test]
    fn items_without_a_cost_count_as_zero() {
        // Two items of four recorded 0.2 each: the items to come cost 0.1 on average.
        let (per_item, p) = outlook(Some(0.4), 4, Some(8), &sums(&[0.2, 0.2], 4));
        assert!((per_item.unwrap() - 0.1).abs() < 1e-12);
        assert!((p.unwrap().value - 0.8).abs() < 1e-12);
    }

    #[test]
    fn without_per_item_costs_it_scales_the_spend_with_no_range() {
        let (per_item, p) = outlook(Some(2.0), 10, Some(40), &CostSums::default());
        assert_eq!(per_item, Some(0.2));
        assert_eq!(p, Some(ProjectedCost { value: 8.0, low: None, high: None }));
        assert_eq!(outlook(Some(2.0), 0, Some(40), &CostSums::default()), (None, None));
    }

    #[test]
    fn a_finished_node_projects_what_it_spent_and_one_item_gives_no_range() {
        let (_, p) = outlook(Some(0.6), 3, Some(3), &sums(&[0.1, 0.2, 0.3], 3));
        let p = p.unwrap();
        assert!((p.value - 0.6).abs() < 1e-12 && p.low == Some(0.6) && p.high == Some(0.6), "{p:?}");
        let (_, p) = outlook(Some(0.1), 1, Some(3), &sums(&[0.1], 1));
        assert_eq!(p.map(|p| (p.low, p.high)), Some((None, None)));
    }

    #[test]
    fn the_range_never_goes_below_the_spend() {
        let (_, p) = outlook(Some(1.0), 2, Some(1000), &sums(&[0.0, 1.0], 2));
        assert!(p.unwrap().low.unwrap() >= 1.0);
    }

    #[test]
    fn a_parent_adds_up_its_childrens_headings() {
        // A free fetch (done) and a summarize half way: the run heads for the summaries' cost.
        let summarize = from_items(Some(1.0), 100, Some(200), &sums(&[0.01; 100], 100)).unwrap();
        let mut kids = ChildHeadings::default();
        kids.add(None, None);
        kids.add(Some(1.0), Some(summarize));
        let run = kids.heading(Some(1.5), Some(0.5)).unwrap();
        assert!((run.value - 2.5).abs() < 1e-9, "the run's own 0.5, then 1.0 + 100 × 0.01: {run:?}");
        assert_eq!(run.var, summarize.var);
        // A child with a cost and no projection leaves its parent with none; one without a
        // range, with no range.
        let mut kids = ChildHeadings::default();
        kids.add(Some(1.0), None);
        assert_eq!(kids.heading(Some(1.0), None), None);
        let mut kids = ChildHeadings::default();
        kids.add(Some(1.0), from_items(Some(1.0), 10, Some(20), &CostSums::default()));
        assert_eq!(kids.heading(Some(1.0), None).unwrap().projected().low, None);
        assert_eq!(kids.heading(None, None), None, "no money at all");
    }
}
