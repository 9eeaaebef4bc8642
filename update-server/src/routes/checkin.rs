//! `POST /v1/devices/{id}/check-in` (wire format: [`crate::wire`]).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;

use crate::checkin::Submission;
use crate::error::AppResult;
use crate::routes::extract::ApiBytes;
use crate::state::AppState;
use crate::wire::{CheckinResponse, SIGNATURE_HEADER};

/// Hand the check-in to the batch workers and return their answer.
pub async fn check_in(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> AppResult<Json<CheckinResponse>> {
    let signature = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let response = state
        .checkins
        .submit(Submission {
            path_id: id,
            body,
            signature,
        })
        .await?;
    Ok(Json(response))
}
