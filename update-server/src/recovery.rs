//! `nightlatch-server recover-admin`: the way back in when the last admin
//! token is lost (the seed's "administrative lockout"). It needs what only
//! the server's operator has — the server's configuration and its database
//! — and nothing from the network: it opens the fleet database directly,
//! mints a security-admin token, revokes the lost or leaked ones if asked,
//! and writes an audit entry (`token.recover`, actor `recover-admin`) in
//! the same transaction. The runbook is in update-server/README.md.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

use crate::auth::{Role, check_token_name, hash_token, new_token};
use crate::config::Config;
use crate::store::Store;
use crate::store::tokens::{RecoverRevoke, TokenRecord};

/// Mint the token; print it (or write it to `out`); log what was revoked.
pub async fn recover_admin(
    config: &Config,
    name: &str,
    revoke: RecoverRevoke,
    expires_in: Option<&str>,
    out: Option<&Path>,
) -> anyhow::Result<()> {
    check_token_name(name).map_err(|why| anyhow::anyhow!("--name: {why}"))?;
    let store = Store::connect_with(&config.database_url, config.sqlite_full_sync)
        .await
        .context("opening the fleet database")?;
    let now = crate::console::session::now_ms();
    let expires_at = match expires_in {
        None => None,
        Some(t) => {
            let d = humantime::parse_duration(t)
                .with_context(|| format!("--expires-in {t:?} is not a duration (e.g. 12h)"))?;
            Some(now.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)))
        }
    };
    let operator = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".into());
    let token = new_token();
    let record = TokenRecord {
        id: crate::ids::new_id("tok", now),
        name: name.to_owned(),
        role: Role::SecurityAdmin.as_str().into(),
        created_at: now,
        created_by: format!("recover-admin ({operator})"),
        revoked_at: None,
        expires_at,
    };
    let revoked = store
        .recover_admin(&record, &hash_token(&token), revoke, &operator)
        .await?;
    store.close().await;
    match out {
        Some(path) => {
            nightlatch_repo::fsio::write_atomic(
                path,
                format!("{token}\n").as_bytes(),
                nightlatch_repo::fsio::Access::Secret,
                false,
            )
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            eprintln!(
                "new security-admin token {} ({name}) written to {} (mode 0600)",
                record.id,
                path.display()
            );
        }
        None => {
            eprintln!(
                "new security-admin token {} ({name}); it is shown once:",
                record.id
            );
            let mut stdout = std::io::stdout().lock();
            writeln!(stdout, "{token}")?;
        }
    }
    if revoked.is_empty() {
        eprintln!("no token revoked");
    } else {
        eprintln!("revoked {} token(s): {}", revoked.len(), revoked.join(", "));
    }
    eprintln!(
        "audited as token.recover; running servers see the change within {} s",
        crate::auth::TokenCache::TTL.as_secs()
    );
    Ok(())
}
