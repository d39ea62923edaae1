//! Human formatting of counts, durations, rates and ETAs, shared by every text renderer
//! (the Python renderers call these through the binding).

/// `1234567` → `"1,234,567"`.
pub fn count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Compact SI form: `1234` → `"1.2k"`, `2_500_000` → `"2.5M"`.
pub fn si(v: f64) -> String {
    let a = v.abs();
    let (scaled, suffix) = if a >= 1e12 {
        (v / 1e12, "T")
    } else if a >= 1e9 {
        (v / 1e9, "G")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e3 {
        (v / 1e3, "k")
    } else {
        return if v.fract() == 0.0 {
            format!("{v:.0}")
        } else if a < 0.1 {
            small(v)
        } else {
            format!("{v:.2}")
        };
    };
    format!("{scaled:.1}{suffix}")
}

/// Below 0.1, three significant figures, trailing zeros dropped: a learning rate of 0.001
/// reads `"0.001"`, not `"0.00"`.
fn small(v: f64) -> String {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // 2..=12 decimals
    let decimals = (2.0 - v.abs().log10().floor()).clamp(2.0, 12.0) as usize;
    let text = format!("{v:.decimals$}");
    let text = text.trim_end_matches('0');
    text.strip_suffix('.').unwrap_or(text).to_owned()
}

/// Seconds as `"45s"`, `"3m05s"`, `"2h07m"`, `"3d04h"`; below ten seconds with one decimal.
pub fn duration(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "?".to_owned();
    }
    if secs < 10.0 {
        return format!("{secs:.1}s");
    }
    let s = secs.round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// tqdm's `unit_scale`: three significant figures and an SI prefix in steps of `divisor`
/// (1000 or 1024): `12_345_678` → `"12.3M"`, `999` → `"999"`, `5` → `"5.00"`.
pub fn sized(v: f64, divisor: u32) -> String {
    let mut v = v;
    for prefix in ["", "k", "M", "G", "T", "P", "E"] {
        if v.abs() < 999.5 {
            return if v.abs() < 9.995 {
                format!("{v:.2}{prefix}")
            } else if v.abs() < 99.95 {
                format!("{v:.1}{prefix}")
            } else {
                format!("{v:.0}{prefix}")
            };
        }
        v /= f64::from(divisor);
    }
    format!("{v:.1}Z")
}

/// A node's processed count and total: `"1,234/5,000"`, or with a divisor (tqdm's
/// `unit_scale`) `"12.3M/45.0M"`; an unknown total names the unit: `"1,234 file"`, `"12.3MB"`
/// (tqdm's own layout).
pub fn amounts(processed: u64, total: Option<u64>, unit: &str, divisor: Option<u32>) -> String {
    #[allow(clippy::cast_precision_loss)] // counts are below 2**53
    match (divisor, total) {
        (Some(d), Some(t)) => format!("{}/{}", sized(processed as f64, d), sized(t as f64, d)),
        (Some(d), None) => format!("{}{unit}", sized(processed as f64, d)),
        (None, Some(t)) => format!("{}/{}", count(processed), count(t)),
        (None, None) => format!("{} {unit}", count(processed)),
    }
}

/// A rate as [`rate`] shows it, or with a divisor (tqdm's `unit_scale`) `"12.3MB/s"`.
pub fn scaled_rate(per_sec: Option<f64>, unit: &str, divisor: Option<u32>) -> String {
    match (divisor, per_sec) {
        (Some(d), Some(r)) if r >= 1.0 => format!("{}{unit}/s", sized(r, d)),
        _ => rate(per_sec, unit),
    }
}

/// Items per second, flipped to seconds per item when slower than one a second.
pub fn rate(per_sec: Option<f64>, unit: &str) -> String {
    match per_sec {
        Some(r) if r >= 1.0 => format!("{} {unit}/s", si_rate(r)),
        Some(r) if r > 0.0 => format!("{} s/{unit}", si_rate(1.0 / r)),
        _ => format!("? {unit}/s"),
    }
}

fn si_rate(v: f64) -> String {
    if v >= 1000.0 {
        si(v)
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// `"ETA 38s (30s–52s)"`, `"ETA 38s"` when the range is unknown, `"ETA ?"` when unknown.
pub fn eta(eta: Option<f64>, low: Option<f64>, high: Option<f64>) -> String {
    match (eta, low, high) {
        (Some(e), Some(l), Some(h)) if h > l && duration(l) != duration(h) => {
            format!("ETA {} ({}–{})", duration(e), duration(l), duration(h))
        }
        (Some(e), Some(l), None) => format!("ETA {} ({}–?)", duration(e), duration(l)),
        (Some(e), _, _) => format!("ETA {}", duration(e)),
        _ => "ETA ?".to_owned(),
    }
}

/// A metric for display: money (see `metrics::is_money`) in dollars.
pub fn metric(name: &str, value: f64) -> String {
    if crate::core::metrics::is_money(name) {
        if value.abs() < 10.0 {
            format!("{name} ${value:.4}")
        } else {
            format!("{name} ${value:.2}")
        }
    } else {
        format!("{name} {}", si(value))
    }
}

/// Money for the cost outlook: cents from a dollar up, four decimals from a cent up, three
/// significant digits below (an item may cost a hundredth of a cent).
pub fn money(v: f64) -> String {
    let a = v.abs();
    if !v.is_finite() {
        "$?".to_owned()
    } else if a >= 1.0 {
        format!("${v:.2}")
    } else if a >= 0.01 || a == 0.0 {
        format!("${v:.4}")
    } else {
        let decimals = (2 - a.log10().floor() as i32).clamp(3, 10) as usize;
        format!("${v:.decimals$}")
    }
}

/// `$0.0123/item → $6.10 ($5.80–6.40)`: the cost per item, then (`projected`: value, low,
/// high) the projected cost at completion with its range when there is one. `unit` names an
/// item (`it` reads `item`).
pub fn cost_outlook(per_item: Option<f64>, projected: Option<(f64, Option<f64>, Option<f64>)>, unit: &str) -> String {
    let unit = if unit == "it" { "item" } else { unit };
    let mut parts: Vec<String> = per_item.map(|c| format!("{}/{unit}", money(c))).into_iter().collect();
    if let Some((value, low, high)) = projected {
        let range = match (low.map(money), high.map(money)) {
            (Some(low), Some(high)) if low != high => format!(" ({low}–{})", high.trim_start_matches('$')),
            _ => String::new(),
        };
        parts.push(format!("→ {}{range}", money(value)));
    }
    parts.join(" ")
}

/// Bytes in decimal units, as file managers and `df -H` show them: `"310 MB"`, `"2.1 GB"`
/// (one decimal below ten).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 || v >= 9.95 {
        format!("{v:.0} {}", UNITS[unit])
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// CPU use in percent of one core, whole: `"340%"`.
pub fn cpu(percent: f64) -> String {
    format!("{:.0}%", percent.max(0.0))
}

/// Percentage of a fraction in 0..=1.
pub fn percent(fraction: f64) -> String {
    format!("{:>3.0}%", (fraction * 100.0).floor())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_values_keep_three_figures() {
        assert_eq!(si(0.001), "0.001");
        assert_eq!(si(0.000_123_4), "0.000123");
        assert_eq!(si(0.0156), "0.0156");
        assert_eq!(si(-0.05), "-0.05");
        assert_eq!(si(0.25), "0.25");
    }

    #[test]
    fn sized_as_tqdm_shows_them() {
        assert_eq!(sized(5.0, 1000), "5.00");
        assert_eq!(sized(999.0, 1000), "999");
        assert_eq!(sized(12_345_678.0, 1000), "12.3M");
        assert_eq!(sized(1_048_576.0, 1024), "1.00M");
        assert_eq!(amounts(12_345_678, Some(45_000_000), "B", Some(1000)), "12.3M/45.0M");
        assert_eq!(amounts(12_345_678, None, "B", Some(1000)), "12.3MB");
        assert_eq!(amounts(1234, None, "file", None), "1,234 file");
        assert_eq!(scaled_rate(Some(12_300_000.0), "B", Some(1000)), "12.3MB/s");
        assert_eq!(scaled_rate(Some(0.5), "B", Some(1000)), "2.0 s/B");
    }

    #[test]
    fn counts_and_si() {
        assert_eq!(count(0), "0");
        assert_eq!(count(1234), "1,234");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(si(999.0), "999");
        assert_eq!(si(1234.0), "1.2k");
        assert_eq!(si(2_500_000.0), "2.5M");
        assert_eq!(si(0.25), "0.25");
    }

    #[test]
    fn bytes_and_cpu() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(35_400_000), "35 MB");
        assert_eq!(bytes(310_000_000), "310 MB");
        assert_eq!(bytes(2_147_483_648), "2.1 GB");
        assert_eq!(bytes(9_960_000), "10 MB");
        assert_eq!(bytes(u64::MAX), "18447 PB");
        assert_eq!(cpu(340.4), "340%");
        assert_eq!(cpu(97.6), "98%");
    }

    #[test]
    fn durations() {
        assert_eq!(duration(3.25), "3.2s");
        assert_eq!(duration(45.0), "45s");
        assert_eq!(duration(185.0), "3m05s");
        assert_eq!(duration(7620.0), "2h07m");
        assert_eq!(duration(f64::NAN), "?");
    }

    #[test]
    fn rates_and_etas() {
        assert_eq!(rate(Some(98.24), "it"), "98.2 it/s");
        assert_eq!(rate(Some(0.5), "it"), "2.0 s/it");
        assert_eq!(rate(None, "file"), "? file/s");
        assert_eq!(eta(Some(38.0), Some(30.0), Some(52.0)), "ETA 38s (30s–52s)");
        assert_eq!(eta(Some(38.0), Some(38.0), Some(38.0)), "ETA 38s");
        assert_eq!(eta(None, None, None), "ETA ?");
        assert_eq!(metric("cost_usd", 1.23456), "cost_usd $1.2346");
        assert_eq!(metric("tokens_in", 120_000.0), "tokens_in 120.0k");
    }

    #[test]
    fn money_and_the_cost_outlook() {
        assert_eq!(money(6.104), "$6.10");
        assert_eq!(money(0.01234), "$0.0123");
        assert_eq!(money(0.000_123_4), "$0.000123");
        assert_eq!(money(0.0), "$0.0000");
        let range = Some((6.1, Some(5.8), Some(6.4)));
        assert_eq!(cost_outlook(Some(0.0123), range, "it"), "$0.0123/item → $6.10 ($5.80–6.40)");
        assert_eq!(cost_outlook(Some(0.0123), Some((6.1, None, None)), "doc"), "$0.0123/doc → $6.10");
        assert_eq!(cost_outlook(Some(0.0123), Some((6.1, Some(6.1), Some(6.1))), "it"), "$0.0123/item → $6.10");
        assert_eq!(cost_outlook(Some(0.5), None, "it"), "$0.5000/item");
        assert_eq!(cost_outlook(None, None, "it"), "");
    }
}
