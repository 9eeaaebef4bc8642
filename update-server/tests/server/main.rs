//! Integration tests of nightlatch-server (one binary; see `support`).
//! Tests named `*_postgres_s3` run the same scenario against a real
//! PostgreSQL server and a real S3-compatible server (`bash .ci/setup`).

// Test helpers and scenarios outside `#[test]` functions may unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod audit;
mod backends;
mod checkin;
mod console;
mod console_api;
mod crash;
mod hardening;
mod interop;
mod recovery;
mod repo;
mod rollouts;
mod security;
mod service;
mod support;
mod uploads;
mod usage;
mod webhooks;

/// Run an async scenario `fn NAME(Backend)` on both backend pairs:
/// `NAME_embedded` and `NAME_postgres_s3`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Backend::Embedded).await
                }
            )*
        }
        mod postgres_s3 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Backend::PostgresS3).await
                }
            )*
        }
    };
}
