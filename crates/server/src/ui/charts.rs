//! Inline SVG charts: no script, no library. One bar per time slot; an optional second
//! series (errors) is drawn over the first in the alert colour. Every bar has a
//! `<title>` so hovering shows its value.

use std::fmt::Write;

use super::html::esc;

const W: f64 = 600.0;
const H: f64 = 120.0;

pub struct Series<'a> {
    /// `data-chart` attribute: what tests and scripts find the chart by.
    pub name: &'a str,
    pub label: &'a str,
    pub values: &'a [f64],
    pub overlay: Option<&'a [f64]>,
    /// Formats a value for titles and the axis.
    pub fmt: fn(f64) -> String,
    /// Slot labels (e.g. "12:04"), same length as `values`.
    pub slots: &'a [String],
}

pub fn bars(s: &Series<'_>) -> String {
    let n = s.values.len().max(1);
    let max = s
        .values
        .iter()
        .copied()
        .fold(0.0_f64, f64::max)
        .max(f64::MIN_POSITIVE);
    let slot = W / n as f64;
    let bar = (slot * 0.8).max(1.0);
    let mut out = format!(
        "<figure class=\"chart\"><figcaption>{label} <span class=\"max\">max {max}</span></figcaption>\
         <svg data-chart=\"{name}\" viewBox=\"0 0 {W} {H}\" preserveAspectRatio=\"none\" role=\"img\" aria-label=\"{label}\">\
         <line class=\"axis\" x1=\"0\" y1=\"{H}\" x2=\"{W}\" y2=\"{H}\"/>",
        label = esc(s.label),
        name = esc(s.name),
        max = esc(&(s.fmt)(if max == f64::MIN_POSITIVE { 0.0 } else { max })),
    );
    for (i, v) in s.values.iter().enumerate() {
        if *v <= 0.0 {
            continue;
        }
        let h = (v / max * (H - 4.0)).max(1.0);
        let x = i as f64 * slot + (slot - bar) / 2.0;
        let slot_label = s.slots.get(i).map(String::as_str).unwrap_or_default();
        let _ = write!(
            out,
            "<rect class=\"bar\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar:.1}\" height=\"{h:.1}\"><title>{t}: {v}</title></rect>",
            y = H - h,
            t = esc(slot_label),
            v = esc(&(s.fmt)(*v)),
        );
        if let Some(e) = s.overlay.and_then(|o| o.get(i)).filter(|e| **e > 0.0) {
            let eh = (e / max * (H - 4.0)).max(1.0);
            let _ = write!(
                out,
                "<rect class=\"bar alert\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar:.1}\" height=\"{eh:.1}\"><title>{t}: {e} errors</title></rect>",
                y = H - eh,
                t = esc(slot_label),
            );
        }
    }
    let first = s.slots.first().map(String::as_str).unwrap_or_default();
    let last = s.slots.last().map(String::as_str).unwrap_or_default();
    let _ = write!(
        out,
        "</svg><div class=\"span\"><span>{}</span><span>{}</span></div></figure>",
        esc(first),
        esc(last)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_nonzero_slots_get_bars() {
        let slots: Vec<String> = (0..4).map(|i| format!("s{i}")).collect();
        let svg = bars(&Series {
            name: "spend",
            label: "Spend <per minute>",
            values: &[0.0, 2.0, 0.0, 1.0],
            overlay: Some(&[0.0, 1.0, 0.0, 0.0]),
            fmt: |v| format!("{v}"),
            slots: &slots,
        });
        assert_eq!(svg.matches("class=\"bar\"").count(), 2);
        assert_eq!(svg.matches("class=\"bar alert\"").count(), 1);
        assert!(svg.contains("Spend &lt;per minute&gt;"));
        assert!(svg.contains("data-chart=\"spend\""));
    }
}
