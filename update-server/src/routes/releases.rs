//! Admin: the release catalog (`GET /admin/v1/releases?model=`): every
//! firmware image the served image repository publishes, newest version
//! first within each hardware model, with the patches that rebuild it.
//!
//! `published_at` is when the repository first published the image: the
//! time the server accepted the first targets metadata of the image's role
//! (`N.ROLE.json`, audit action `repo.metadata`) at or after the image file
//! was first uploaded (`repo.target`, by its consistent-snapshot path). TUF
//! targets metadata carries no signing time, so this comes from the audit
//! log; it is null for images the log does not show being uploaded (the dev
//! bootstrap's, or a repository older than the log).

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use nightlatch_repo::repo::target::Kind;
use serde::Deserialize;
use serde_json::json;

use crate::error::AppResult;
use crate::repo::catalog::CatalogTarget;
use crate::rollouts::version;
use crate::routes::extract::ApiQuery;
use crate::routes::time;
use crate::state::AppState;

/// `?model=`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleasesQuery {
    model: Option<String>,
}

/// Most upload entries read from the audit log.
const LOG_MAX: i64 = 100_000;

/// The consistent-snapshot path of target `name` (`<dir>/<sha256>.<base>`).
fn consistent_path(t: &CatalogTarget) -> String {
    match t.name.rsplit_once('/') {
        Some((dir, base)) => format!("{dir}/{}.{base}", t.sha256()),
        None => format!("{}.{}", t.sha256(), t.name),
    }
}

/// `GET /admin/v1/releases`.
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ReleasesQuery>,
) -> AppResult<Json<serde_json::Value>> {
    let catalog = state.repo.catalog();
    let model = q.model.filter(|m| !m.is_empty());
    let mut images: Vec<&CatalogTarget> = catalog
        .all()
        .filter(|t| t.kind == Kind::Firmware)
        .filter(|t| model.as_deref().is_none_or(|m| t.hardware_model == m))
        .collect();
    images.sort_by(|a, b| {
        a.hardware_model.cmp(&b.hardware_model).then_with(|| {
            (version::order(&b.version), &b.version, &b.name).cmp(&(
                version::order(&a.version),
                &a.version,
                &a.name,
            ))
        })
    });
    let uploads = state.store.target_uploads(LOG_MAX).await?;
    let mut published: HashMap<&str, Option<i64>> = HashMap::new();
    for img in &images {
        let at = match uploads.get(&consistent_path(img)) {
            Some(&uploaded) => {
                state
                    .store
                    .metadata_accepted_after(&img.role, uploaded)
                    .await?
            }
            None => None,
        };
        published.insert(img.name.as_str(), at);
    }
    let releases: Vec<serde_json::Value> = images
        .iter()
        .map(|img| {
            let mut patches: Vec<&CatalogTarget> = catalog
                .all()
                .filter(|p| {
                    p.kind == Kind::Patch
                        && p.hardware_model == img.hardware_model
                        && p.target.as_ref().is_some_and(|t| t.sha256 == img.sha256())
                })
                .collect();
            patches.sort_by(|a, b| {
                let v =
                    |p: &CatalogTarget| p.base.as_ref().and_then(|b| version::order(&b.version));
                (v(b), &b.name).cmp(&(v(a), &a.name))
            });
            json!({
                "name": img.name,
                "hardware_model": img.hardware_model,
                "version": img.version,
                "security_counter": img.security_counter,
                "length": img.file.length,
                "sha256": img.sha256(),
                "published_at": time(published.get(img.name.as_str()).copied().flatten()),
                "patches": patches.iter().map(|p| json!({
                    "name": p.name,
                    "from_version": p.base.as_ref().map(|b| &b.version),
                    "length": p.file.length,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(Json(json!({ "releases": releases })))
}
