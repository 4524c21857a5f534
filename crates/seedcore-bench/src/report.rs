//! What a workload reports: its figures per run, each beside its same-run baseline and their
//! ratio, summarised as median, min and max; printed as a table or as one JSON object.

use serde_json::{Value, json};

use crate::{cli::Workload, stats::Summary};

/// Which way is good for a figure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Better {
    Higher,
    Lower,
}

impl Better {
    fn as_str(self) -> &'static str {
        match self {
            Better::Higher => "higher",
            Better::Lower => "lower",
        }
    }
}

/// One figure of one run.
#[derive(Clone, Debug)]
pub struct Measure {
    pub key: &'static str,
    pub label: &'static str,
    pub unit: &'static str,
    pub better: Better,
    pub value: f64,
    pub baseline: Option<BaselineValue>,
}

/// The same-run baseline a figure is compared with.
#[derive(Clone, Debug)]
pub struct BaselineValue {
    pub key: &'static str,
    pub label: &'static str,
    pub value: f64,
}

impl Measure {
    pub fn new(
        key: &'static str,
        label: &'static str,
        unit: &'static str,
        better: Better,
        value: f64,
    ) -> Measure {
        Measure {
            key,
            label,
            unit,
            better,
            value,
            baseline: None,
        }
    }

    pub fn against(mut self, key: &'static str, label: &'static str, value: f64) -> Measure {
        self.baseline = Some(BaselineValue { key, label, value });
        self
    }
}

/// What one run of a workload measured.
#[derive(Debug, Default)]
pub struct RunOutcome {
    pub measures: Vec<Measure>,
    pub notes: Vec<String>,
}

impl RunOutcome {
    pub fn push(&mut self, measure: Measure) {
        self.measures.push(measure);
    }

    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }
}

/// One figure over all runs.
#[derive(Clone, Debug)]
pub struct Figure {
    pub key: &'static str,
    pub label: &'static str,
    pub unit: &'static str,
    pub better: Better,
    pub values: Vec<f64>,
    pub baseline: Option<(&'static str, &'static str, Vec<f64>)>,
    /// value / baseline, per run.
    pub ratios: Vec<f64>,
}

/// A workload's results.
#[derive(Debug)]
pub struct Report {
    pub workload: Workload,
    pub runs: usize,
    pub smoke: bool,
    pub figures: Vec<Figure>,
    pub notes: Vec<String>,
}

impl Report {
    /// Groups the runs' measures by figure, in the order they were first measured.
    pub fn from_runs(workload: Workload, smoke: bool, runs: Vec<RunOutcome>) -> Report {
        let mut figures: Vec<Figure> = Vec::new();
        let mut notes: Vec<String> = Vec::new();
        let count = runs.len();
        for run in runs {
            for measure in run.measures {
                add(&mut figures, measure);
            }
            for note in run.notes {
                if !notes.contains(&note) {
                    notes.push(note);
                }
            }
        }
        Report {
            workload,
            runs: count,
            smoke,
            figures,
            notes,
        }
    }

    pub fn to_json(&self) -> Value {
        let figures: Vec<Value> = self.figures.iter().map(figure_json).collect();
        json!({
            "workload": self.workload.key(),
            "title": self.workload.title(),
            "runs": self.runs,
            "smoke": self.smoke,
            "figures": figures,
            "notes": self.notes,
        })
    }

    /// The human table: one line per figure, then the notes.
    pub fn to_table(&self) -> String {
        let header = [
            "figure",
            "unit",
            "seedcore",
            "baseline",
            "baseline value",
            "ratio",
        ];
        let mut rows: Vec<[String; 6]> = vec![header.map(String::from)];
        for figure in &self.figures {
            let (label, value, ratio) = match &figure.baseline {
                Some((_, label, values)) => (
                    label.to_string(),
                    summary_text(values),
                    summary_text(&figure.ratios),
                ),
                None => ("-".into(), "-".into(), "-".into()),
            };
            let better = match figure.better {
                Better::Higher => "↑",
                Better::Lower => "↓",
            };
            rows.push([
                format!("{} {better}", figure.label),
                figure.unit.to_string(),
                summary_text(&figure.values),
                label,
                value,
                ratio,
            ]);
        }
        let mut out = format!(
            "{} {} ({} run{}{}; median [min … max]; ratio = seedcore / baseline; ↑ higher is \
             better, ↓ lower)\n",
            self.workload.key().to_uppercase(),
            self.workload.title(),
            self.runs,
            if self.runs == 1 { "" } else { "s" },
            if self.smoke { ", smoke sizes" } else { "" },
        );
        out.push_str(&layout(&rows));
        for note in &self.notes {
            out.push_str(&format!("  note: {note}\n"));
        }
        out
    }
}

fn add(figures: &mut Vec<Figure>, measure: Measure) {
    let index = match figures.iter().position(|f| f.key == measure.key) {
        Some(index) => index,
        None => {
            figures.push(Figure {
                key: measure.key,
                label: measure.label,
                unit: measure.unit,
                better: measure.better,
                values: Vec::new(),
                baseline: None,
                ratios: Vec::new(),
            });
            figures.len() - 1
        }
    };
    let figure = &mut figures[index];
    figure.values.push(measure.value);
    if let Some(base) = measure.baseline {
        let (_, _, values) = figure
            .baseline
            .get_or_insert_with(|| (base.key, base.label, Vec::new()));
        values.push(base.value);
        if base.value != 0.0 {
            figure.ratios.push(measure.value / base.value);
        }
    }
}

fn summary_json(values: &[f64]) -> Value {
    match Summary::of(values) {
        Some(s) => json!({"median": s.median, "min": s.min, "max": s.max, "values": values}),
        None => Value::Null,
    }
}

fn figure_json(figure: &Figure) -> Value {
    let mut out = json!({
        "key": figure.key,
        "label": figure.label,
        "unit": figure.unit,
        "better": figure.better.as_str(),
    });
    if let (Value::Object(map), Value::Object(summary)) = (&mut out, summary_json(&figure.values)) {
        map.extend(summary);
    }
    if let Some((key, label, values)) = &figure.baseline {
        let mut baseline = json!({"key": key, "label": label});
        if let (Value::Object(map), Value::Object(summary)) = (&mut baseline, summary_json(values))
        {
            map.extend(summary);
        }
        out["baseline"] = baseline;
        out["ratio"] = summary_json(&figure.ratios);
    }
    out
}

fn summary_text(values: &[f64]) -> String {
    match Summary::of(values) {
        None => "-".into(),
        Some(s) if values.len() == 1 => number(s.median),
        Some(s) => format!(
            "{} [{} … {}]",
            number(s.median),
            number(s.min),
            number(s.max)
        ),
    }
}

/// Three significant digits or so, with thousands separated: enough for noisy figures.
pub fn number(value: f64) -> String {
    let magnitude = value.abs();
    if !value.is_finite() {
        return value.to_string();
    }
    if magnitude >= 1000.0 {
        let digits = format!("{:.0}", magnitude);
        let mut grouped = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(c);
        }
        return if value < 0.0 {
            format!("-{grouped}")
        } else {
            grouped
        };
    }
    let decimals = match magnitude {
        m if m >= 100.0 => 0,
        m if m >= 10.0 => 1,
        m if m >= 1.0 => 2,
        _ => 3,
    };
    format!("{value:.decimals$}")
}

/// Left-aligned columns, two spaces apart.
fn layout(rows: &[[String; 6]]) -> String {
    let mut widths = [0; 6];
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str("  ");
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(value: f64, base: f64) -> RunOutcome {
        let mut run = RunOutcome::default();
        run.push(
            Measure::new("drain", "drain", "tasks/s", Better::Higher, value)
                .against("raw", "raw SQL", base),
        );
        run.note("same note");
        run
    }

    #[test]
    fn runs_are_grouped_with_ratios_per_run() {
        let report = Report::from_runs(
            Workload::W1,
            false,
            vec![run(100.0, 200.0), run(150.0, 150.0), run(90.0, 300.0)],
        );
        let json = report.to_json();
        let figure = &json["figures"][0];
        assert_eq!(figure["median"], 100.0);
        assert_eq!(figure["baseline"]["median"], 200.0);
        assert_eq!(figure["ratio"]["max"], 1.0);
        assert_eq!(figure["ratio"]["min"], 0.3);
        assert_eq!(json["notes"].as_array().unwrap().len(), 1);
        assert!(report.to_table().contains("raw SQL"));
    }

    #[test]
    fn numbers_are_short() {
        assert_eq!(number(12345.6), "12,346");
        assert_eq!(number(123.4), "123");
        assert_eq!(number(12.34), "12.3");
        assert_eq!(number(1.234), "1.23");
        assert_eq!(number(0.1234), "0.123");
    }
}
