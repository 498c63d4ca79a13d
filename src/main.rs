//! The `storyteller-lsp` binary: argument parsing only. Each command's work lives in a library
//! module (`lsp::serve_stdio` for the server, `cli::*` for `provider …`, `doctor`, `prompts list`);
//! `demo::run` for `demo`); each command is a variant of [`Command`] and one match arm.
//!
//! stdout carries LSP messages: nothing else may ever be printed to it while serving.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use storyteller_lsp::cli::{self, Place, provider};
use storyteller_lsp::config::{CredentialStoreChoice, Settings};
use storyteller_lsp::{demo, lsp, simulator, telemetry};

const EXAMPLES: &str = "\
Examples:
  storyteller-lsp demo         See it work: a full editor session, offline, against a simulated AI
  storyteller-lsp              Start the language server on stdin/stdout (what editors run)
  storyteller-lsp serve        The same, spelled out
  storyteller-lsp simulator    A loopback imitation of the AI vendors, for trying things offline
  storyteller-lsp doctor       Check the installation: database, keychain, providers
  storyteller-lsp provider add openai
                               Add an AI provider (asks for the key; tests it before saving)
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
    /// Manage AI providers: the same operations as the editor's provider settings.
    ///
    /// Acts on the `default` project (its providers serve every workspace without its own) unless
    /// --project names a workspace folder. Keys are read from a hidden prompt, or from one line of
    /// stdin with --key-stdin; never from the command line.
    #[command(after_help = PROVIDER_HELP)]
    Provider(ProviderArgs),
    /// Prompt templates.
    Prompts(PromptsArgs),
    /// Whether a project's text may leave the EU when failing over: show the answer, or give it
    /// (the question "Send to … (outside the EU)?" from a terminal).
    Residency(ResidencyArgs),
    /// The story notes of a workspace: title, names, include mode, summary, problems; with
    /// --at, which notes a prompt at that place would carry and why.
    ///
    /// Reads the default `contextFiles` globs (notes/, characters/, places/, locations/,
    /// STORY.md) under the workspace folder.
    Notes(NotesArgs),
    /// Check the installation: data directory, database, prompts, keychain, system keys and
    /// configured providers (with --check-connections, a connection test of each).
    ///
    /// Exits 0 when everything is healthy, 1 otherwise.
    Doctor(DoctorArgs),
}

const PROVIDER_HELP: &str = "\
Examples:
  storyteller-lsp provider add openai                    asks for the key, tests it, saves it
  printf '%s\\n' \"$KEY\" | storyteller-lsp provider add claude --key-stdin --primary
  storyteller-lsp provider add custom --endpoint http://localhost:11434/v1 --model llama3 --no-key
  storyteller-lsp provider add openai --no-key           uses OPENAI_API_KEY from the environment
  storyteller-lsp provider list --project ~/novels/tide
  storyteller-lsp provider update 3 --new-key            rotate the key (asks for it)
  storyteller-lsp provider remove 3 --yes

Exit codes:
  0  done
  1  the operation failed (e.g. the connection test failed, the provider already exists)
  2  usage error or invalid argument
  3  no such provider or session (in this project)
  4  the credential store (keychain or credentials.enc) cannot be used";

/// Where a terminal command acts.
#[derive(Args, Clone)]
struct PlaceArgs {
    /// The workspace folder whose project to act on [default: the `default` project]
    #[arg(long, global = true, value_name = "DIR")]
    project: Option<std::path::PathBuf>,
    /// The data directory [default: $STORYTELLER_DATA_DIR, else the platform's data directory]
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<std::path::PathBuf>,
    /// Where keys are kept; use the same choice as the editor's `credentialStore` setting
    #[arg(long, global = true, value_enum, env = "STORYTELLER_CREDENTIAL_STORE")]
    credential_store: Option<StoreArg>,
}

#[derive(Clone, Copy, ValueEnum)]
enum StoreArg {
    /// The OS keychain when usable, else the encrypted file
    Auto,
    /// The OS keychain only
    Keychain,
    /// The encrypted file credentials.enc in the data directory
    File,
}

impl PlaceArgs {
    fn place(&self) -> Place {
        Place {
            data_dir: self.data_dir.clone(),
            credential_store: self.credential_store.map(|c| match c {
                StoreArg::Auto => CredentialStoreChoice::Auto,
                StoreArg::Keychain => CredentialStoreChoice::Keychain,
                StoreArg::File => CredentialStoreChoice::File,
            }),
            project: self.project.clone(),
        }
    }
}

#[derive(Args)]
struct ProviderArgs {
    #[command(flatten)]
    place: PlaceArgs,
    #[command(subcommand)]
    command: ProviderCommand,
}

#[derive(Subcommand)]
enum ProviderCommand {
    /// Add a provider: the connection is tested first, and nothing is saved if it fails.
    Add {
        /// openai, claude, gemini, deepseek, yandex, scaleway, openrouter or custom
        provider: String,
        /// The model [default: the catalogue's default for the provider]
        #[arg(long)]
        model: Option<String>,
        /// Base URL up to the API version, e.g. https://api.openai.com/v1 (required for custom)
        #[arg(long)]
        endpoint: Option<String>,
        /// What to call it in menus and messages
        #[arg(long)]
        display_name: Option<String>,
        /// Make it the project's primary provider
        #[arg(long)]
        primary: bool,
        /// Use the key of this named session instead of an own key
        #[arg(long, value_name = "NAME")]
        session: Option<String>,
        /// A provider option: folderId=… (yandex), organization=… / project=… (openai), euResident=true (custom), allowInsecureHttp=true (plain http:// to another host)
        #[arg(long = "option", value_name = "NAME=VALUE")]
        options: Vec<String>,
        /// Read the key from the first line of stdin instead of asking
        #[arg(long)]
        key_stdin: bool,
        /// No stored key: the system key from the environment (OPENAI_API_KEY, …), or none for a
        /// custom endpoint
        #[arg(long, conflicts_with_all = ["key_stdin", "session"])]
        no_key: bool,
    },
    /// Sign in with OpenRouter in a browser (OAuth PKCE): the key is saved as a named session
    /// and the project's OpenRouter provider uses it. The code the browser shows may be pasted.
    SignIn {
        /// openrouter
        provider: String,
        /// Name of the session the key is saved as [default: openrouter-DATE-TIME]
        #[arg(long, value_name = "NAME")]
        session: Option<String>,
        /// Only print the address to open (remote machines)
        #[arg(long)]
        no_browser: bool,
    },
    /// List the project's providers (key source and a masked hint, never the key).
    List {
        /// JSON, as the editor's storyteller.providers.list returns it
        #[arg(long)]
        json: bool,
    },
    /// Test a connection without saving anything: a new provider kind, or a stored one (--id).
    Test {
        /// The provider kind to test (without --id)
        provider: Option<String>,
        /// A stored provider to test, with its own key unless another is given
        #[arg(long)]
        id: Option<i64>,
        #[arg(long)]
        model: Option<String>,
        #[arg(long)]
        endpoint: Option<String>,
        #[arg(long = "option", value_name = "NAME=VALUE")]
        options: Vec<String>,
        /// Read the key to test from the first line of stdin
        #[arg(long, conflicts_with = "ask_key")]
        key_stdin: bool,
        /// Ask for the key to test [default: the stored key, else the system key]
        #[arg(long)]
        ask_key: bool,
        #[arg(long)]
        json: bool,
    },
    /// Change a provider; a new key, model, endpoint or option is tested before it is saved.
    Update {
        id: i64,
        #[arg(long)]
        model: Option<String>,
        #[arg(long)]
        endpoint: Option<String>,
        /// Return to the provider's default endpoint
        #[arg(long)]
        default_endpoint: bool,
        #[arg(long)]
        display_name: Option<String>,
        /// Route requests to it (true) or not (false)
        #[arg(long, value_name = "BOOL")]
        active: Option<bool>,
        #[arg(long = "option", value_name = "NAME=VALUE")]
        options: Vec<String>,
        /// Replace the key with the first line of stdin
        #[arg(long)]
        key_stdin: bool,
        /// Replace the key (asks for it)
        #[arg(long)]
        new_key: bool,
    },
    /// Remove a provider and its stored key (asks first unless --yes).
    Remove {
        id: i64,
        /// Do not ask for confirmation
        #[arg(long, short)]
        yes: bool,
    },
    /// Make a provider the project's primary.
    SetPrimary { id: i64 },
    /// List the models a provider offers: a stored one (its id) or a kind (--provider).
    Models {
        id: Option<i64>,
        #[arg(long)]
        provider: Option<String>,
        #[arg(long)]
        endpoint: Option<String>,
        #[arg(long = "option", value_name = "NAME=VALUE")]
        options: Vec<String>,
        /// Read the key from the first line of stdin [default: the system key]
        #[arg(long)]
        key_stdin: bool,
        #[arg(long)]
        json: bool,
    },
    /// Requests per provider from the request log: ok and errors by kind, median and 95th
    /// percentile latency, tokens, last used.
    Stats {
        /// The last N days
        #[arg(long, default_value_t = 30)]
        days: u32,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
struct PromptsArgs {
    #[command(flatten)]
    place: PlaceArgs,
    #[command(subcommand)]
    command: PromptsCommand,
}

#[derive(Subcommand)]
enum PromptsCommand {
    /// The templates with version, activation, weight, usage and success rate.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Choose a version of a template: alone (no --weight), or in the A/B pool with a weight.
    SetActive {
        name: String,
        version: u32,
        /// Join the A/B pool with this weight (0 or more); the other versions keep theirs
        #[arg(long)]
        weight: Option<f64>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
struct ResidencyArgs {
    #[command(flatten)]
    place: PlaceArgs,
    /// allow, keep-eu-only, or ask (forget the answer); none: show it
    answer: Option<cli::residency::Answer>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct NotesArgs {
    /// The workspace folder [default: the current directory]
    #[arg(long)]
    workspace: Option<std::path::PathBuf>,
    /// A place in the manuscript: FILE:LINE or FILE:LINE:COLUMN (from 1; the end of the line
    /// without a column)
    #[arg(long)]
    at: Option<String>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct DoctorArgs {
    #[command(flatten)]
    place: PlaceArgs,
    /// Also test the connection of every active provider (bounded time each)
    #[arg(long)]
    check_connections: bool,
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
        Some(Command::Provider(args)) => provider_command(args),
        Some(Command::Prompts(args)) => {
            let place = args.place.place();
            let _log = terminal_log(&place);
            match args.command {
                PromptsCommand::List { json } => {
                    cli::run(async { cli::prompts::list(&place, json).await })
                }
                PromptsCommand::SetActive {
                    name,
                    version,
                    weight,
                    json,
                } => cli::run(async {
                    cli::prompts::set_active(&place, &name, version, weight, json).await
                }),
            }
        }
        Some(Command::Residency(args)) => {
            let place = args.place.place();
            let _log = terminal_log(&place);
            cli::run(async { cli::residency::run(&place, args.answer, args.json).await })
        }
        Some(Command::Notes(args)) => {
            cli::run(async { cli::notes::list(args.workspace, args.at, args.json).await })
        }
        Some(Command::Doctor(args)) => {
            let place = args.place.place();
            let _log = terminal_log(&place);
            let mut exit = cli::Exit::Ok;
            let code = cli::run(async {
                exit = cli::doctor::run(&place, args.check_connections).await?;
                Ok(())
            });
            if exit == cli::Exit::Ok {
                code
            } else {
                exit.into()
            }
        }
    }
}

fn demo() -> ExitCode {
    // Only errors on stderr: the transcript on stdout is what the author reads.
    let _log = telemetry::init(None, "error");
    let mut stdout = std::io::stdout();
    match block_on(Threads::Many, demo::run(&mut stdout)) {
        Some(Ok(())) => ExitCode::SUCCESS,
        Some(Err(e)) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
        None => ExitCode::FAILURE,
    }
}

/// How many threads the runtime of a command runs its tasks on.
enum Threads {
    One,
    Many,
}

/// Runs `work` on a new Tokio runtime, then gives stragglers 100 ms: Tokio's stdin reader sits in
/// a blocking read that only the other end can end, and nothing else may hold the exit up.
/// `None` (after an error line) when the runtime cannot be started.
fn block_on<F: std::future::Future>(threads: Threads, work: F) -> Option<F::Output> {
    let mut builder = match threads {
        Threads::One => tokio::runtime::Builder::new_current_thread(),
        Threads::Many => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return None;
        }
    };
    let output = runtime.block_on(work);
    runtime.shutdown_timeout(Duration::from_millis(100));
    Some(output)
}

/// Logs of terminal commands: errors only, on stderr and in the data directory's log file. What
/// the author must know (a repair, the weaker key file when a key is stored there) the commands
/// print themselves, once, instead of a log line on every run.
fn terminal_log(place: &Place) -> telemetry::LogGuard {
    telemetry::init(cli::log_dir(place).as_deref(), "error")
}

fn provider_command(args: ProviderArgs) -> ExitCode {
    let place = args.place.place();
    let _log = terminal_log(&place);
    let place = &place;
    match args.command {
        ProviderCommand::Add {
            provider,
            model,
            endpoint,
            display_name,
            primary,
            session,
            options,
            key_stdin,
            no_key,
        } => cli::run(provider::add(
            place,
            provider::AddOptions {
                provider,
                model,
                endpoint,
                display_name,
                primary,
                session,
                options,
                key_stdin,
                no_key,
            },
        )),
        ProviderCommand::SignIn {
            provider,
            session,
            no_browser,
        } => cli::run(cli::sign_in::sign_in(
            place,
            cli::sign_in::SignInOptions {
                provider,
                session,
                no_browser,
            },
        )),
        ProviderCommand::List { json } => cli::run(provider::list(place, json)),
        ProviderCommand::Test {
            provider,
            id,
            model,
            endpoint,
            options,
            key_stdin,
            ask_key,
            json,
        } => cli::run(provider::test(
            place,
            provider::TestOptions {
                provider,
                id,
                model,
                endpoint,
                options,
                key_stdin,
                ask_key,
                json,
            },
        )),
        ProviderCommand::Update {
            id,
            model,
            endpoint,
            default_endpoint,
            display_name,
            active,
            options,
            key_stdin,
            new_key,
        } => cli::run(provider::update(
            place,
            provider::UpdateOptions {
                id,
                model,
                endpoint,
                default_endpoint,
                display_name,
                active,
                options,
                key_stdin,
                new_key,
            },
        )),
        ProviderCommand::Remove { id, yes } => cli::run(provider::remove(place, id, yes)),
        ProviderCommand::SetPrimary { id } => cli::run(provider::set_primary(place, id)),
        ProviderCommand::Models {
            id,
            provider,
            endpoint,
            options,
            key_stdin,
            json,
        } => cli::run(provider::models(
            place,
            provider::ModelsOptions {
                id,
                provider,
                endpoint,
                options,
                key_stdin,
                json,
            },
        )),
        ProviderCommand::Stats { days, json } => cli::run(provider::stats(place, days, json)),
    }
}

fn simulator(args: SimulatorArgs) -> ExitCode {
    let _log = telemetry::init(None, "info");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], args.port));
    match block_on(Threads::Many, simulator::run_standalone(addr)) {
        Some(Ok(())) => ExitCode::SUCCESS,
        Some(Err(e)) => {
            eprintln!("simulator: {e}");
            ExitCode::FAILURE
        }
        None => ExitCode::FAILURE,
    }
}

fn serve() -> ExitCode {
    storyteller_lsp::memory::tune_allocator();
    let settings = Settings::default();
    let log_dir = settings.data_dir().map(|dir| dir.join("logs"));
    let log = Arc::new(telemetry::init(log_dir.as_deref(), &settings.log_level));
    // One runtime thread: a language server serves one editor, its protocol work is short, and
    // everything slow is elsewhere (the network, waited on by the reactor; SQLite, the keychain,
    // file reads and indexing, on the blocking pool). Without hand-offs between worker threads
    // the server's own time per inline completion drops by about a third (benches/inline.rs).
    // The session is a task, not the future the runtime blocks on: a task that another wakes
    // (the HTTP connection handing over an answer, a reply queued for the writer) runs in the
    // same turn, where the blocked-on future would wait for a turn of the I/O driver first — a
    // system call per wake, three per inline completion (benches/inline.rs). A panic in it
    // ends the session as before: the task's error is a failed exit.
    let session = lsp::serve_stdio(Some(log.clone()));
    let status = block_on(
        Threads::One,
        async move { tokio::spawn(session).await.ok() },
    )
    .flatten();
    // The last reference: dropping it flushes the log file.
    drop(log);
    match status {
        Some(lsp::ExitStatus::Clean) => ExitCode::SUCCESS,
        Some(lsp::ExitStatus::WithoutShutdown) | None => ExitCode::FAILURE,
    }
}
