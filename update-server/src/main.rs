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
    /// Administrative recovery, run on the server's machine: mint a new
    /// security-admin token directly in the fleet database (the configured
    /// one: --data-dir, --config or --database-url) when the last admin
    /// token is lost, optionally revoking the lost or leaked ones, with an
    /// audit entry. The token is printed once on stdout (or written to
    /// --out, mode 0600). Works while the server runs.
    RecoverAdmin {
        /// Name of the new token.
        #[arg(long, default_value = "recovered-admin")]
        name: String,
        /// Revoke every live security-admin token (lost or leaked).
        #[arg(long, conflicts_with = "revoke_all")]
        revoke_security_admins: bool,
        /// Revoke every live token of every role.
        #[arg(long)]
        revoke_all: bool,
        /// Token lifetime (`1d`, `12h`; more than zero); default: until
        /// revoked.
        #[arg(long, value_name = "DURATION", value_parser = token_lifetime, allow_hyphen_values = true)]
        expires_in: Option<String>,
        /// Write the token to this file (created 0600) instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<std::path::PathBuf>,
    },
}

/// `recover-admin --expires-in`: a humantime duration above zero (a zero
/// or negative lifetime would mint a token that is already expired, and
/// leave the operator locked out), passed on trimmed.
fn token_lifetime(text: &str) -> Result<String, String> {
    let t = text.trim();
    if t.starts_with('-') {
        return Err(format!(
            "{text:?}: a token lifetime cannot be negative; give e.g. 1d or 12h"
        ));
    }
    let d = humantime::parse_duration(t)
        .map_err(|e| format!("{text:?} is not a duration ({e}); give e.g. 1d or 12h"))?;
    if d.is_zero() {
        return Err(format!(
            "{text:?}: the token would be expired at once; give a lifetime above zero (e.g. 1d), \
             or leave --expires-in out for a token that lives until revoked"
        ));
    }
    Ok(t.to_owned())
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
    let recover = match cli.command {
        Some(Command::RecoverAdmin {
            name,
            revoke_security_admins,
            revoke_all,
            expires_in,
            out,
        }) => Some((name, revoke_security_admins, revoke_all, expires_in, out)),
        _ => None,
    };
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
    if let Some((name, admins, all, expires_in, out)) = recover {
        let revoke = if all {
            update_server::store::tokens::RecoverRevoke::All
        } else if admins {
            update_server::store::tokens::RecoverRevoke::SecurityAdmins
        } else {
            update_server::store::tokens::RecoverRevoke::Nothing
        };
        return match runtime.block_on(update_server::recovery::recover_admin(
            &config,
            &name,
            revoke,
            expires_in.as_deref(),
            out.as_deref(),
        )) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("nightlatch-server recover-admin: {e:#}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    match runtime.block_on(update_server::server::serve(config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "nightlatch-server failed");
            eprintln!("nightlatch-server: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn recover_admin_lifetimes_must_be_above_zero() {
        assert_eq!(token_lifetime("1d").unwrap(), "1d");
        assert_eq!(token_lifetime(" 12h ").unwrap(), "12h");
        assert_eq!(token_lifetime("1d 12h").unwrap(), "1d 12h");
        for bad in ["0s", "0d", "0", "-1h", "-0s", "soon", ""] {
            assert!(token_lifetime(bad).is_err(), "{bad:?}");
        }
        assert!(
            token_lifetime("0s")
                .unwrap_err()
                .contains("expired at once")
        );
        assert!(token_lifetime("-1h").unwrap_err().contains("negative"));

        Cli::command().debug_assert();
        let parse = |v: &str| {
            Cli::try_parse_from(["nightlatch-server", "recover-admin", "--expires-in", v])
        };
        for bad in ["0s", "-1h"] {
            let e = parse(bad).unwrap_err();
            assert_eq!(
                e.kind(),
                clap::error::ErrorKind::ValueValidation,
                "{bad}: {e}"
            );
            assert_eq!(e.exit_code(), 2);
        }
        let cli = parse("30d").unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::RecoverAdmin { expires_in: Some(ref e), .. }) if e == "30d"
        ));
    }
}
