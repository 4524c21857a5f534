//! `fact import FILE|-`: facts from JSON lines or CSV, sent in batches through
//! `POST /api/v1/facts/bulk`.
//!
//! The bulk endpoint stores a batch whole or not at all and names every bad item by position
//! (a 422 whose `loc` is `["body", "facts", i, ...]`). Lines are checked here first; a batch
//! the server still refuses has its named items taken out (each reported by its line number
//! with the server's reason) and the rest sent again, and a batch over the body limit (413)
//! is split in halves. So every good line is stored once and every bad one is named.
//!
//! Line numbers are the file's own (1-based; a CSV header is line 1). `--skip N` skips the
//! first N data lines (JSON lines: lines that are not blank; CSV: records after the header),
//! which is what the message of an interrupted import tells to resume with.

use std::{
    fs::File,
    io::{BufRead, BufReader, IsTerminal, Read},
    path::Path,
    time::Duration,
};

use indicatif::ProgressBar;
use reqwest::StatusCode;
use serde_json::{Map, Value, json};

use super::{
    ClientError, Ctx, Exit,
    facts::{Format, ImportArgs},
    output,
};

/// How often a refused batch is sent again when the server is busy or briefly away.
const MAX_RETRIES: u32 = 5;
/// Without a terminal, a progress line every this many data lines.
const PLAIN_EVERY: u64 = 10_000;

/// A data line: where it is in the file and the fact it holds, or why it holds none.
struct Entry {
    line: u64,
    item: Result<Value, String>,
}

/// How an import ended.
#[derive(Default)]
struct Tally {
    /// Data lines read past `--skip`, good and bad.
    read: u64,
    /// `read` when the last plain progress line was printed.
    reported: u64,
    stored: u64,
    rejected: Vec<(u64, String)>,
}

pub async fn run(ctx: &Ctx, args: ImportArgs) -> Result<Exit, ClientError> {
    let format = args.format.unwrap_or_else(|| guess_format(&args.file));
    let total = count_lines(&args.file, format);
    let mut source = Source::open(&args.file, format)?;
    let bar = progress(ctx, total.map(|t| t.saturating_sub(args.skip)));
    for _ in 0..args.skip {
        if source.next_entry()?.is_none() {
            break;
        }
    }
    let mut tally = Tally::default();
    let mut batch: Vec<(u64, Value)> = Vec::new();
    // Data lines before the current batch: where to resume if it cannot be sent.
    let mut settled = args.skip;
    loop {
        let entry = source.next_entry()?;
        let end = entry.is_none();
        if let Some(Entry { line, item }) = entry {
            tally.read += 1;
            match item {
                Ok(fact) => batch.push((line, fact)),
                Err(reason) => reject(&bar, &mut tally, line, reason),
            }
        }
        let full = batch.len() >= args.batch_size as usize;
        if full || (end && !batch.is_empty()) {
            let sent = send(ctx, std::mem::take(&mut batch), &bar, &mut tally).await;
            if let Err(err) = sent {
                bar.abandon();
                return Err(interrupted(err, settled, &tally));
            }
            settled = args.skip + tally.read;
            tick(&bar, &mut tally);
        }
        if end {
            break;
        }
    }
    bar.finish_and_clear();
    summary(ctx, &tally)
}

fn guess_format(path: &Path) -> Format {
    match path.extension().and_then(|e| e.to_str()) {
        Some(ext) if ext.eq_ignore_ascii_case("csv") => Format::Csv,
        _ => Format::Jsonl,
    }
}

/// The data lines of a file, for the progress bar's length; None for stdin or when unknown.
fn count_lines(path: &Path, format: Format) -> Option<u64> {
    if path.as_os_str() == "-" || !std::io::stderr().is_terminal() {
        return None;
    }
    let mut reader = BufReader::new(File::open(path).ok()?);
    let mut lines = 0u64;
    let mut buffer = [0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut buffer).ok()?;
        if n == 0 {
            break;
        }
        lines += buffer[..n].iter().filter(|b| **b == b'\n').count() as u64;
    }
    Some(match format {
        Format::Csv => lines.saturating_sub(1),
        Format::Jsonl => lines,
    })
}

/// The input, read one data line at a time.
enum Source {
    Jsonl {
        reader: Box<dyn BufRead>,
        line: u64,
    },
    Csv {
        records: csv::Reader<Box<dyn Read>>,
        columns: Columns,
    },
}

/// Where the CSV columns are.
struct Columns {
    text: usize,
    tags: Option<usize>,
    meta: Option<usize>,
}

impl Source {
    fn open(path: &Path, format: Format) -> Result<Source, ClientError> {
        let input: Box<dyn Read> = if path.as_os_str() == "-" {
            Box::new(std::io::stdin())
        } else {
            Box::new(File::open(path).map_err(|err| {
                ClientError::failure(format!("cannot open {}: {err}", path.display()))
            })?)
        };
        match format {
            Format::Jsonl => Ok(Source::Jsonl {
                reader: Box::new(BufReader::with_capacity(256 * 1024, input)),
                line: 0,
            }),
            Format::Csv => {
                let mut records = csv::ReaderBuilder::new().flexible(true).from_reader(input);
                let headers = records.headers().map_err(|err| {
                    ClientError::failure(format!("cannot read the CSV header: {err}"))
                })?;
                let find = |name: &str| {
                    headers
                        .iter()
                        .position(|h| h.trim().eq_ignore_ascii_case(name))
                };
                let Some(text) = find("text") else {
                    return Err(ClientError::usage(
                        "the CSV header has no `text` column (columns: text, tags, meta_data)",
                    ));
                };
                let columns = Columns {
                    text,
                    tags: find("tags"),
                    meta: find("meta_data").or_else(|| find("metadata")),
                };
                Ok(Source::Csv { records, columns })
            }
        }
    }

    fn next_entry(&mut self) -> Result<Option<Entry>, ClientError> {
        match self {
            Source::Jsonl { reader, line } => {
                let mut text = String::new();
                loop {
                    text.clear();
                    let read = reader.read_line(&mut text).map_err(|err| {
                        ClientError::failure(format!("cannot read line {}: {err}", *line + 1))
                    })?;
                    if read == 0 {
                        return Ok(None);
                    }
                    *line += 1;
                    if !text.trim().is_empty() {
                        return Ok(Some(Entry {
                            line: *line,
                            item: json_line(&text),
                        }));
                    }
                }
            }
            Source::Csv { records, columns } => {
                let mut record = csv::StringRecord::new();
                match records.read_record(&mut record) {
                    Ok(false) => Ok(None),
                    Ok(true) => Ok(Some(Entry {
                        line: record.position().map_or(0, |p| p.line()),
                        item: csv_row(&record, columns),
                    })),
                    Err(err) => match (err.position(), err.kind()) {
                        (Some(position), csv::ErrorKind::Utf8 { .. }) => Ok(Some(Entry {
                            line: position.line(),
                            item: Err("not valid UTF-8".into()),
                        })),
                        _ => Err(ClientError::failure(format!("cannot read the CSV: {err}"))),
                    },
                }
            }
        }
    }
}

/// A JSON line as a bulk item.
fn json_line(text: &str) -> Result<Value, String> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => fact_item(map),
        Ok(_) => Err("not a JSON object".into()),
        Err(err) => Err(format!("not valid JSON: {err}")),
    }
}

/// The fields a fact is created with, checked as the server checks their types; everything
/// else (an exported fact's `id`, times, `rank`) is left out.
fn fact_item(map: Map<String, Value>) -> Result<Value, String> {
    let text = match map.get("text") {
        Some(Value::String(text)) => text.clone(),
        None | Some(Value::Null) => return Err("text: Field required".into()),
        Some(_) => return Err("text: Input should be a valid string".into()),
    };
    let mut item = json!({"text": text});
    match map.get("tags") {
        None | Some(Value::Null) => {}
        Some(Value::Array(tags)) if tags.iter().all(Value::is_string) => {
            item["tags"] = Value::Array(tags.clone());
        }
        Some(_) => return Err("tags: Input should be a list of strings".into()),
    }
    match map.get("meta_data") {
        None | Some(Value::Null) => {}
        Some(meta @ Value::Object(_)) => item["meta_data"] = meta.clone(),
        Some(_) => return Err("meta_data: Input should be a valid dictionary".into()),
    }
    Ok(item)
}

fn csv_row(record: &csv::StringRecord, columns: &Columns) -> Result<Value, String> {
    let cell = |i: Option<usize>| i.and_then(|i| record.get(i)).unwrap_or("").trim();
    let Some(text) = record.get(columns.text) else {
        return Err("text: Field required (the row has too few columns)".into());
    };
    let mut item = Map::new();
    item.insert("text".into(), json!(text));
    let tags = cell(columns.tags);
    if tags.starts_with('[') {
        let parsed: Value =
            serde_json::from_str(tags).map_err(|err| format!("tags: not a JSON array: {err}"))?;
        item.insert("tags".into(), parsed);
    } else if !tags.is_empty() {
        let split: Vec<&str> = tags
            .split(';')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect();
        item.insert("tags".into(), json!(split));
    }
    let meta = cell(columns.meta);
    if !meta.is_empty() {
        let parsed: Value = serde_json::from_str(meta)
            .map_err(|err| format!("meta_data: not valid JSON: {err}"))?;
        item.insert("meta_data".into(), parsed);
    }
    fact_item(item)
}

/// Sends one batch until each of its facts is stored or rejected.
async fn send(
    ctx: &Ctx,
    batch: Vec<(u64, Value)>,
    bar: &ProgressBar,
    tally: &mut Tally,
) -> Result<(), ClientError> {
    let mut parts = vec![batch];
    while let Some(mut part) = parts.pop() {
        let mut retries = 0;
        while !part.is_empty() {
            let items: Vec<&Value> = part.iter().map(|(_, item)| item).collect();
            let err = match ctx
                .api
                .post("/api/v1/facts/bulk", &json!({"facts": items}))
                .await
            {
                Ok(_) => {
                    tally.stored += part.len() as u64;
                    break;
                }
                Err(err) => err,
            };
            let named = named_items(&err);
            if !named.is_empty() {
                let mut index = 0;
                part.retain(|(line, _)| {
                    let keep = match named.iter().find(|(i, _)| *i == index) {
                        Some((_, reason)) => {
                            reject(bar, tally, *line, reason.clone());
                            false
                        }
                        None => true,
                    };
                    index += 1;
                    keep
                });
            } else if err.status == Some(StatusCode::PAYLOAD_TOO_LARGE) && part.len() > 1 {
                let second = part.split_off(part.len() / 2);
                parts.push(second);
                parts.push(part);
                break;
            } else if retryable(&err) && retries < MAX_RETRIES {
                retries += 1;
                tokio::time::sleep(Duration::from_millis(500 << retries)).await;
            } else {
                return Err(err);
            }
        }
    }
    Ok(())
}

/// The items a 422 names, by position in the batch, with every reason given for each.
fn named_items(err: &ClientError) -> Vec<(usize, String)> {
    if err.status != Some(StatusCode::UNPROCESSABLE_ENTITY) {
        return Vec::new();
    }
    let Some(problems) = err.detail.as_ref().and_then(|d| d["detail"].as_array()) else {
        return Vec::new();
    };
    let mut named: Vec<(usize, String)> = Vec::new();
    for problem in problems {
        let loc = problem["loc"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        let (Some("body"), Some("facts"), Some(index)) = (
            loc.first().and_then(Value::as_str),
            loc.get(1).and_then(Value::as_str),
            loc.get(2).and_then(Value::as_u64),
        ) else {
            // A problem with the batch itself: no item to take out.
            return Vec::new();
        };
        let within = json!({"loc": loc[3..].to_vec(), "msg": problem["msg"]});
        let reason = super::http::render_problem(&within);
        match named.iter_mut().find(|(i, _)| *i == index as usize) {
            Some((_, reasons)) => {
                reasons.push_str("; ");
                reasons.push_str(&reason);
            }
            None => named.push((index as usize, reason)),
        }
    }
    named
}

fn retryable(err: &ClientError) -> bool {
    match err.status {
        Some(status) => {
            status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS
        }
        // No answer at all: the server may be restarting.
        None => true,
    }
}

fn reject(bar: &ProgressBar, tally: &mut Tally, line: u64, reason: String) {
    let message = format!("line {line}: {reason}");
    if bar.is_hidden() {
        eprintln!("{message}");
    } else {
        bar.println(message);
    }
    tally.rejected.push((line, reason));
}

/// A bar with rate and ETA on a terminal; hidden otherwise (plain lines are printed instead).
fn progress(ctx: &Ctx, total: Option<u64>) -> ProgressBar {
    if ctx.json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let (bar, template) = match total {
        Some(total) => (
            ProgressBar::new(total),
            "[{bar:40}] {pos}/{len} lines ({rate}, {eta} left) {msg}",
        ),
        None => (ProgressBar::no_length(), "{pos} lines ({rate}) {msg}"),
    };
    bar.set_style(output::progress_style(template, "lines"));
    bar
}

fn tick(bar: &ProgressBar, tally: &mut Tally) {
    if bar.is_hidden() {
        if tally.read - tally.reported >= PLAIN_EVERY {
            tally.reported = tally.read;
            eprintln!(
                "{} lines read, {} stored, {} rejected",
                tally.read,
                tally.stored,
                tally.rejected.len()
            );
        }
        return;
    }
    bar.set_position(tally.read);
    bar.set_message(format!(
        "{} stored, {} rejected",
        tally.stored,
        tally.rejected.len()
    ));
}

/// The error of an import that stopped, with where to resume.
fn interrupted(err: ClientError, settled: u64, tally: &Tally) -> ClientError {
    ClientError {
        message: format!(
            "{}\nstopped: {} fact(s) stored, {} line(s) rejected so far; every line before \
             data line {} is done: resume with --skip {settled}",
            err.message,
            tally.stored,
            tally.rejected.len(),
            settled + 1,
        ),
        ..err
    }
}

fn summary(ctx: &Ctx, tally: &Tally) -> Result<Exit, ClientError> {
    if ctx.json {
        let rejected: Vec<Value> = tally
            .rejected
            .iter()
            .map(|(line, reason)| json!({"line": line, "reason": reason}))
            .collect();
        output::json(&json!({"read": tally.read, "stored": tally.stored, "rejected": rejected}));
    } else {
        println!(
            "read {} line(s): {} fact(s) stored, {} rejected",
            tally.read,
            tally.stored,
            tally.rejected.len()
        );
    }
    if tally.rejected.is_empty() {
        return Ok(Exit::Ok);
    }
    let mut lines: Vec<u64> = tally.rejected.iter().map(|(line, _)| *line).collect();
    lines.sort_unstable();
    let shown: Vec<String> = lines.iter().take(20).map(u64::to_string).collect();
    let more = if lines.len() > 20 { ", …" } else { "" };
    Err(ClientError::failure(format!(
        "{} line(s) rejected (lines {}{more}); the others were stored",
        lines.len(),
        shown.join(", ")
    )))
}
