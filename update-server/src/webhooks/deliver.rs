//! The delivery loop of one replica: claim due deliveries, POST them (at
//! most `webhooks.concurrency` at once), log each attempt and schedule the
//! next. Deliveries claimed by a replica that dies are taken over when
//! their lease (`webhooks.claim_lease`) runs out, so a `kill -9` loses
//! nothing: the event is in the database and is sent again, with the same
//! id, after the restart.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use tokio::sync::{Notify, watch};

use crate::config::WebhooksConfig;
use crate::state::AppState;
use crate::store::webhooks::{AfterAttempt, Attempt, Due, RetryRules};
use crate::webhooks::{is_public, signature_header};

/// Wakes the delivery loops of this process when an event was written here
/// (they also poll, for events written by other replicas).
pub static WAKE: Notify = Notify::const_new();

/// Resolves names for deliveries, dropping addresses a webhook may not
/// reach (checked on every connection, not only when the URL was given).
#[derive(Debug, Clone, Copy)]
struct PublicOnly {
    allow_private: bool,
}

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let kept: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| allow_private || is_public(a.ip()))
                .collect();
            if kept.is_empty() {
                return Err(format!(
                    "{host} resolves to no public address ({}); refused",
                    found
                        .iter()
                        .map(|a| a.ip().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
                .into());
            }
            let addrs: Addrs = Box::new(kept.into_iter());
            Ok(addrs)
        })
    }
}

/// The HTTP client deliveries use.
pub fn client(c: &WebhooksConfig) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(c.request_timeout)
        .connect_timeout(c.request_timeout.min(Duration::from_secs(5)))
        .user_agent(concat!("nightlatch-webhooks/", env!("CARGO_PKG_VERSION")))
        .dns_resolver(Arc::new(PublicOnly {
            allow_private: c.allow_private_addresses,
        }))
        .build()?)
}

/// The retry rules of `c`.
pub fn rules(c: &WebhooksConfig) -> RetryRules {
    let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    RetryRules {
        backoff_ms: ms(c.retry_backoff),
        backoff_cap_ms: ms(c.retry_backoff_cap),
        max_attempts: c.max_attempts,
        disable_after: c.disable_after_failures,
    }
}

/// POST one delivery; never fails (a failure is an attempt's outcome).
pub async fn send(http: &reqwest::Client, due: &Due, allow_private: bool, now: i64) -> Attempt {
    let started = Instant::now();
    let elapsed = |s: Instant| i64::try_from(s.elapsed().as_millis()).unwrap_or(i64::MAX);
    // An address literal skips the resolver: check it here.
    if !allow_private
        && let Ok(url) = reqwest::Url::parse(&due.webhook.url)
        && let Some(host) = url.host_str()
        && let Ok(ip) = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
        && !is_public(ip)
    {
        return Attempt {
            status_code: None,
            latency_ms: 0,
            error: Some(format!("refused: {ip} is not a public address")),
        };
    }
    let t = now.div_euclid(1000);
    let signature = signature_header(&due.webhook.signing_secrets(now), t, due.body.as_bytes());
    let result = http
        .post(&due.webhook.url)
        .header("content-type", "application/json")
        .header("x-nightlatch-event", &due.event_type)
        .header("x-nightlatch-delivery", &due.event_id)
        .header("x-nightlatch-attempt", (due.attempts + 1).to_string())
        .header("x-nightlatch-signature", signature)
        .body(due.body.clone())
        .send()
        .await;
    match result {
        Ok(resp) => Attempt {
            status_code: Some(resp.status().as_u16()),
            latency_ms: elapsed(started),
            error: None,
        },
        Err(e) => {
            // The whole chain: "error sending request" alone says nothing.
            let mut text = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                text.push_str(": ");
                text.push_str(&s.to_string());
                source = s.source();
            }
            text.truncate(500);
            Attempt {
                status_code: None,
                latency_ms: elapsed(started),
                error: Some(text),
            }
        }
    }
}

/// How many deliveries one claim takes: as many as `concurrency` senders
/// can finish well inside the lease even if every request runs to its
/// timeout (rounds of `concurrency`, each at most `request_timeout`, in
/// three quarters of `claim_lease`), so a slow receiver does not let the
/// lease run out and another replica send the same deliveries again.
pub fn batch_size(c: &crate::config::WebhooksConfig) -> usize {
    let budget = c.claim_lease.as_millis().saturating_mul(3) / 4;
    let per_round = c.request_timeout.as_millis().max(1);
    let rounds = usize::try_from(budget / per_round).unwrap_or(1).clamp(1, 4);
    c.concurrency.saturating_mul(rounds)
}

/// Claim and deliver until `stop` changes.
pub async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    let c = state.config.webhooks.clone();
    let http = match client(&c) {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(error = %e, "webhook delivery cannot start: no HTTP client");
            return;
        }
    };
    let rules = rules(&c);
    let lease = i64::try_from(c.claim_lease.as_millis()).unwrap_or(30_000);
    let batch = i64::try_from(batch_size(&c)).unwrap_or(16);
    loop {
        if *stop.borrow() {
            break;
        }
        let now = state.clock.now_ms();
        let due = match state.store.claim_deliveries(now, lease, batch).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "claiming webhook deliveries failed");
                Vec::new()
            }
        };
        let full = due.len() as i64 == batch;
        if !due.is_empty() {
            // Send at most `concurrency` at once; log the whole batch in one
            // transaction (one commit instead of one per attempt).
            let done: Vec<(Due, Attempt)> = futures_util::stream::iter(due)
                .map(|d| {
                    let (state, http) = (state.clone(), http.clone());
                    async move {
                        let attempt =
                            send(&http, &d, c.allow_private_addresses, state.clock.now_ms()).await;
                        (d, attempt)
                    }
                })
                .buffer_unordered(c.concurrency)
                .collect()
                .await;
            for (_, attempt) in &done {
                state
                    .metrics
                    .webhook_attempts
                    .with_label_values(&[attempt.outcome()])
                    .inc();
            }
            let now = state.clock.now_ms();
            match state.store.record_attempts(&done, &rules, now).await {
                Ok(results) => {
                    for ((d, _), (after, disabled)) in done.iter().zip(results) {
                        if after == AfterAttempt::GaveUp {
                            tracing::warn!(webhook = %d.webhook.id, event = %d.event_id, "webhook delivery given up");
                        }
                        if after == AfterAttempt::Delivered {
                            state
                                .metrics
                                .webhook_delay
                                .observe((now - d.event_at).max(0) as f64 / 1000.0);
                        }
                        if disabled {
                            state.metrics.webhooks_disabled.inc();
                            tracing::warn!(webhook = %d.webhook.id, url = %d.webhook.url, "webhook disabled after repeated failures");
                            WAKE.notify_waiters();
                        }
                    }
                }
                // Not logged: the claims run out and the deliveries are sent
                // again (same ids) — at least once.
                Err(e) => tracing::warn!(error = %e, "recording webhook attempts failed"),
            }
        }
        if full {
            continue;
        }
        tokio::select! {
            _ = stop.changed() => {}
            () = WAKE.notified() => {}
            () = tokio::time::sleep(c.poll_interval) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::batch_size;
    use crate::config::WebhooksConfig;
    use crate::store::webhooks::RetryRules;

    #[test]
    fn a_claimed_batch_fits_in_its_lease_at_the_worst() {
        let mut c = WebhooksConfig::default();
        // 30 s lease, 10 s timeout: two rounds of 16.
        assert_eq!(batch_size(&c), 32);
        for (lease, timeout, concurrency) in [(30, 10, 16), (20, 10, 4), (60, 5, 8), (2, 1, 4)] {
            c.claim_lease = Duration::from_secs(lease);
            c.request_timeout = Duration::from_secs(timeout);
            c.concurrency = concurrency;
            let rounds = batch_size(&c).div_ceil(concurrency) as u64;
            assert!(rounds * timeout < lease, "{lease} {timeout} {concurrency}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_its_cap_with_a_quarter_of_jitter() {
        let r = RetryRules {
            backoff_ms: 5_000,
            backoff_cap_ms: 60_000,
            max_attempts: 20,
            disable_after: 50,
        };
        for (attempts, base) in [
            (1, 5_000),
            (2, 10_000),
            (3, 20_000),
            (4, 40_000),
            (5, 60_000),
            (40, 60_000),
        ] {
            for _ in 0..50 {
                let wait = r.backoff(attempts);
                assert!(
                    (base..=base + base / 4).contains(&wait),
                    "{attempts}: {wait}"
                );
            }
        }
    }
}
