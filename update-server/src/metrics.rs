//! Prometheus metrics at `GET /metrics`. Labels are bounded: route
//! *templates* (never raw paths), methods from a fixed set (anything else is
//! `other`), status classes, result codes from
//! a fixed set, rollout ids (as many as operators create) and wave indexes.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// Every metric the server exports.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    /// HTTP requests by route template, method and status class.
    pub http_requests: IntCounterVec,
    /// HTTP latency by route template and method.
    pub http_duration: HistogramVec,
    /// Check-ins by result (`accepted` or an error code).
    pub checkins: IntCounterVec,
    /// Check-ins per batch.
    pub checkin_batch: Histogram,
    /// Seconds per batch stage (`load`, `verify`, `plan`, `commit`, `sign`).
    pub checkin_stage: HistogramVec,
    /// Repository downloads by kind (`metadata`, `target`, `director`).
    pub downloads: IntCounterVec,
    /// Bytes sent by kind.
    pub download_bytes: IntCounterVec,
    /// [`Self::downloads`] and [`Self::download_bytes`] of each of
    /// [`DOWNLOAD_KINDS`], resolved once (no label lookup per request).
    download_handles: Vec<(IntCounter, IntCounter)>,
    /// New assignments by rollout, wave and delivery (`patch`, `full`).
    pub assignments: IntCounterVec,
    /// Reported outcomes by rollout and status.
    pub rollout_outcomes: IntCounterVec,
    /// Automatic pauses by rollout.
    pub rollout_auto_pauses: IntCounterVec,
    /// Locks per rollout, wave and status (refreshed periodically).
    pub rollout_devices: IntGaugeVec,
    /// Repository refreshes by result.
    pub repo_refreshes: IntCounterVec,
    /// Refused admin authentications by reason (`missing_token`,
    /// `bad_token`, `forbidden`: [`crate::auth::REFUSAL_REASONS`]).
    pub auth_refusals: IntCounterVec,
    /// Connections and requests refused by the server's limits, by reason
    /// (`connection_limit`, `client_connection_limit`, `rate_limited`,
    /// `refusal_limited`, `accept_error`).
    pub http_refused: IntCounterVec,
    /// Webhook delivery attempts by outcome (`delivered`, `failed`: a
    /// non-2xx answer, `error`: no answer or a refused address).
    pub webhook_attempts: IntCounterVec,
    /// Subscriptions disabled after a run of failures.
    pub webhooks_disabled: IntCounter,
    /// Seconds from an event being written to its delivery.
    pub webhook_delay: Histogram,
}

fn counter(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntCounterVec> {
    let c = IntCounterVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

impl Metrics {
    /// A fresh registry with every metric.
    pub fn new() -> anyhow::Result<Self> {
        let r = Registry::new();
        let latency = vec![
            0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
        ];
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "nightlatch_http_request_duration_seconds",
                "HTTP request latency",
            )
            .buckets(latency.clone()),
            &["route", "method"],
        )?;
        r.register(Box::new(http_duration.clone()))?;
        let checkin_batch = Histogram::with_opts(
            HistogramOpts::new("nightlatch_checkin_batch_size", "Check-ins per batch")
                .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]),
        )?;
        r.register(Box::new(checkin_batch.clone()))?;
        let checkin_stage = HistogramVec::new(
            HistogramOpts::new(
                "nightlatch_checkin_stage_seconds",
                "Time per check-in batch stage",
            )
            .buckets(latency),
            &["stage"],
        )?;
        r.register(Box::new(checkin_stage.clone()))?;
        let rollout_devices = IntGaugeVec::new(
            Opts::new(
                "nightlatch_rollout_devices",
                "Locks per rollout, wave and status",
            ),
            &["rollout", "wave", "status"],
        )?;
        r.register(Box::new(rollout_devices.clone()))?;
        let webhooks_disabled = IntCounter::new(
            "nightlatch_webhooks_disabled_total",
            "Webhook subscriptions disabled after a run of failed deliveries",
        )?;
        r.register(Box::new(webhooks_disabled.clone()))?;
        let webhook_delay = Histogram::with_opts(
            HistogramOpts::new(
                "nightlatch_webhook_delivery_delay_seconds",
                "Time from an event being written to its delivery",
            )
            .buckets(vec![
                0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0, 300.0, 3600.0,
            ]),
        )?;
        r.register(Box::new(webhook_delay.clone()))?;
        let mut m = Self {
            webhook_attempts: counter(
                &r,
                "nightlatch_webhook_attempts_total",
                "Webhook delivery attempts by outcome",
                &["outcome"],
            )?,
            webhooks_disabled,
            webhook_delay,
            http_requests: counter(
                &r,
                "nightlatch_http_requests_total",
                "HTTP requests",
                &["route", "method", "status"],
            )?,
            checkins: counter(
                &r,
                "nightlatch_checkins_total",
                "Check-ins by result",
                &["result"],
            )?,
            downloads: counter(
                &r,
                "nightlatch_downloads_total",
                "Repository downloads",
                &["kind"],
            )?,
            download_bytes: counter(
                &r,
                "nightlatch_download_bytes_total",
                "Repository bytes sent",
                &["kind"],
            )?,
            assignments: counter(
                &r,
                "nightlatch_rollout_assignments_total",
                "New assignments",
                &["rollout", "wave", "delivery"],
            )?,
            rollout_outcomes: counter(
                &r,
                "nightlatch_rollout_outcomes_total",
                "Reported outcomes",
                &["rollout", "status"],
            )?,
            rollout_auto_pauses: counter(
                &r,
                "nightlatch_rollout_auto_pauses_total",
                "Automatic pauses",
                &["rollout"],
            )?,
            repo_refreshes: counter(
                &r,
                "nightlatch_repo_refreshes_total",
                "Snapshot/timestamp refreshes",
                &["result"],
            )?,
            auth_refusals: counter(
                &r,
                "nightlatch_admin_auth_refusals_total",
                "Refused admin authentications by reason",
                &["reason"],
            )?,
            http_refused: counter(
                &r,
                "nightlatch_http_refused_total",
                "Connections and requests refused by the server's limits",
                &["reason"],
            )?,
            download_handles: Vec::new(),
            registry: r,
            http_duration,
            checkin_batch,
            checkin_stage,
            rollout_devices,
        };
        m.download_handles = DOWNLOAD_KINDS
            .iter()
            .map(|k| {
                (
                    m.downloads.with_label_values(&[k]),
                    m.download_bytes.with_label_values(&[k]),
                )
            })
            .collect();
        Ok(m)
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::error!(error = %e, "encoding metrics");
        }
        String::from_utf8(buf).unwrap_or_default()
    }

    /// Count a repository download of `bytes` bytes of `kind` (`metadata`,
    /// `target`, `director`).
    pub fn record_download(&self, kind: &'static str, bytes: u64) {
        let i = DOWNLOAD_KINDS.iter().position(|k| *k == kind);
        match i.and_then(|i| self.download_handles.get(i)) {
            Some((n, b)) => {
                n.inc();
                b.inc_by(bytes);
            }
            None => {
                self.downloads.with_label_values(&[kind]).inc();
                self.download_bytes.with_label_values(&[kind]).inc_by(bytes);
            }
        }
    }

    /// Time a stage of the check-in pipeline.
    pub fn stage(&self, stage: &str, since: Instant) {
        self.checkin_stage
            .with_label_values(&[stage])
            .observe(since.elapsed().as_secs_f64());
    }
}

/// The kinds of [`Metrics::record_download`].
pub const DOWNLOAD_KINDS: [&str; 3] = ["metadata", "target", "director"];

/// The `method` label: one of the methods the server routes, else `other`.
/// (HTTP lets a client send any token as its method; taking it verbatim
/// would let anyone without a token grow the registry without bound.)
pub fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Middleware: count and time every request by its route template.
pub async fn track(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    // The template is shared (`Arc<str>`): cloning it allocates nothing.
    let route = req.extensions().get::<MatchedPath>().cloned();
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    let method = method_label(req.method());
    let start = Instant::now();
    let response = next.run(req).await;
    let class = match response.status().as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    metrics
        .http_requests
        .with_label_values(&[route, method, class])
        .inc();
    metrics
        .http_duration
        .with_label_values(&[route, method])
        .observe(start.elapsed().as_secs_f64());
    response
}
