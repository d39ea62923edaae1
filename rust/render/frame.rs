//! The terminal layout: a snapshot becomes a list of lines that fit the terminal.
//!
//! ```text
//! ⠹ demo · running 12s · 1,234/5,025 · 12 failed (99.0% ok) · 98.2 it/s · cost_usd $1.2346
//!   setup  [██████████████████████████████] 100%  25/25 · done in 1.3s
//!   map    [███████▍                      ]  24%  1,209/5,000 · 98 it/s · ETA 38s (30s–52s)
//!     w0 ▸ shard-01209.jsonl (41 done) │ …the summary of the shard reads↵The
//!     … 6 more lanes
//!   ✗ shard-00077.jsonl: TimeoutError: upstream took too long
//! ```
//! All text that came from users is sanitized before it is placed on a line.

use console::{style, truncate_str};

use super::format;
use crate::core::snapshot::{LaneSnapshot, NodeSnapshot, Snapshot};
use crate::core::text::sanitize;

const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const PARTIAL: [char; 8] = [' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
const MAX_NAME_COLUMN: usize = 20;
/// The most columns of a streamed tail a line shows (its end), and the fewest worth showing.
const MAX_TAIL_COLUMNS: usize = 120;
const MIN_TAIL_COLUMNS: usize = 8;

#[derive(Debug, Clone, Copy)]
pub struct FrameOptions {
    pub width: usize,
    pub height: usize,
    /// Most worker lanes shown before folding into "… N more lanes".
    pub max_lanes: usize,
    /// Advances the spinner.
    pub tick: usize,
}

/// The run's one-line summary (also used by the plain renderer).
pub fn run_line(s: &Snapshot) -> String {
    if let Some(only) = single_phase(s) {
        let r = &s.root;
        let mut parts =
            vec![format!("{} · {} {}", loop_name(s, only), r.state, format::duration(r.elapsed.unwrap_or(0.0)))];
        parts.extend(node_figures(only));
        parts.extend(run_extras(s, &only.unit));
        return parts.join(" · ");
    }
    let r = &s.root;
    let mut parts = vec![format!("{} · {} {}", sanitize(&s.name), r.state, format::duration(r.elapsed.unwrap_or(0.0)))];
    // Progress is processed items (done, failed or skipped) out of the total, on every
    // display and in the CLI; "done" alone would claim the failed and skipped ones succeeded.
    parts.push(match r.total {
        Some(t) => format!("{}/{}", format::count(r.processed), format::count(t)),
        None => format!("{} processed", format::count(r.processed)),
    });
    if r.failed > 0 {
        let ok = r.success_rate.unwrap_or(0.0) * 100.0;
        parts.push(format!("{} failed ({ok:.1}% ok)", format::count(r.failed)));
    }
    if r.retried > 0 {
        parts.push(format!("{} retried", format::count(r.retried)));
    }
    if r.skipped > 0 {
        parts.push(format!("{} skipped", format::count(r.skipped)));
    }
    if r.state == "running" {
        parts.push(format::rate(r.rate, &r.unit));
    }
    parts.extend(metric_parts(r));
    parts.extend(cost_part(r, &r.unit));
    parts.extend(resource_parts(s));
    if s.worker_events_dropped > 0 {
        parts.push(format!("{} worker events dropped", format::count(s.worker_events_dropped)));
    }
    parts.join(" · ")
}

/// The cost per item and, while the node runs with items left, the projected cost at
/// completion: `$0.0123/item → $6.10 ($5.80–6.40)` (`unit` names an item).
fn cost_part(n: &NodeSnapshot, unit: &str) -> Option<String> {
    let left = n.total.is_some_and(|t| t > n.processed);
    let projected = n.projected_cost.filter(|_| left && n.state == "running").map(|p| (p.value, p.low, p.high));
    let text = format::cost_outlook(n.cost_per_item, projected, &sanitize(unit));
    (!text.is_empty()).then_some(text)
}

/// Each metric of a node, formatted.
pub fn metric_parts(n: &NodeSnapshot) -> Vec<String> {
    n.metrics.iter().filter_map(|(k, v)| v.as_f64().map(|x| format::metric(&sanitize(k), x))).collect()
}

/// A phase's or step's figures after its bar: counts, rate, ETA or how it ended, failures.
pub fn node_stats(n: &NodeSnapshot) -> String {
    let mut parts = node_figures(n);
    match &*n.state {
        "running" => {}
        "pending" => parts.insert(1, "waiting".to_owned()),
        state => parts.insert(1, format!("{state} in {}", format::duration(n.elapsed.unwrap_or(0.0)))),
    }
    parts.join(" · ")
}

/// Counts, and while running the rate and ETA; then failures and items in flight.
fn node_figures(n: &NodeSnapshot) -> Vec<String> {
    let unit = sanitize(&n.unit);
    let mut parts = match &n.current_pass {
        // A loop entered again (an inner loop) shows its pass, as tqdm shows an inner bar per
        // outer item. Earlier passes are done, so the node's ETA is already the pass's.
        Some(p) => vec![format::amounts(p.processed, p.total, &unit, n.unit_divisor), format!("pass {}", p.number)],
        None => vec![format::amounts(n.processed, n.total, &unit, n.unit_divisor)],
    };
    if n.state == "running" {
        parts.push(format::scaled_rate(n.rate, &unit, n.unit_divisor));
        if let Some(s) = n.stalled_for {
            parts.push(format!("stalled {}", format::duration(s)));
        } else if n.eta_from_history {
            parts.push(format!("{} from earlier runs", format::eta(n.eta, n.eta_low, n.eta_high)));
        } else if n.total.is_some() {
            parts.push(format::eta(n.eta, n.eta_low, n.eta_high));
        }
    }
    if n.failed > 0 {
        parts.push(format!("{} failed", format::count(n.failed)));
    }
    if n.in_flight > 0 && n.state == "running" {
        parts.push(format!("{} in flight", n.in_flight));
    }
    parts
}

/// The first line: the run's summary, or its one bar when it is a single loop (a run with no
/// phases but a total, or with exactly one phase and no steps, as a bare `track()` makes).
fn head_line(s: &Snapshot, glyph: &str, bar_width: usize, width: usize) -> String {
    // On a narrow terminal the name gives way, so that the bar and the percentage stay.
    let name_room = width.saturating_sub(bar_width + 30).max(12);
    if let Some(only) = single_phase(s) {
        let name = fit(&loop_name(s, only), name_room);
        return format!("{glyph} {name} {} {}", bar_cell(only, bar_width), run_stats(s, only));
    }
    if s.root.children.is_empty() && s.root.total.is_some() {
        let name = fit(&sanitize(&s.name), name_room);
        return format!("{glyph} {name} {} {}", bar_cell(&s.root, bar_width), run_stats(s, &s.root));
    }
    format!("{glyph} {}", run_line(s))
}

/// "name" for a bare loop (run and phase share it), else "run › phase".
fn loop_name(s: &Snapshot, only: &NodeSnapshot) -> String {
    if only.name == s.name || only.path == s.name {
        // A loop's own run, named as the loop was made (tqdm's set_description renames it).
        sanitize(&only.name)
    } else {
        format!("{} › {}", sanitize(&s.name), sanitize(&only.name))
    }
}

fn single_phase(s: &Snapshot) -> Option<&NodeSnapshot> {
    match s.root.children.as_slice() {
        [only] if only.children.is_empty() => Some(only),
        _ => None,
    }
}

/// Keeps the frame within `room` rows: the oldest finished nodes are counted instead of drawn,
/// so running ones never scroll away.
fn fold_finished(nodes: Vec<(usize, &NodeSnapshot)>, room: usize) -> (Vec<(usize, &NodeSnapshot)>, usize) {
    if nodes.len() <= room {
        return (nodes, 0);
    }
    let mut to_fold = nodes.len() - room.saturating_sub(1).max(1);
    let mut kept = Vec::with_capacity(room);
    let mut folded = 0;
    for (d, n) in nodes {
        if to_fold > 0 && !matches!(&*n.state, "running" | "pending") {
            to_fold -= 1;
            folded += 1;
        } else {
            kept.push((d, n));
        }
    }
    (kept, folded)
}

/// `[████▍    ]  45%`, or an empty frame when the total is unknown. A node that completed
/// processed everything it had, known total or not: its bar is full.
fn bar_cell(n: &NodeSnapshot, width: usize) -> String {
    #[allow(clippy::cast_precision_loss)] // counts are below 2**53
    let fraction = match (n.current_pass, n.fraction) {
        // A loop entered again fills its bar once a pass (an inner bar per outer item).
        (Some(p), _) => p.total.map(|t| if t == 0 { 1.0 } else { (p.processed as f64 / t as f64).min(1.0) }),
        (None, None) if n.state == "completed" => Some(1.0),
        (None, f) => f,
    };
    match fraction {
        Some(f) => {
            let b = bar(f, width);
            let b = if n.state == "completed" { style(b).for_stderr().green() } else { style(b).for_stderr().cyan() };
            format!("[{b}] {}", format::percent(f))
        }
        None => format!("[{}]     ", " ".repeat(width)),
    }
}

/// The figures after a one-line run's bar: the node's stats plus the run-level extras.
fn run_stats(s: &Snapshot, n: &NodeSnapshot) -> String {
    let mut parts = vec![node_stats(n)];
    parts.extend(run_extras(s, &n.unit));
    parts.join(" · ")
}

/// Retries, skips, metrics and the cost outlook of the whole run (`unit`: what its bar counts).
fn run_extras(s: &Snapshot, unit: &str) -> Vec<String> {
    let mut parts = Vec::new();
    if s.root.retried > 0 {
        parts.push(format!("{} retried", format::count(s.root.retried)));
    }
    if s.root.skipped > 0 {
        parts.push(format!("{} skipped", format::count(s.root.skipped)));
    }
    parts.extend(metric_parts(&s.root));
    parts.extend(cost_part(&s.root, unit));
    parts.extend(resource_parts(s));
    parts
}

/// `CPU 340% · RSS 2.1 GB`, and `disk 3.1% free` for each filesystem the run writes to that is
/// low on space: the run's process tree as of the latest resource sample. What is unknown (no
/// sample, the first one's CPU) is left out rather than shown as zero.
pub fn resource_parts(s: &Snapshot) -> Vec<String> {
    let Some(r) = &s.resources else { return Vec::new() };
    let mut parts = Vec::new();
    let figures: Vec<String> = [
        r.cpu_percent.map(|c| format!("CPU {}", format::cpu(c))),
        r.rss_bytes.map(|b| format!("RSS {}", format::bytes(b))),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !figures.is_empty() {
        parts.push(figures.join(" · "));
    }
    for d in r.disks.iter().filter(|d| d.low) {
        let free = d.free_fraction.unwrap_or(0.0) * 100.0;
        parts.push(format!("disk {free:.1}% free")); // no colour: plain lines share the run line
    }
    parts
}

/// A text bar `width` cells wide for `fraction` in 0..=1, with eighth-cell resolution.
pub fn bar(fraction: f64, width: usize) -> String {
    let eighths = (fraction.clamp(0.0, 1.0) * (width * 8) as f64).round() as usize;
    let full = eighths / 8;
    let mut out = "█".repeat(full);
    if full < width {
        out.push(PARTIAL[eighths % 8]);
        out.push_str(&" ".repeat(width - full - 1));
    }
    out
}

fn fit(line: &str, width: usize) -> String {
    truncate_str(line, width, "…").into_owned()
}

/// The whole frame, at most `height - 1` lines, each at most `width` columns.
pub fn frame(s: &Snapshot, o: &FrameOptions) -> Vec<String> {
    let width = o.width.max(20);
    let glyph = match &*s.root.state {
        "running" => style(SPINNER[o.tick % SPINNER.len()]).for_stderr().cyan(),
        "completed" => style('✓').for_stderr().green(),
        _ => style('✗').for_stderr().red(),
    };
    let bar_width = (width / 4).clamp(10, 30);
    let mut lines = vec![fit(&head_line(s, &glyph.to_string(), bar_width, width), width)];
    // Items without a lane stream into their node: the run's (and a one-line run's phase's)
    // under the head line, a phase's or step's under its own.
    lines.extend(node_tail_line(&s.root, 1, width));
    lines.extend(single_phase(s).and_then(|only| node_tail_line(only, 1, width)));
    // A loop made with leave=False (an inner tqdm bar) is not drawn once it ended, as tqdm
    // clears it.
    let all: Vec<_> = if single_phase(s).is_some() {
        Vec::new()
    } else {
        s.walk().into_iter().skip(1).filter(|(_, n)| n.leave || matches!(&*n.state, "running" | "pending")).collect()
    };
    let active_lanes = s.lanes.iter().filter(|l| l.state != "finished").count();
    // Rows for phases: what is left after the head, two lane rows and the failure row.
    let room = o.height.saturating_sub(1).saturating_sub(2 + active_lanes.min(2) + 1).max(1);
    let (nodes, folded) = fold_finished(all, room);
    let name_col = nodes
        .iter()
        .map(|(d, n)| 2 * (d - 1) + console::measure_text_width(&sanitize(&n.name)))
        .max()
        .unwrap_or(0)
        .min(MAX_NAME_COLUMN);
    if folded > 0 {
        lines.push(fit(
            &format!("  {} {folded} earlier phases and steps finished", style('✓').for_stderr().green()),
            width,
        ));
    }
    for (depth, n) in nodes {
        let label = fit(&format!("{}{}", "  ".repeat(depth - 1), sanitize(&n.name)), name_col);
        let pad = " ".repeat(name_col.saturating_sub(console::measure_text_width(&label)));
        lines.push(fit(&format!("  {label}{pad} {} {}", bar_cell(n, bar_width), node_stats(n)), width));
        lines.extend(node_tail_line(n, depth + 1, width));
    }
    let budget = o.height.saturating_sub(1).saturating_sub(lines.len() + 2);
    lines.extend(lane_lines(s, o.max_lanes.min(budget), width));
    if let Some(line) = failure_line(s) {
        lines.push(fit(&line, width));
    }
    lines.truncate(o.height.saturating_sub(1).max(1));
    lines
}

/// `  ✗ name: error` for the newest failure.
pub fn failure_line(s: &Snapshot) -> Option<String> {
    let f = s.failures.first()?;
    let err = f.error.as_deref().unwrap_or("");
    Some(format!("  {} {}: {}", style('✗').for_stderr().red(), sanitize(&f.name), sanitize(err)))
}

/// Lanes still at work, up to `max` of them, then "… N more lanes". Dead and stalled workers
/// come first, so that folding never hides them; the rest keep their order.
pub fn lane_lines(s: &Snapshot, max: usize, width: usize) -> Vec<String> {
    let mut active: Vec<_> = s.lanes.iter().filter(|l| l.state != "finished").collect();
    if active.is_empty() {
        return Vec::new();
    }
    active.sort_by_key(|l| match &*l.state {
        "died" => 0,
        "stalled" => 1,
        _ => 2,
    });
    let shown = if active.len() > max { max.saturating_sub(1) } else { active.len() };
    let mut out: Vec<String> =
        active[..shown].iter().map(|l| fit(&with_tail(lane_line(l), l.tail.as_deref(), width), width)).collect();
    if shown < active.len() {
        out.push(fit(&format!("    … {} more lanes", active.len() - shown), width));
    }
    out
}

/// `    ▸ doc-7.json │ …the end of its output` for the item without a lane that streams into
/// node `n`, indented `depth` levels.
fn node_tail_line(n: &NodeSnapshot, depth: usize, width: usize) -> Option<String> {
    let (item, tail) = (n.tail_item.as_deref()?, n.tail.as_deref()?);
    let line = format!("{}  {} {}", "  ".repeat(depth), style('▸').for_stderr().cyan(), sanitize(item));
    Some(fit(&with_tail(line, Some(tail), width), width))
}

/// `line │ …end of the tail`: as much of the end of a streamed tail as fits in `width`.
fn with_tail(line: String, tail: Option<&str>, width: usize) -> String {
    let Some(tail) = tail else { return line };
    let room = width.saturating_sub(console::measure_text_width(&line) + 3).min(MAX_TAIL_COLUMNS);
    if room < MIN_TAIL_COLUMNS {
        return line;
    }
    // Sanitized again: a snapshot read back from JSON may carry anything.
    format!("{line} {} {}", style('│').for_stderr().dim(), fit_end(&sanitize(tail), room))
}

/// The end of `text` in at most `width` columns, `…` first when it is cut (the newest of a
/// stream is what matters).
fn fit_end(text: &str, width: usize) -> String {
    if console::measure_text_width(text) <= width {
        return text.to_owned();
    }
    let mut kept = Vec::new();
    let mut used = 1; // the ellipsis
    let mut buf = [0u8; 4];
    for c in text.chars().rev() {
        let w = console::measure_text_width(c.encode_utf8(&mut buf));
        if used + w > width {
            break;
        }
        used += w;
        kept.push(c);
    }
    std::iter::once('…').chain(kept.into_iter().rev()).collect()
}

/// `w3 ▸ doc-7.json (12 done)`, `w3 idle (12 done)`, `pid 42 stalled 1m05s ▸ doc-7.json (…)`,
/// `pid 42 died (12 done, 1 failed)`, and a worker process's CPU and memory last:
/// `pid 4242 ▸ doc-17 (12 done) · 98% · 310 MB`. The state comes before the item, whose name
/// may be clipped.
fn lane_line(l: &LaneSnapshot) -> String {
    let item = l.item.as_deref().map(|i| format!(" {} {}", style('▸').for_stderr().cyan(), sanitize(i)));
    let what = match &*l.state {
        "died" => style("died").for_stderr().red().to_string(),
        "stalled" => {
            let quiet = style(format!("stalled {}", format::duration(l.heartbeat_age))).for_stderr().yellow();
            format!("{quiet}{}", item.unwrap_or_default())
        }
        _ => item.map_or_else(|| style("idle").for_stderr().dim().to_string(), |i| i.trim_start().to_owned()),
    };
    let counts = match l.failed {
        0 => format!("{} done", format::count(l.done)),
        f => format!("{} done, {} failed", format::count(l.done), format::count(f)),
    };
    let figures: Vec<String> =
        [l.cpu_percent.map(format::cpu), l.rss_bytes.map(format::bytes)].into_iter().flatten().collect();
    let figures = if figures.is_empty() { String::new() } else { format!(" · {}", figures.join(" · ")) };
    format!("    {} {what} ({counts}){figures}", sanitize(&l.name))
}

#[cfg(test)]
#[path = "frame_tests.rs"]
mod tests;
