//! The shared state of every handler: configuration, the fleet store, the
//! blob store, the repository host, the director, the check-in pipeline,
//! metrics and the clock.

use std::ops::Deref;
use std::sync::Arc;

use anyhow::Context;
use nightlatch_repo::repo::Expiries;

use crate::auth::TokenCache;
use crate::blob::{BlobStore, LocalBlobs, S3Blobs};
use crate::bootstrap;
use crate::checkin::{CheckinService, Pipeline};
use crate::clock::{Clock, ManualClock, RepoClock, SystemClock};
use crate::config::{BlobConfig, ClockMode, Config};
use crate::director::Director;
use crate::metrics::Metrics;
use crate::repo::{RepoHost, RepoKeys};
use crate::store::Store;

/// Everything handlers share.
#[derive(Debug)]
pub struct Services {
    /// Configuration.
    pub config: Config,
    /// Fleet state.
    pub store: Store,
    /// Served files.
    pub blobs: BlobStore,
    /// Image repository.
    pub repo: Arc<RepoHost>,
    /// Director.
    pub director: Arc<Director>,
    /// Check-in batches (in-process entry point).
    pub pipeline: Arc<Pipeline>,
    /// Check-in workers (HTTP entry point).
    pub checkins: CheckinService,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// The same clock, when it is manual.
    pub manual_clock: Option<Arc<ManualClock>>,
    /// Token lookups.
    pub tokens: TokenCache,
}

/// Cheap to clone; derefs to [`Services`].
#[derive(Debug, Clone)]
pub struct AppState(pub Arc<Services>);

impl Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

impl AppState {
    /// Build everything for `config` (bootstrapping an empty data directory).
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let manual =
            (config.clock == ClockMode::Manual).then(|| Arc::new(ManualClock::at_system_time()));
        let clock: Arc<dyn Clock> = match &manual {
            Some(m) => Arc::clone(m) as Arc<dyn Clock>,
            None => Arc::new(SystemClock),
        };
        Self::build_with_clock(config, clock, manual).await
    }

    /// Build with a given clock (tests).
    pub async fn build_with_clock(
        config: Config,
        clock: Arc<dyn Clock>,
        manual_clock: Option<Arc<ManualClock>>,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!("cannot create data directory {}", config.data_dir.display())
        })?;
        private_dir(&config.data_dir)?;
        let keys = bootstrap::server_keys(&config, &RepoClock(Arc::clone(&clock)))?;
        let store = Store::connect_with(&config.database_url, config.sqlite_full_sync)
            .await
            .context("connecting to the fleet database")?;
        let blobs = match &config.blob {
            BlobConfig::Local(dir) => BlobStore::Local(LocalBlobs::new(dir)?),
            BlobConfig::S3(c) => BlobStore::S3(S3Blobs::new(c)),
        };
        blobs
            .ping()
            .await
            .context("the blob store is not reachable")?;
        let metrics = Arc::new(Metrics::new()?);
        let expiries = Expiries {
            snapshot: config.repo.snapshot_expires,
            timestamp: config.repo.timestamp_expires,
            ..Expiries::default()
        };
        let repo = Arc::new(RepoHost::new(
            blobs.clone(),
            &config.data_dir,
            store.clone(),
            RepoKeys {
                snapshot: keys.image_snapshot.clone(),
                timestamp: keys.image_timestamp.clone(),
            },
            expiries,
            Arc::clone(&clock),
        )?);
        repo.open().await.context("loading the image repository")?;
        if !repo.has_root() {
            repo.init_root(&keys.image_root)
                .await
                .map_err(|e| anyhow::anyhow!("starting the image repository: {e}"))?;
            tracing::info!(root = %keys.image_root.display(), "image repository started from its trusted root");
            if let Some(targets) = keys.dev_targets.clone() {
                repo.dev_publish(vec![targets])
                    .await
                    .map_err(|e| anyhow::anyhow!("dev publish: {e}"))?;
            }
        } else if let Err(e) = repo.refresh_if_due().await {
            tracing::warn!(error = %e, "repository refresh at startup failed");
        }
        let root_bytes = bootstrap::publish_director_roots(&blobs, &keys.director_root).await?;
        let director = Arc::new(Director::new(
            root_bytes,
            keys.director_targets,
            keys.director_timestamp,
            config.director_targets_expires,
        )?);
        let pipeline = Arc::new(Pipeline::new(
            store.clone(),
            Arc::clone(&repo),
            Arc::clone(&director),
            Arc::clone(&clock),
            Arc::clone(&metrics),
            config.director_targets_expires,
        ));
        let checkins = CheckinService::start(
            Arc::clone(&pipeline),
            config.checkin.workers,
            config.checkin.batch_max,
        );
        bootstrap::admin_token(&store, &config.data_dir, clock.now_ms()).await?;
        Ok(Self(Arc::new(Services {
            config,
            store,
            blobs,
            repo,
            director,
            pipeline,
            checkins,
            metrics,
            clock,
            manual_clock,
            tokens: TokenCache::default(),
        })))
    }
}

/// The data directory holds keys, the first admin token and the fleet
/// database: owner-only (0700).
#[cfg(unix)]
fn private_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(dir)
        .with_context(|| format!("cannot read data directory {}", dir.display()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot make data directory {} private", dir.display()))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn private_dir(_dir: &std::path::Path) -> anyhow::Result<()> {
    Ok(())
}
