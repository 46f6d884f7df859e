//! One file per subcommand: parse arguments into domain values, call the planner or readers,
//! render the report. `anyhow` lives here only.

pub mod accuracy;
pub mod bench;
pub mod fit;
pub mod formats;
pub mod gpus;
mod hub_cache;
pub mod inspect;
pub mod max;
pub mod models;
pub mod plan;
mod rollout;
mod source;
pub mod track_record;
mod train;
pub mod validate;
pub mod watch;

use crate::cli::{Command, OutputFormat};
use crate::report::{self, Listing, PlanReport};

/// Runs a command and returns what to print on stdout.
pub fn run(command: &Command) -> anyhow::Result<String> {
    match command {
        Command::Plan(args) => plan::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Models(args) => Ok(render_listing(&models::listing(), args.format)),
        Command::Gpus(args) if args.local => Ok(render_listing(&gpus::local()?, args.format)),
        Command::Gpus(args) => Ok(render_listing(&gpus::listing(), args.format)),
        Command::Bench(args) => bench::run(args),
        Command::Formats(args) => Ok(render_listing(&formats::listing(), args.format)),
        Command::Fit(args) => fit::run(args),
        Command::Max(args) => max::run(args),
        Command::Watch(args) => watch::run(args),
        Command::Validate(args) => validate::run(args),
        Command::Accuracy(args) if args.bands => track_record::compute(),
        Command::Accuracy(args) => Ok(render_listing(&accuracy::listing(args.records)?, args.format)),
    }
}

pub(crate) fn render_listing(l: &Listing, format: OutputFormat) -> String {
    match format {
        OutputFormat::Table => report::table::listing(l),
        OutputFormat::Json => report::json::render(&l.json) + "\n",
        OutputFormat::Markdown => report::markdown::listing(l),
        OutputFormat::Csv => report::csv::listing(l),
    }
}

pub(crate) fn render_plan(r: &PlanReport, format: OutputFormat) -> String {
    match format {
        OutputFormat::Table => report::table::plan(r),
        OutputFormat::Json => report::json::render(r) + "\n",
        OutputFormat::Markdown => report::markdown::plan(r),
        OutputFormat::Csv => report::csv::plan(r),
    }
}
