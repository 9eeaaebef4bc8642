//! `nightlatch-keys`: see the crate documentation (README.md).

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use keys_ceremony::cmd::Cli;

fn main() -> ExitCode {
    // Usage errors exit with code 2 here (clap's convention); --help exits 0.
    let cli = Cli::parse();
    // Fails only if a hook is already installed, which is fine.
    // Errors wrap at $COLUMNS when set (scripts and tests), else the terminal's width.
    let width = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse::<usize>().ok());
    let _ = miette::set_hook(Box::new(move |_| {
        let opts = miette::MietteHandlerOpts::new();
        Box::new(
            match width {
                Some(w) => opts.width(w),
                None => opts,
            }
            .build(),
        )
    }));
    match cli.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // A bad key spec is reported here, not by clap (so a PIN in it is
            // never echoed), but it is still a usage error: exit 2.
            let usage = matches!(err, nightlatch_repo::Error::Pkcs11Uri { .. });
            let report = miette::Report::new(err);
            let _ = writeln!(std::io::stderr(), "{report:?}");
            if usage {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
