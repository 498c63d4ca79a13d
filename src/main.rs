//! The `storyteller-lsp` binary: argument parsing only. Each command's work lives in a library
//! module (`lsp::serve_stdio` for the server); commands of later issues (`doctor`, `prompts list`,
//! `demo`, `provider …`) are added as variants of [`Command`] and one match arm each.
//!
//! stdout carries LSP messages: nothing else may ever be printed to it while serving.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use storyteller_lsp::config::Settings;
use storyteller_lsp::{demo, lsp, simulator, telemetry};

const EXAMPLES: &str = "\
Examples:
  storyteller-lsp demo         See it work: a full editor session, offline, against a simulated AI
  storyteller-lsp              Start the language server on stdin/stdout (what editors run)
  storyteller-lsp serve        The same, spelled out
  storyteller-lsp simulator    A loopback imitation of the AI vendors, for trying things offline
  storyteller-lsp --version    Print the version

Environment:
  STORYTELLER_DATA_DIR   where the database, encrypted key file and logs live
  STORYTELLER_LOG        log filter (e.g. debug), overrides the logLevel setting";

#[derive(Parser)]
#[command(
    name = "storyteller-lsp",
    version,
    about = "AI writing help for fiction authors, inside the editor they already use",
    long_about = "StoryTeller is a language server for fiction: inline continuations and \
                  rewrite actions for Markdown and plain-text manuscripts in VS Code, Neovim \
                  and Helix, routed to the AI providers you configure.",
    after_help = EXAMPLES
)]
struct Cli {
    /// Accepted for editors that pass it; stdio is the only transport.
    #[arg(long, global = true)]
    stdio: bool,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the language server on stdin/stdout (the default).
    Serve(ServeArgs),
    /// Show the whole pipeline offline: a real editor session against a simulated AI provider.
    ///
    /// Opens a sample novel, shows an inline completion, runs Continue scene and Rewrite
    /// selection, then makes the primary provider fail and recover. No keys, no network; nothing
    /// of yours (data directory, keychain) is touched.
    Demo,
    /// Run the built-in provider simulator on 127.0.0.1 (for tests and trying things offline).
    ///
    /// It imitates every supported vendor's API under its own path prefix
    /// (e.g. http://127.0.0.1:PORT/openai/v1) and injects faults on request through
    /// its control API under /_sim/. It stops when stdin closes or on Ctrl-C.
    Simulator(SimulatorArgs),
}

#[derive(Args)]
struct SimulatorArgs {
    /// Port on 127.0.0.1 to listen on; 0 picks a free one (printed on the first line).
    #[arg(long, default_value_t = 0)]
    port: u16,
}

#[derive(Args, Default)]
struct ServeArgs {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        None | Some(Command::Serve(ServeArgs {})) => serve(),
        Some(Command::Simulator(args)) => simulator(args),
        Some(Command::Demo) => demo(),
    }
}

fn demo() -> ExitCode {
    // Only errors on stderr: the transcript on stdout is what the author reads.
    let _log = telemetry::init(None, "error");
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout();
    let result = runtime.block_on(demo::run(&mut stdout));
    runtime.shutdown_timeout(Duration::from_millis(100));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn simulator(args: SimulatorArgs) -> ExitCode {
    let _log = telemetry::init(None, "info");
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], args.port));
    let result = runtime.block_on(simulator::run_standalone(addr));
    runtime.shutdown_timeout(Duration::from_millis(100));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("simulator: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve() -> ExitCode {
    let settings = Settings::default();
    let log_dir = settings.data_dir().map(|dir| dir.join("logs"));
    let log = Arc::new(telemetry::init(log_dir.as_deref(), &settings.log_level));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let status = runtime.block_on(lsp::serve_stdio(Some(log.clone())));
    // Tokio's stdin reader sits in a blocking read that only the client can end; do not wait
    // long for it (or for any other straggler) once the session is over.
    runtime.shutdown_timeout(Duration::from_millis(100));
    // The last reference: dropping it flushes the log file.
    drop(log);
    match status {
        lsp::ExitStatus::Clean => ExitCode::SUCCESS,
        lsp::ExitStatus::WithoutShutdown => ExitCode::FAILURE,
    }
}
