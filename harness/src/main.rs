//! `faultline`: the chaos harness.
//!
//! Exit codes: 0 every property held, 1 a property failed, 2 bad usage or an
//! invalid suite, 3 inconclusive (too few samples), 4 the run broke.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use fault_server::cli::{serve, ServeArgs};
use faultline_demo::{DemoConfig, Profile};
use faultline_harness::report::json::Report;
use faultline_harness::report::{exit, table, RunOutcome};
use faultline_harness::run::progress::Progress;
use faultline_harness::run::TargetOverride;
use faultline_harness::suite::run_suites;
use faultline_harness::suite::{collect, Suite};
use faultline_properties::Verdict;
use indicatif::{ProgressBar, ProgressStyle};
use tokio_util::sync::CancellationToken;

/// Chaos fault injection for resilience tests before every deployment.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run suites: drive load through their phases of faults and judge their properties.
    Run {
        /// Suite files, or folders of them.
        #[arg(required = true)]
        suites: Vec<PathBuf>,
        /// The system under test, overriding each suite's own target.
        #[arg(long, value_name = "URL", conflicts_with = "demo")]
        target_url: Option<String>,
        /// Run against the built-in demo shop in this profile, overriding each suite's own target.
        #[arg(long, value_parser = parse_profile)]
        demo: Option<Profile>,
        /// Seed for every random fault decision.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Write report.json, junit.xml, summary.md and the latency histograms here.
        #[arg(long, value_name = "DIR")]
        report_dir: Option<PathBuf>,
        /// What to print: the verdict table, or report.json for scripts.
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
        /// No live progress (it is shown only when standard output is a terminal).
        #[arg(long, short)]
        quiet: bool,
    },
    /// Check suites without running them.
    Validate {
        /// Suite files, or folders of them.
        #[arg(required = true)]
        suites: Vec<PathBuf>,
        /// Print each suite's plan: what would run, for how long, at what
        /// rates, with which faults (a dry run).
        #[arg(long)]
        plan: bool,
        /// With --plan: the system under test, overriding each suite's own target.
        #[arg(long, value_name = "URL", conflicts_with = "demo", requires = "plan")]
        target_url: Option<String>,
        /// With --plan: the built-in demo shop in this profile, overriding each suite's own target.
        #[arg(long, value_parser = parse_profile, requires = "plan")]
        demo: Option<Profile>,
    },
    /// Run the fault server alone, on a TOML configuration, until SIGINT/SIGTERM.
    Serve(ServeArgs),
    /// The checklist against the demo shop, naive and hardened side by side
    /// (exit 0 when the hardened shop holds everywhere); or `demo serve`.
    Demo(DemoArgs),
}

/// What `faultline run` prints.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Output {
    /// The verdict table.
    Table,
    /// The whole report as JSON (report.json).
    Json,
}

#[derive(Args)]
struct DemoArgs {
    #[command(subcommand)]
    serve: Option<DemoCommand>,
    /// Seed for every random fault decision.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Subcommand)]
enum DemoCommand {
    /// Serve the demo shop until killed; prints {"addr": ...} first.
    Serve(DemoServeArgs),
}

#[derive(Args)]
struct DemoServeArgs {
    /// naive or hardened.
    #[arg(long, value_parser = parse_profile)]
    profile: Profile,
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Exit when standard input closes: a process that starts the demo with
    /// a pipe on its standard input takes the demo with it when it dies,
    /// however it dies (`faultline run` does).
    #[arg(long)]
    exit_with_parent: bool,
    /// The payments service (checkout calls it).
    #[arg(long, value_name = "URL", env = "PAYMENTS_URL")]
    payments: Option<String>,
    /// The catalog service (search calls it).
    #[arg(long, value_name = "URL", env = "CATALOG_URL")]
    catalog: Option<String>,
    /// The profile store (profile calls it).
    #[arg(long, value_name = "URL", env = "PROFILES_URL")]
    profiles: Option<String>,
    /// The CRM (crm_sync calls it).
    #[arg(long, value_name = "URL", env = "CRM_URL")]
    crm: Option<String>,
    /// Where the hardened shop posts Alertmanager webhooks.
    #[arg(long, value_name = "URL", env = "ALERT_URL")]
    alert_url: Option<String>,
}

fn parse_profile(text: &str) -> Result<Profile, String> {
    text.parse()
        .map_err(|e: faultline_demo::UnknownProfile| e.to_string())
}

#[tokio::main]
async fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Serve(args) => match serve(args).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("faultline: {error}");
                error.exit_code()
            }
        },
        Command::Validate {
            suites,
            plan,
            target_url,
            demo,
        } => match load_all(&suites) {
            Ok(loaded) if plan => {
                let target = target_override(target_url.as_deref(), demo);
                print_plans(&loaded, target)
            }
            Ok(loaded) => {
                for suite in &loaded {
                    println!(
                        "{}: ok ({} phases, {} expectations)",
                        suite.path.display(),
                        suite.phases.len(),
                        suite.expect.len()
                    );
                    // Each expectation as its verdict will be named.
                    for expect in &suite.expect {
                        println!("  {} in {}", expect.name(), expect.scope().phase);
                    }
                }
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Run {
            suites,
            target_url,
            demo,
            seed,
            report_dir,
            output,
            quiet,
        } => {
            let target = target_override(target_url.as_deref(), demo);
            match load_all(&suites) {
                Ok(loaded) => {
                    let progress = progress(quiet);
                    let settings = (report_dir.as_deref(), output, progress.as_ref());
                    run(&loaded, target, seed, settings).await
                }
                Err(code) => code,
            }
        }
        Command::Demo(DemoArgs {
            serve: Some(DemoCommand::Serve(args)),
            ..
        }) => serve_demo(args).await,
        Command::Demo(DemoArgs { serve: None, seed }) => side_by_side(seed).await,
    }
}

/// The command line's target over each suite's own.
fn target_override(url: Option<&str>, demo: Option<Profile>) -> TargetOverride<'_> {
    match (url, demo) {
        (Some(url), _) => TargetOverride::Url(url),
        (None, Some(profile)) => TargetOverride::Demo(profile),
        (None, None) => TargetOverride::None,
    }
}

/// `faultline validate --plan`: each suite's plan, or why it cannot run
/// (exit 2, as `faultline run` would).
fn print_plans(suites: &[Suite], target: TargetOverride<'_>) -> ExitCode {
    let mut code = ExitCode::SUCCESS;
    for suite in suites {
        match suite.plan(target) {
            Ok(plan) => print!("{plan}"),
            Err(error) => {
                eprintln!("faultline: {error}");
                code = ExitCode::from(RunOutcome::Usage.exit_code());
            }
        }
    }
    code
}

/// A token cancelled on SIGINT or SIGTERM: the run stops its load, clears
/// its faults and reports what it saw.
fn stop_on_signal() -> CancellationToken {
    let stop = CancellationToken::new();
    let cancel = stop.clone();
    tokio::spawn(async move {
        let interrupt = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            match signal(SignalKind::terminate()) {
                Ok(mut terminate) => tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                },
                Err(_) => {
                    let _ = interrupt.await;
                }
            }
        }
        #[cfg(not(unix))]
        let _ = interrupt.await;
        cancel.cancel();
    });
    stop
}

/// A live progress line on standard error, when standard output is a
/// terminal (CI logs stay clean) and `--quiet` was not given.
fn progress(quiet: bool) -> Option<ProgressBar> {
    if quiet || !std::io::stdout().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {prefix}: {msg}") {
        bar.set_style(style);
    }
    Some(bar)
}

/// Draws each progress snapshot the run publishes on `bar`.
async fn draw(bar: ProgressBar, mut updates: tokio::sync::watch::Receiver<Progress>) {
    while updates.changed().await.is_ok() {
        let progress = updates.borrow_and_update().to_string();
        bar.set_message(progress);
        bar.tick();
    }
}

async fn run(
    suites: &[Suite],
    target: TargetOverride<'_>,
    seed: u64,
    (report_dir, output, progress): (Option<&Path>, Output, Option<&ProgressBar>),
) -> ExitCode {
    let stop = stop_on_signal();
    let (watch, drawn) = match progress {
        Some(bar) => {
            let (watch, updates) = tokio::sync::watch::channel(Progress::default());
            (Some(watch), Some(tokio::spawn(draw(bar.clone(), updates))))
        }
        None => (None, None),
    };
    let runs = run_suites(suites, target, seed, &stop, watch.as_ref()).await;
    if let Some(drawn) = drawn {
        drawn.abort();
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    for suite in &runs.suites {
        for warning in &suite.run.warnings {
            eprintln!("warning: {}: {warning}", suite.name);
        }
    }
    let verdicts: Vec<(String, Verdict)> = runs
        .verdicts()
        .map(|(suite, v)| (suite.to_owned(), v.clone()))
        .collect();
    let outcome = RunOutcome::of_runs(&runs);
    let report = Report::of_runs(&runs);
    let failure = runs.ended.as_ref();
    match output {
        Output::Table if !verdicts.is_empty() || failure.is_none() => {
            println!("{}", table(&verdicts));
        }
        Output::Table => {}
        Output::Json => match serde_json::to_string_pretty(&report) {
            Ok(json) => println!("{json}"),
            Err(error) => eprintln!("faultline: {error}"),
        },
    }
    if let Some(why) = failure {
        eprintln!("faultline: {why}");
    }
    if let Some(dir) = report_dir {
        let seen: Vec<_> = runs.suites.iter().map(|s| &s.run.observations).collect();
        if let Err(error) = faultline_harness::report::files::write(dir, &report, &seen) {
            eprintln!(
                "faultline: cannot write the reports to {}: {error}",
                dir.display()
            );
            return ExitCode::from(RunOutcome::Broken.exit_code());
        }
    }
    ExitCode::from(outcome.exit_code())
}

async fn side_by_side(seed: u64) -> ExitCode {
    let suites = match faultline_harness::demo::checklist() {
        Ok(suites) => suites,
        Err(error) => {
            eprintln!("faultline: {error}");
            return ExitCode::from(exit::USAGE);
        }
    };
    let both = faultline_harness::demo::run_both(&suites, seed, &stop_on_signal()).await;
    println!("{}", both.table());
    if let Some(why) = both.ended() {
        eprintln!("faultline: {why}");
    }
    ExitCode::from(both.outcome().exit_code())
}

async fn serve_demo(args: DemoServeArgs) -> ExitCode {
    let mut config = DemoConfig::new(args.profile);
    config.listen = args.listen;
    config.alert_url = args.alert_url;
    let urls = [
        ("payments", args.payments),
        ("catalog", args.catalog),
        ("profiles", args.profiles),
        ("crm", args.crm),
    ];
    config.dependencies = urls
        .into_iter()
        .filter_map(|(name, url)| Some((name.to_owned(), url?)))
        .collect::<BTreeMap<_, _>>();
    match faultline_demo::start(config).await {
        Ok(demo) => {
            println!("{{\"addr\": \"{}\"}}", demo.addr());
            let parent_gone = async {
                if !args.exit_with_parent {
                    return std::future::pending().await;
                }
                let mut stdin = tokio::io::stdin();
                let mut buffer = [0u8; 64];
                // Read until end of file (or an error): the parent is gone.
                while matches!(
                    tokio::io::AsyncReadExt::read(&mut stdin, &mut buffer).await,
                    Ok(n) if n > 0
                ) {}
            };
            tokio::select! {
                () = demo.wait() => ExitCode::SUCCESS,
                _ = tokio::signal::ctrl_c() => ExitCode::SUCCESS,
                () = parent_gone => ExitCode::SUCCESS,
            }
        }
        Err(error) => {
            eprintln!(
                "faultline: cannot serve the demo on {}: {error}",
                args.listen
            );
            // Not "a property failed": it could not run.
            ExitCode::from(RunOutcome::Broken.exit_code())
        }
    }
}

/// Every suite, or exit code 2 after printing every error found.
fn load_all(paths: &[PathBuf]) -> Result<Vec<Suite>, ExitCode> {
    let files = collect(paths).map_err(|e| {
        eprintln!("faultline: {e}");
        ExitCode::from(exit::USAGE)
    })?;
    let (loaded, errors): (Vec<_>, Vec<_>) = files
        .iter()
        .map(|f| Suite::load(f))
        .partition(Result::is_ok);
    if errors.is_empty() && !loaded.is_empty() {
        return Ok(loaded.into_iter().filter_map(Result::ok).collect());
    }
    for error in errors.into_iter().filter_map(Result::err) {
        eprintln!("faultline: {error}");
    }
    if files.is_empty() {
        eprintln!("faultline: no suite files found");
    }
    Err(ExitCode::from(exit::USAGE))
}
