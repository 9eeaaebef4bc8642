//! `nightlatch-server`: see the crate README.

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use update_server::config::{Config, LogFormat, ServeArgs};

/// Nightlatch update server: TUF image repository, Uptane-style director,
/// staged rollouts, device and admin APIs, metrics.
///
/// With only --data-dir it runs on embedded defaults (SQLite, local files)
/// and, on first start, makes UNSAFE dev keys and a first admin token under
/// the data directory.
#[derive(Debug, Parser)]
#[command(name = "nightlatch-server", version, about, long_about)]
struct Cli {
    #[command(flatten)]
    serve: ServeArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve (the default).
    Serve,
    /// Print the resolved configuration and exit.
    CheckConfig,
}

/// The system allocator spends a sixth of a busy server's time in malloc.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_env("NIGHTLATCH_LOG").unwrap_or_else(|_| {
        EnvFilter::new("info,sqlx=warn,aws_config=warn,aws_smithy_runtime=warn,tower_http=warn")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(&cli.serve) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("nightlatch-server: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    init_tracing(config.log_format);
    if matches!(cli.command, Some(Command::CheckConfig)) {
        println!("{config:#?}");
        return std::process::ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("nightlatch-server: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(update_server::server::serve(config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "nightlatch-server failed");
            eprintln!("nightlatch-server: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
