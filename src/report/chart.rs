//! Memory timelines as charts: a fixed-width terminal chart of unicode block characters (one
//! column per time bucket, its height the bucket's maximum, in eighths of a row), and an SVG
//! line chart written as plain text (axes, ticks, one polyline per series, a legend).
//! Values are bytes, shown in GiB; times are milliseconds, shown in seconds.

const GIB: f64 = (1u64 << 30) as f64;
const EIGHTHS: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// A series to draw: (milliseconds since start, bytes) points in time order.
pub struct Line<'a> {
    pub label: &'a str,
    /// An SVG colour (`#1f77b4`).
    pub color: &'a str,
    pub points: &'a [(f64, u64)],
}

/// The largest value, or 1 GiB when every value is zero (an empty chart still has a scale).
fn scale_top(values: impl Iterator<Item = u64>) -> f64 {
    let max = values.max().unwrap_or(0);
    if max == 0 {
        GIB
    } else {
        max as f64
    }
}

/// Each of `width` time buckets' maximum; a bucket without a sample repeats the one before.
fn buckets(points: &[(f64, u64)], duration_ms: f64, width: usize) -> Vec<u64> {
    let mut cols: Vec<Option<u64>> = vec![None; width];
    for &(t, v) in points {
        let i = if duration_ms > 0.0 { ((t / duration_ms) * width as f64) as usize } else { 0 };
        let slot = &mut cols[i.min(width - 1)];
        *slot = Some(slot.map_or(v, |old| old.max(v)));
    }
    let mut last = 0;
    cols.into_iter()
        .map(|c| {
            last = c.unwrap_or(last);
            last
        })
        .collect()
}

/// The block character for `value` in row `level` (0 = bottom) of a `height`-row chart.
fn cell(value: u64, top: f64, level: usize, height: usize) -> char {
    let fill = (value as f64 / top * height as f64 - level as f64).clamp(0.0, 1.0);
    let mut eighths = (fill * 8.0).round() as usize;
    if eighths == 0 && level == 0 && value > 0 {
        eighths = 1; // a non-zero value never disappears
    }
    EIGHTHS[eighths]
}

/// A `height`-row, `width`-column chart of `points` over `duration_ms`, with a GiB axis on the
/// left (top, middle, zero) and the time span below.
pub fn terminal(points: &[(f64, u64)], duration_ms: f64, width: usize, height: usize) -> String {
    let width = width.max(1);
    let height = height.max(2);
    let cols = buckets(points, duration_ms, width);
    let top = scale_top(points.iter().map(|p| p.1));
    let mut out = String::new();
    for row in 0..height {
        let level = height - 1 - row;
        let label = match row {
            0 => format!("{:.1} GiB ┤", top / GIB),
            r if r == height / 2 => format!("{:.1} GiB ┤", top * (height - r) as f64 / height as f64 / GIB),
            _ => "│".to_string(),
        };
        let bar: String = cols.iter().map(|&v| cell(v, top, level, height)).collect();
        out.push_str(&format!("{label:>12}{bar}\n"));
    }
    out.push_str(&format!("{:>12}{}\n", "0 GiB └", "─".repeat(width)));
    let end = format!("{:.1} s", duration_ms / 1e3);
    let pad = (width + 1).saturating_sub(3 + end.len());
    out.push_str(&format!("{:>11}0 s{}{end}\n", "", " ".repeat(pad)));
    out
}

/// Escapes text for SVG.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

const W: f64 = 800.0;
const H: f64 = 320.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;

/// An SVG line chart of `lines` over `duration_ms`, titled `title`.
pub fn svg(title: &str, lines: &[Line], duration_ms: f64) -> String {
    let top = scale_top(lines.iter().flat_map(|l| l.points.iter().map(|p| p.1)));
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let x = |t: f64| LEFT + if duration_ms > 0.0 { t / duration_ms * pw } else { 0.0 };
    let y = |b: f64| TOP + ph - b / top * ph;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"{W}\" height=\"{H}\" fill=\"white\"/>\n\
         <text x=\"{LEFT}\" y=\"22\" font-size=\"14\">{}</text>\n",
        escape(title)
    );
    out.push_str(&axes(&x, &y, top, duration_ms));
    for (i, line) in lines.iter().enumerate() {
        let pts: Vec<String> = line.points.iter().map(|&(t, b)| format!("{:.1},{:.1}", x(t), y(b as f64))).collect();
        out.push_str(&format!(
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" points=\"{}\"/>\n",
            escape(line.color),
            pts.join(" ")
        ));
        let ly = TOP + 14.0 * i as f64;
        out.push_str(&format!(
            "<line x1=\"{lx}\" y1=\"{ly}\" x2=\"{lx2}\" y2=\"{ly}\" stroke=\"{c}\" stroke-width=\"2\"/>\
             <text x=\"{tx}\" y=\"{ty}\">{label}</text>\n",
            lx = W - RIGHT - 200.0,
            lx2 = W - RIGHT - 185.0,
            c = escape(line.color),
            tx = W - RIGHT - 180.0,
            ty = ly + 4.0,
            label = escape(line.label)
        ));
    }
    out.push_str("</svg>\n");
    out
}

/// The two axes with four ticks each, labelled in GiB and seconds.
fn axes(x: &dyn Fn(f64) -> f64, y: &dyn Fn(f64) -> f64, top: f64, duration_ms: f64) -> String {
    let (x0, y0) = (x(0.0), y(0.0));
    let mut out = format!(
        "<line x1=\"{x0}\" y1=\"{TOP}\" x2=\"{x0}\" y2=\"{y0}\" stroke=\"black\"/>\n\
         <line x1=\"{x0}\" y1=\"{y0}\" x2=\"{x1}\" y2=\"{y0}\" stroke=\"black\"/>\n",
        x1 = W - RIGHT
    );
    for k in 0..=4 {
        let f = k as f64 / 4.0;
        let (ty, tx) = (y(top * f), LEFT + f * (W - LEFT - RIGHT));
        out.push_str(&format!(
            "<line x1=\"{a}\" y1=\"{ty:.1}\" x2=\"{x0}\" y2=\"{ty:.1}\" stroke=\"black\"/>\
             <text x=\"{b}\" y=\"{c:.1}\" text-anchor=\"end\">{v:.1} GiB</text>\n",
            a = x0 - 5.0,
            b = x0 - 8.0,
            c = ty + 4.0,
            v = top * f / GIB
        ));
        out.push_str(&format!(
            "<line x1=\"{tx:.1}\" y1=\"{y0}\" x2=\"{tx:.1}\" y2=\"{a}\" stroke=\"black\"/>\
             <text x=\"{tx:.1}\" y=\"{b}\" text-anchor=\"middle\">{s:.1} s</text>\n",
            a = y0 + 5.0,
            b = y0 + 18.0,
            s = duration_ms * f / 1e3
        ));
    }
    out.push_str(&format!(
        "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">time since start</text>\n",
        LEFT + (W - LEFT - RIGHT) / 2.0,
        H - 10.0
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: u64 = 1 << 30;

    #[test]
    fn terminal_chart_has_fixed_width_rows_a_gib_axis_and_the_time_span() {
        let points: Vec<(f64, u64)> = (0..=10).map(|i| (i as f64 * 100.0, i * G / 2)).collect();
        let chart = terminal(&points, 1000.0, 20, 4);
        let lines: Vec<&str> = chart.lines().collect();
        assert_eq!(lines.len(), 6, "{chart}");
        let widths: Vec<usize> = lines[..5].iter().map(|l| l.chars().count()).collect();
        assert!(widths.iter().all(|&w| w == 32), "{widths:?}\n{chart}");
        assert!(lines[0].starts_with("   5.0 GiB ┤"), "{chart}");
        assert!(lines[2].starts_with("   2.5 GiB ┤"), "{chart}");
        assert!(lines[4].starts_with("     0 GiB └"), "{chart}");
        assert!(lines[5].trim_start().starts_with("0 s") && lines[5].ends_with("1.0 s"), "{chart}");
        // The ramp: the last column is full in every row, the first is empty above the bottom.
        assert!(lines[..4].iter().all(|l| l.ends_with('█')), "{chart}");
        assert_eq!(lines[0].chars().nth(12), Some(' '));
    }

    #[test]
    fn buckets_take_the_maximum_and_carry_values_across_gaps() {
        let points = [(0.0, 1), (10.0, 5), (60.0, 2)];
        assert_eq!(buckets(&points, 100.0, 4), vec![5, 5, 2, 2]);
        assert_eq!(buckets(&[(0.0, 3)], 0.0, 3), vec![3, 3, 3]);
    }

    #[test]
    fn cells_fill_in_eighths_and_small_values_stay_visible() {
        assert_eq!(cell(8, 8.0, 0, 1), '█');
        assert_eq!(cell(4, 8.0, 0, 1), '▄');
        assert_eq!(cell(1, 1000.0, 0, 1), '▁');
        assert_eq!(cell(0, 8.0, 0, 1), ' ');
        assert_eq!(cell(4, 8.0, 1, 2), ' ');
    }

    #[test]
    fn an_all_zero_chart_still_draws_with_a_1_gib_scale() {
        let chart = terminal(&[(0.0, 0), (50.0, 0)], 50.0, 10, 2);
        assert!(chart.starts_with("   1.0 GiB ┤          \n"), "{chart}");
    }

    #[test]
    fn svg_has_axes_labels_one_polyline_per_series_and_escaped_text() {
        let a = [(0.0, 0), (500.0, 2 * G), (1000.0, G)];
        let b = [(0.0, G), (1000.0, 4 * G)];
        let lines = [
            Line { label: "process tree", color: "#1f77b4", points: &a },
            Line { label: "GPU 0 <used>", color: "#d62728", points: &b },
        ];
        let s = svg("watch: python & friends", &lines, 1000.0);
        assert!(s.starts_with("<svg ") && s.trim_end().ends_with("</svg>"));
        assert_eq!(s.matches("<polyline").count(), 2);
        assert!(s.contains("python &amp; friends") && s.contains("GPU 0 &lt;used&gt;"));
        assert!(s.contains("4.0 GiB") && s.contains("1.0 s") && s.contains("0.0 s"));
        // The 4 GiB point sits at the top right corner of the plot.
        assert!(s.contains("780.0,40.0"), "{s}");
        assert_eq!(s.matches('<').count(), s.matches('>').count());
    }
}
