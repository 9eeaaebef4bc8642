//! `nightlatch`: the operator CLI of Nightlatch, a client of
//! `nightlatch-server`'s admin API (never its database).
//!
//! See the crate README for the commands, their `--json` shapes, the exit
//! codes and the config file.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;

mod cli;
mod client;
mod cmd;
mod config;
mod error;
mod output;
mod watch;

use cli::{Cli, Command};
use client::Client;
use config::{ConfigFile, Secret, check_profile_name, config_path};
use error::{CliError, CliResult};
use output::Out;

/// What every command gets: how to print, the global flags.
#[derive(Debug)]
pub struct Ctx {
    /// Output.
    pub out: Out,
    /// `--yes`.
    pub yes: bool,
    /// `--debug`.
    pub debug: bool,
    /// `--profile`.
    pub profile: Option<String>,
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Ctx {
    /// The API client: an explicit `--profile` from the config file; else
    /// `NIGHTLATCH_SERVER` / `NIGHTLATCH_TOKEN` over the default profile.
    pub fn client(&self) -> CliResult<Client> {
        let path = config_path()?;
        let cfg = ConfigFile::load(&path)?;
        let login_hint = |name: &str| {
            format!(
                "not logged in: run `nightlatch login --server URL{}` (config file {})",
                if name == config::DEFAULT_PROFILE {
                    String::new()
                } else {
                    format!(" --profile {name}")
                },
                path.display()
            )
        };
        let (name, server, token, source) = if let Some(name) = &self.profile {
            check_profile_name(name)?;
            let p = cfg
                .profiles
                .get(name)
                .ok_or_else(|| CliError::NotLoggedIn(login_hint(name)))?;
            (name.clone(), p.server.clone(), p.token.clone(), "profile")
        } else {
            let name = cfg.profile_name(None);
            let p = cfg.profiles.get(&name);
            let server = env_nonempty("NIGHTLATCH_SERVER")
                .or_else(|| p.map(|p| p.server.clone()))
                .ok_or_else(|| CliError::NotLoggedIn(login_hint(&name)))?;
            let (token, source) = match env_nonempty("NIGHTLATCH_TOKEN") {
                Some(t) => (Some(Secret::new(t.trim().to_owned())), "NIGHTLATCH_TOKEN"),
                None => (p.and_then(|p| p.token.clone()), "profile"),
            };
            (name, server, token, source)
        };
        let token = token.ok_or_else(|| CliError::NotLoggedIn(login_hint(&name)))?;
        let server = client::normalise_server(&server)?;
        if self.debug {
            eprintln!(
                "debug: config {}, profile {name}, server {server}, token from {source}",
                path.display()
            );
        }
        Client::new(server, token, self.debug)
    }

    /// Ask before a destructive action: a y/N question on a terminal, or
    /// `--yes` when stdin or stderr is not a terminal (exit 2 without it).
    pub fn confirm(&self, question: &str) -> CliResult<()> {
        if self.yes {
            return Ok(());
        }
        if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
            return Err(CliError::usage(format!(
                "{question} — refusing without confirmation: not on a terminal; pass --yes to confirm"
            )));
        }
        eprint!("{question} [y/N] ");
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| CliError::other(format!("cannot read the answer: {e}")))?;
        match line.trim().to_ascii_lowercase().as_str() {
            "y" | "yes" => Ok(()),
            _ => Err(CliError::other("cancelled; nothing was changed")),
        }
    }
}

fn run(cli: Cli) -> CliResult<()> {
    let ctx = Ctx {
        out: Out::new(cli.json),
        yes: cli.yes,
        debug: cli.debug,
        profile: cli.profile,
    };
    match cli.command {
        Command::Login(a) => cmd::auth::login(&ctx, a),
        Command::Logout => cmd::auth::logout(&ctx),
        Command::Whoami => cmd::auth::whoami(&ctx),
        Command::Release(c) => cmd::release::run(&ctx, c),
        Command::Rollout(c) => cmd::rollout::run(&ctx, c),
        Command::Device(c) => cmd::device::run(&ctx, c),
        Command::Site(c) => cmd::site::run(&ctx, c),
        Command::Fleet(c) => cmd::fleet::run(&ctx, c),
        Command::Audit(c) => cmd::audit::run(&ctx, c),
        Command::Token(c) => cmd::token::run(&ctx, c),
        Command::Webhook(c) => cmd::webhook::run(&ctx, c),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    match run(cli) {
        Ok(()) => ExitCode::from(error::EXIT_OK),
        Err(e) => {
            if json {
                eprintln!("{}", e.to_json());
            } else {
                eprintln!("error: {e}");
            }
            ExitCode::from(e.exit_code())
        }
    }
}
