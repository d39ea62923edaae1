//! The frame's lane and failure lines as plain text, for displays that lay out the rest
//! themselves (rich): the same words as the native frame, without its colours, so that no
//! display re-implements them.

use super::frame;
use crate::core::snapshot::Snapshot;

/// The lanes still at work, problems first, up to `max` of them, then "… N more lanes" (see
/// [`frame::lane_lines`]); not clipped to a width.
pub fn lane_lines(s: &Snapshot, max: usize) -> Vec<String> {
    frame::lane_lines(s, max, usize::MAX).iter().map(|l| plain(l)).collect()
}

/// `  ✗ name: error` for the newest failure, if any.
pub fn failure_line(s: &Snapshot) -> Option<String> {
    frame::failure_line(s).map(|l| plain(&l))
}

/// `(depth, name, state, stats)` for every phase and step, depth-first: the frame's node
/// rows, for a display that draws its own bars.
pub fn node_lines(s: &Snapshot) -> Vec<(usize, String, &'static str, String)> {
    let nodes = s.walk().into_iter().skip(1);
    nodes.map(|(d, n)| (d, crate::core::text::sanitize(&n.name), n.state.as_str(), frame::node_stats(n))).collect()
}

fn plain(line: &str) -> String {
    console::strip_ansi_codes(line).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::clock::Clock;
    use crate::core::node::NodeKind;
    use crate::core::run::{ItemEnd, ItemStatus, RunCore};

    #[test]
    fn lines_are_the_frames_without_colour() {
        console::set_colors_enabled_stderr(true);
        let r = RunCore::new("id", "job", Clock::manual(), 0.0);
        let p = r.add_node(0, NodeKind::Phase, "map", "file", Some(10)).unwrap();
        for i in 0..3 {
            r.item_started(&p, Some(&r.add_lane(&format!("w{i}"))), &format!("doc-{i}")).unwrap();
        }
        let end = ItemEnd { name: "doc\u{1b}[2J9", status: ItemStatus::Failed, duration: None, error: Some("Boom") };
        r.item_finished(&p, None, &end).unwrap();
        let s = r.snapshot(1.0);
        assert_eq!(lane_lines(&s, 2), ["    w0 ▸ doc-0 (0 done)", "    … 2 more lanes"]);
        assert_eq!(failure_line(&s).as_deref(), Some("  ✗ doc9: Boom"));
    }
}
