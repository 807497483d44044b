//! The report writers' shared piece: a self-contained SVG chart of request
//! latency over time (log scale), failures marked, each step of a run a
//! shaded band. No script, no network: a page that holds it opens anywhere.
//! The demo's page and rehearse's both draw their timelines with it.

use std::fmt::Write as _;

use super::duration;
use super::probe::Sample;

const WIDTH: f64 = 1000.0;
const HEIGHT: f64 = 340.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 20.0;
/// Room above the plot for the steps' numbers, where no mark can hide them.
const TOP: f64 = 40.0;
const BOTTOM: f64 = 40.0;

/// Text made safe for HTML.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One step of a run, as a shaded band.
#[derive(Debug, Clone)]
pub struct Band<'a> {
    pub name: &'a str,
    pub start_ms: f64,
    pub end_ms: f64,
    pub color: &'static str,
}

/// One kind of request, as dots.
#[derive(Debug, Clone, Copy)]
pub struct Series<'a> {
    pub samples: &'a [Sample],
    pub class: &'static str,
    pub color: &'static str,
}

/// What the chart spans and says under it.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    pub end_ms: f64,
    /// The top of the latency axis (the requests' timeout).
    pub top_ms: f64,
    pub caption: &'a str,
}

/// Appends the chart to `page`.
pub fn chart(page: &mut String, bands: &[Band<'_>], series: &[Series<'_>], frame: Frame<'_>) {
    let end = frame.end_ms.max(1.0);
    let top_ms = frame.top_ms.max(10.0);
    let x = |ms: f64| LEFT + (ms / end).clamp(0.0, 1.0) * (WIDTH - LEFT - RIGHT);
    let y = |ms: f64| {
        let fraction = ms.clamp(1.0, top_ms).log10() / top_ms.log10();
        HEIGHT - BOTTOM - fraction * (HEIGHT - TOP - BOTTOM)
    };
    let _ = writeln!(
        page,
        "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"request latency over time\">"
    );
    for (i, band) in bands.iter().enumerate() {
        let (x0, x1) = (x(band.start_ms), x(band.end_ms));
        let _ = writeln!(
            page,
            "<rect class=\"band\" data-step=\"{}\" x=\"{x0:.1}\" y=\"{TOP}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\" fill-opacity=\"0.18\"><title>{} ({})</title></rect>",
            escape(band.name),
            (x1 - x0).max(2.0),
            HEIGHT - TOP - BOTTOM,
            band.color,
            escape(band.name),
            duration(band.end_ms - band.start_ms)
        );
        let _ = writeln!(
            page,
            "<text x=\"{x0:.1}\" y=\"{:.1}\" fill=\"{}\">{}</text>",
            TOP - 4.0 - (i % 2) as f64 * 12.0,
            band.color,
            i + 1
        );
    }
    axes(page, (end, top_ms), &x, &y);
    for s in series {
        dots(page, s, &x, &y);
    }
    let _ = writeln!(
        page,
        "<text x=\"{LEFT}\" y=\"{:.1}\">{}</text>",
        HEIGHT - 6.0,
        escape(frame.caption)
    );
    page.push_str("</svg>\n");
}

/// Latency decades up the side, seconds along the bottom.
fn axes(
    page: &mut String,
    (end, top_ms): (f64, f64),
    x: &dyn Fn(f64) -> f64,
    y: &dyn Fn(f64) -> f64,
) {
    let mut decade = 1.0;
    while decade <= top_ms {
        let _ = writeln!(
            page,
            "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#eee\"/><text x=\"4\" y=\"{:.1}\">{}</text>",
            WIDTH - RIGHT,
            y(decade) + 4.0,
            duration(decade),
            y = y(decade)
        );
        decade *= 10.0;
    }
    let step_s = ((end / 1000.0 / 10.0).ceil()).max(1.0);
    let mut t = 0.0;
    while t * 1000.0 <= end {
        let _ = writeln!(
            page,
            "<text x=\"{:.1}\" y=\"{:.1}\">{t:.0} s</text>",
            x(t * 1000.0) - 6.0,
            HEIGHT - BOTTOM + 16.0
        );
        t += step_s;
    }
}

/// A dot per answered request, a cross per failure.
fn dots(page: &mut String, series: &Series<'_>, x: &dyn Fn(f64) -> f64, y: &dyn Fn(f64) -> f64) {
    for s in series.samples {
        let (cx, cy) = (x(s.sent_ms), y(s.latency_ms));
        if s.ok {
            let _ = write!(
                page,
                "<circle class=\"{}\" cx=\"{cx:.1}\" cy=\"{cy:.1}\" r=\"1.8\" fill=\"{}\"/>",
                series.class, series.color
            );
        } else {
            let _ = write!(
                page,
                "<path class=\"failure\" d=\"M{:.1} {:.1}l5 5m0 -5l-5 5\" stroke=\"#d50000\" stroke-width=\"1.5\"/>",
                cx - 2.5,
                cy - 2.5
            );
        }
    }
    page.push('\n');
}
