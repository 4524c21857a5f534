//! `seedcore fact …`: add, list, search, get, update, delete, and `export` as JSON lines
//! (paged through the list with its keyset cursor) that `fact import` reads back.

use std::{
    io::{BufWriter, Write},
    path::PathBuf,
};

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Map, Value, json};

use super::{
    ClientError, Ctx, Exit,
    http::segment,
    import, json_arg,
    output::{self, field},
};

/// The subcommands of `seedcore fact`.
#[derive(Subcommand, Debug)]
pub enum FactCommand {
    /// Store a fact.
    Add(AddArgs),
    /// List facts, newest first, filtered by substring and tags.
    List(ListArgs),
    /// Full-text search (stemmed words, "phrases", `or`, -excluded), best match first.
    Search(SearchArgs),
    /// Show one fact.
    Get(IdArg),
    /// Change a fact's text, tags or metadata (only what is given).
    Update(UpdateArgs),
    /// Delete a fact.
    Delete(IdArg),
    /// Store facts from JSON lines or CSV, in batches, naming each rejected line.
    Import(ImportArgs),
    /// Write facts as JSON lines (what `fact import` reads), newest first.
    Export(ExportArgs),
}

/// A fact id argument.
#[derive(Args, Debug)]
pub struct IdArg {
    /// The fact's id, or a unique prefix of it.
    pub id: String,
}

/// The settings of `seedcore fact add`.
#[derive(Args, Debug)]
pub struct AddArgs {
    /// The fact's text.
    pub text: String,
    /// A tag (repeat for several).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// The metadata, a JSON object.
    #[arg(long)]
    pub meta: Option<String>,
}

/// The settings of `seedcore fact list`.
#[derive(Args, Debug)]
pub struct ListArgs {
    /// Case-insensitive substring of the text or metadata.
    #[arg(long)]
    pub q: Option<String>,
    /// Only facts with this tag (repeat: all of them).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// How many (1 to 1000).
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// How many to skip.
    #[arg(long, default_value_t = 0)]
    pub offset: u64,
}

/// The settings of `seedcore fact search`.
#[derive(Args, Debug)]
pub struct SearchArgs {
    /// The words to search for.
    #[arg(required = true, num_args = 1..)]
    pub words: Vec<String>,
    /// Only facts with this tag (repeat: all of them).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// How many (1 to 1000).
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
}

/// The settings of `seedcore fact update`.
#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// The fact's id, or a unique prefix of it.
    pub id: String,
    /// The new text.
    #[arg(long)]
    pub text: Option<String>,
    /// The new tags, replacing the old ones (repeat for several).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Remove every tag.
    #[arg(long, conflicts_with = "tags")]
    pub clear_tags: bool,
    /// The new metadata, a JSON object replacing the old one.
    #[arg(long)]
    pub meta: Option<String>,
}

/// The format of an import file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One JSON object per line: `{"text": ..., "tags": [...], "meta_data": {...}}`.
    Jsonl,
    /// A header row naming the columns `text`, `tags` (a JSON array, or tags separated by
    /// `;`) and `meta_data` (a JSON object).
    Csv,
}

/// The settings of `seedcore fact import`.
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The file to read, or `-` for stdin.
    pub file: PathBuf,
    /// The file's format (default: csv for a `.csv` file, else JSON lines).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Skip the first N data lines (to resume an import that stopped after them).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub skip: u64,
    /// Facts per request (1 to 10,000).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub batch_size: u32,
}

/// The settings of `seedcore fact export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Write to this file instead of stdout.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Only facts whose text or metadata holds this substring.
    #[arg(long)]
    pub q: Option<String>,
    /// Only facts with this tag (repeat: all of them).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
}

const FACT_KEYS: &[&str] = &[
    "id",
    "text",
    "tags",
    "meta_data",
    "created_at",
    "updated_at",
];

/// Facts per page of an export.
const EXPORT_PAGE: u32 = 1000;

pub async fn run(ctx: Ctx, command: FactCommand) -> Result<Exit, ClientError> {
    match command {
        FactCommand::Add(args) => {
            let mut body = json!({"text": args.text, "tags": args.tags});
            if let Some(meta) = &args.meta {
                body["meta_data"] = json_arg("--meta", meta)?;
            }
            let fact = ctx.api.post("/api/v1/facts", &body).await?;
            show(&ctx, &fact);
        }
        FactCommand::List(args) => {
            let mut query = vec![
                ("limit", args.limit.to_string()),
                ("offset", args.offset.to_string()),
            ];
            query.extend(args.q.map(|q| ("q", q)));
            query.extend(args.tags.into_iter().map(|tag| ("tag", tag)));
            list(&ctx, &query).await?;
        }
        FactCommand::Search(args) => {
            let mut query = vec![
                ("search", args.words.join(" ")),
                ("limit", args.limit.to_string()),
            ];
            query.extend(args.tags.into_iter().map(|tag| ("tag", tag)));
            list(&ctx, &query).await?;
        }
        FactCommand::Get(IdArg { id }) => {
            let fact = ctx.api.get(&fact_path(&id)).await?;
            show(&ctx, &fact);
        }
        FactCommand::Update(args) => {
            let fact = ctx
                .api
                .patch(&fact_path(&args.id), &update_body(&args)?)
                .await?;
            show(&ctx, &fact);
        }
        FactCommand::Delete(IdArg { id }) => {
            let deleted = ctx.api.delete(&fact_path(&id)).await?;
            if ctx.json {
                output::json(&deleted);
            } else {
                println!("deleted fact {}", field(&deleted, "deleted"));
            }
        }
        FactCommand::Import(args) => return import::run(&ctx, args).await,
        FactCommand::Export(args) => export(&ctx, args).await?,
    }
    Ok(Exit::Ok)
}

fn fact_path(id: &str) -> String {
    format!("/api/v1/facts/{}", segment(id))
}

fn show(ctx: &Ctx, fact: &Value) {
    if ctx.json {
        output::json(fact);
    } else {
        output::record(fact, FACT_KEYS);
    }
}

fn update_body(args: &UpdateArgs) -> Result<Value, ClientError> {
    let mut body = Map::new();
    if let Some(text) = &args.text {
        body.insert("text".into(), json!(text));
    }
    if !args.tags.is_empty() || args.clear_tags {
        body.insert("tags".into(), json!(args.tags));
    }
    if let Some(meta) = &args.meta {
        body.insert("meta_data".into(), json_arg("--meta", meta)?);
    }
    if body.is_empty() {
        return Err(ClientError::usage(
            "nothing to change: give --text, --tag, --clear-tags or --meta",
        ));
    }
    Ok(Value::Object(body))
}

async fn list(ctx: &Ctx, query: &[(&str, String)]) -> Result<(), ClientError> {
    let page = ctx.api.get_query("/api/v1/facts", query).await?;
    if ctx.json {
        output::json(&page);
        return Ok(());
    }
    let rows = output::items(&page)
        .iter()
        .map(|fact| {
            let tags = fact["tags"]
                .as_array()
                .map(|tags| {
                    tags.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            vec![
                field(fact, "id"),
                clip(fact["text"].as_str().unwrap_or(""), 60),
                tags,
                field(fact, "created_at"),
            ]
        })
        .collect();
    output::table(&["ID", "TEXT", "TAGS", "CREATED"], rows);
    eprintln!(
        "{} of {} fact(s)",
        output::items(&page).len(),
        field(&page, "total")
    );
    Ok(())
}

/// The first `chars` characters of one line of `text`, with `…` when cut.
fn clip(text: &str, chars: usize) -> String {
    let line = text.lines().next().unwrap_or("");
    let mut clipped: String = line.chars().take(chars).collect();
    if clipped.len() < text.len() {
        clipped.push('…');
    }
    clipped
}

async fn export(ctx: &Ctx, args: ExportArgs) -> Result<(), ClientError> {
    let sink: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(std::fs::File::create(path).map_err(|err| {
            ClientError::failure(format!("cannot create {}: {err}", path.display()))
        })?),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = BufWriter::new(sink);
    let write_error = |err: std::io::Error| ClientError::failure(format!("cannot write: {err}"));
    let mut base = vec![
        ("limit", EXPORT_PAGE.to_string()),
        ("count", "none".to_string()),
    ];
    base.extend(args.q.map(|q| ("q", q)));
    base.extend(args.tags.into_iter().map(|tag| ("tag", tag)));
    let mut cursor: Option<String> = None;
    let mut written = 0u64;
    loop {
        let mut query = base.clone();
        query.extend(cursor.take().map(|c| ("cursor", c)));
        let page = ctx.api.get_query("/api/v1/facts", &query).await?;
        for fact in output::items(&page) {
            serde_json::to_writer(&mut out, fact).map_err(|err| write_error(err.into()))?;
            out.write_all(b"\n").map_err(write_error)?;
            written += 1;
        }
        match page["next_cursor"].as_str() {
            Some(next) if !output::items(&page).is_empty() => cursor = Some(next.to_string()),
            _ => break,
        }
    }
    out.flush().map_err(write_error)?;
    if args.output.is_some() || !ctx.json {
        eprintln!("exported {written} fact(s)");
    }
    Ok(())
}
