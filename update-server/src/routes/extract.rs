//! Extractors that refuse with the service's JSON error body (axum's own
//! refuse with plain text): JSON bodies, query strings, raw bodies.

use axum::extract::rejection::{BytesRejection, JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON body.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

/// A query string.
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

/// A raw body (within the route's body limit).
#[derive(Debug, Clone)]
pub struct ApiBytes(pub Bytes);

fn limit_or(status: StatusCode, fallback: &'static str, text: String) -> ApiError {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::client(status, "body_too_large", text),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::client(
            status,
            "unsupported_media_type",
            "send content-type: application/json",
        ),
        _ => ApiError::bad_request(fallback, text),
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(rejection) => {
                let r: JsonRejection = rejection;
                Err(limit_or(r.status(), "malformed_json", r.body_text()))
            }
        }
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Self(v)),
            Err(rejection) => {
                let r: QueryRejection = rejection;
                Err(ApiError::bad_request("bad_query", r.body_text()))
            }
        }
    }
}

impl<S: Send + Sync> FromRequest<S> for ApiBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Bytes::from_request(req, state).await {
            Ok(b) => Ok(Self(b)),
            Err(rejection) => {
                let r: BytesRejection = rejection;
                Err(limit_or(r.status(), "bad_body", r.body_text()))
            }
        }
    }
}
