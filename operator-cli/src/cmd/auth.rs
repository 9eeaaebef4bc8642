//! `login`, `logout`, `whoami`.

use std::io::{IsTerminal, Read};

use serde_json::{Value, json};

use crate::Ctx;
use crate::cli::LoginArgs;
use crate::client::{Client, normalise_server};
use crate::config::{ConfigFile, Profile, Secret, check_profile_name, config_path};
use crate::error::{CliError, CliResult};

/// The token: from stdin when it is not a terminal, else asked for without
/// echo. Never from the command line (it would show in `ps` and shell
/// history).
fn read_token(server: &str) -> CliResult<Secret> {
    let text = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("Admin token for {server}: "))
            .map_err(|e| CliError::other(format!("cannot read the token: {e}")))?
    } else {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| CliError::other(format!("cannot read the token from stdin: {e}")))?;
        s
    };
    let token = text.trim();
    if token.is_empty() {
        return Err(CliError::usage(
            "no token given: pipe it on stdin (`nightlatch login --server URL < token-file`) or type it at the prompt",
        ));
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(CliError::usage(
            "the token must be one word on one line (as `token create` shows it)",
        ));
    }
    Ok(Secret::new(token.to_owned()))
}

/// `login`.
pub fn login(ctx: &Ctx, args: LoginArgs) -> CliResult<()> {
    let path = config_path()?;
    let mut cfg = ConfigFile::load(&path)?;
    let name = cfg.profile_name(ctx.profile.as_deref());
    check_profile_name(&name)?;
    let server = args
        .server
        .or_else(|| cfg.profiles.get(&name).map(|p| p.server.clone()))
        .ok_or_else(|| {
            CliError::usage(format!(
                "profile {name} has no server yet: run `nightlatch login --server URL`"
            ))
        })?;
    let server = normalise_server(&server)?;
    let token = read_token(&server)?;
    let client = Client::new(server.clone(), token.clone(), ctx.debug)?;
    let who = client.get("/admin/v1/whoami", &Vec::new())?;
    cfg.profiles.insert(
        name.clone(),
        Profile {
            server: server.clone(),
            token: Some(token),
        },
    );
    if args.set_default || cfg.default_profile.is_none() {
        cfg.default_profile = Some(name.clone());
    }
    cfg.save(&path)?;
    let v = json!({
        "profile": name,
        "server": server,
        "config": path.display().to_string(),
        "default": cfg.default_profile.as_deref() == Some(name.as_str()),
        "id": who["id"],
        "name": who["name"],
        "role": who["role"],
    });
    if ctx.out.json {
        return ctx.out.json(&v);
    }
    eprintln!(
        "Logged in to {server} as {} ({}); token saved in profile {name} of {}",
        who["name"].as_str().unwrap_or("?"),
        who["role"].as_str().unwrap_or("?"),
        path.display()
    );
    ctx.out.print_fields(&v)
}

/// `logout`: remove the profile's token (the server URL stays).
pub fn logout(ctx: &Ctx) -> CliResult<()> {
    let path = config_path()?;
    let mut cfg = ConfigFile::load(&path)?;
    let name = cfg.profile_name(ctx.profile.as_deref());
    check_profile_name(&name)?;
    let had = cfg
        .profiles
        .get_mut(&name)
        .and_then(|p| p.token.take())
        .is_some();
    if had {
        cfg.save(&path)?;
        eprintln!(
            "Logged out of profile {name}: its token was removed from {} (it is still valid on \
             the server; `nightlatch token revoke ID` ends it)",
            path.display()
        );
    } else {
        eprintln!("Profile {name} was not logged in.");
    }
    let v = json!({ "profile": name, "logged_out": had });
    if ctx.out.json {
        return ctx.out.json(&v);
    }
    ctx.out.print_fields(&v)
}

/// `whoami`.
pub fn whoami(ctx: &Ctx) -> CliResult<()> {
    let client = ctx.client()?;
    let who = client.get("/admin/v1/whoami", &Vec::new())?;
    if ctx.out.json {
        return ctx.out.json(&who);
    }
    let mut v = who.clone();
    if let Value::Object(m) = &mut v {
        m.insert("server".into(), json!(client.base()));
    }
    ctx.out.print_fields(&v)
}
