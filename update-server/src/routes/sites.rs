//! Admin: install policy per site (quiet-hours window, blackout dates, time
//! zone). Locks get it, signed, with their assignment.

use axum::extract::{Path, State};
use axum::{Extension, Json};
use serde_json::json;

use crate::auth::Caller;
use crate::error::{ApiError, AppResult};
use crate::ids::check_name;
use crate::routes::extract::ApiJson;
use crate::state::AppState;
use crate::wire::SitePolicy;

fn hhmm(t: &str) -> bool {
    let b = t.as_bytes();
    b.len() == 5
        && b[2] == b':'
        && t[..2].parse::<u8>().is_ok_and(|h| h < 24)
        && t[3..].parse::<u8>().is_ok_and(|m| m < 60)
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 2 || c.is_ascii_digit())
}

fn date(d: &str) -> bool {
    let b = d.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
        && d[5..7].parse::<u8>().is_ok_and(|m| (1..=12).contains(&m))
        && d[8..].parse::<u8>().is_ok_and(|x| (1..=31).contains(&x))
}

/// Check a policy.
pub fn validate(p: &SitePolicy) -> Result<(), String> {
    if let Some(w) = &p.quiet_hours
        && !(hhmm(&w.start) && hhmm(&w.end))
    {
        return Err("quiet_hours start and end must be HH:MM".into());
    }
    if p.blackout_dates.len() > 366 {
        return Err("at most 366 blackout dates".into());
    }
    if let Some(bad) = p.blackout_dates.iter().find(|d| !date(d)) {
        return Err(format!("blackout date {bad:?} is not YYYY-MM-DD"));
    }
    if let Some(tz) = &p.time_zone
        && (tz.is_empty()
            || tz.len() > 64
            || !tz
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/_+-".contains(&b)))
    {
        return Err("time_zone must be an IANA name such as Europe/Berlin".into());
    }
    Ok(())
}

/// `GET /admin/v1/sites`.
pub async fn list(State(state): State<AppState>) -> AppResult<Json<serde_json::Value>> {
    let sites = state.store.site_policies().await?;
    Ok(Json(json!({
        "sites": sites.iter().map(|(name, p)| json!({"site": name, "policy": p})).collect::<Vec<_>>(),
    })))
}

/// `GET /admin/v1/sites/{site}/policy` (the default, empty policy if never set).
pub async fn show(
    State(state): State<AppState>,
    Path(site): Path<String>,
) -> AppResult<Json<SitePolicy>> {
    Ok(Json(
        state.store.site_policy(&site).await?.unwrap_or_default(),
    ))
}

/// `PUT /admin/v1/sites/{site}/policy`.
pub async fn set(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(site): Path<String>,
    ApiJson(policy): ApiJson<SitePolicy>,
) -> AppResult<Json<SitePolicy>> {
    check_name("site", &site).map_err(ApiError::invalid)?;
    validate(&policy).map_err(ApiError::invalid)?;
    let entry = caller.audit(
        "site.policy",
        &site,
        serde_json::to_value(&policy).unwrap_or_default(),
    );
    state
        .store
        .set_site_policy(&site, &policy, state.clock.now_ms(), &entry)
        .await?;
    Ok(Json(policy))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::QuietWindow;

    #[test]
    fn policies() {
        let mut p = SitePolicy {
            quiet_hours: Some(QuietWindow {
                start: "23:30".into(),
                end: "05:00".into(),
            }),
            blackout_dates: vec!["2025-12-24".into()],
            time_zone: Some("Europe/Berlin".into()),
        };
        assert!(validate(&p).is_ok());
        p.blackout_dates.push("2025-13-01".into());
        assert!(validate(&p).is_err());
        p.blackout_dates.pop();
        p.quiet_hours = Some(QuietWindow {
            start: "24:00".into(),
            end: "1:00".into(),
        });
        assert!(validate(&p).is_err());
    }
}
