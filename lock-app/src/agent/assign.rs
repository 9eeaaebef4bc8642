//! An assignment the director signed, checked against the image
//! repository (the lock's own TUF client: same name, length, hashes and
//! hardware model, no lower security counter), and planned for staging.

use embedded_storage::nor_flash::NorFlash;
use nightlatch_proto::custom::NightlatchCustom;

use super::ports::RepoTransport;
use super::{
    Agent, AgentError, Assignment, CheckIn, DirectorTarget, Hardware, IMAGE_PREFIX, Net, Phase,
    Prefixed, Repo, Staging, TargetRef,
};
use crate::tuf::{self, MetadataStore, TufError};

impl<'a, F: NorFlash, S: MetadataStore, N: Net, H: Hardware> Agent<'a, F, S, N, H> {
    /// Check an assignment against the image repository and plan its staging.
    pub(super) fn plan(
        &mut self,
        a: Assignment,
        running_version: &str,
        running_counter: u32,
        hardware_model: &str,
    ) -> Result<CheckIn, AgentError> {
        let img_meta = a
            .image
            .file
            .custom
            .as_ref()
            .and_then(NightlatchCustom::from_custom)
            .ok_or(AgentError::MalformedAssignment)?;
        if img_meta.version == running_version
            || self.state.failed.contains(&a.image.name)
            || self.state.installing.is_some()
        {
            return Ok(CheckIn::UpToDate);
        }
        if let Some(s) = &self.state.staging
            && s.image.name == a.image.name
        {
            // Same target: keep going (policy may have changed).
            let patch = s.patch.is_some() && s.phase == Phase::Patch;
            if let Some(s) = self.state.staging.as_mut() {
                s.policy = a.policy;
            }
            return Ok(CheckIn::Assigned {
                target: a.image.name,
                patch,
            });
        }

        // The image repository must vouch for the same bytes.
        let mut images = Prefixed {
            inner: &mut self.files,
            prefix: IMAGE_PREFIX,
        };
        let mut repo = tuf::Updater::new(
            RepoTransport(&mut self.net, Repo::Image),
            &mut images,
            self.config.limits,
            self.state.time_floor,
        )
        .map_err(AgentError::Image)?;
        repo.refresh().map_err(AgentError::Image)?;
        let consistent = repo.trusted().root().consistent_snapshot;
        let image_ref = cross_check(&mut repo, &a.image, consistent, hardware_model)?;
        let nl = img_meta;
        if nl.hardware_model != hardware_model {
            return Err(AgentError::WrongHardwareModel);
        }
        if nl.security_counter < running_counter {
            return Err(AgentError::SecurityCounterTooLow);
        }
        // A bad patch listing only costs the patch: take the image.
        let patch_ref = a
            .patch
            .as_ref()
            .and_then(|p| cross_check(&mut repo, p, consistent, hardware_model).ok());
        drop(repo);
        let image_ref = TargetRef {
            version: nl.version,
            security_counter: nl.security_counter,
            ..image_ref
        };
        let patch = patch_ref.is_some();
        self.hash = None;
        self.state.staging = Some(Staging {
            image: image_ref,
            phase: if patch { Phase::Patch } else { Phase::Full },
            patch: patch_ref,
            offset: 0,
            patch_offset: 0,
            patch_started: false,
            policy: a.policy,
            patch_fallback: None,
        });
        Ok(CheckIn::Assigned {
            target: a.image.name,
            patch,
        })
    }
}

/// The image repository's listing of `t` must match the director's.
fn cross_check<T: tuf::Transport, S: MetadataStore>(
    repo: &mut tuf::Updater<T, S>,
    t: &DirectorTarget,
    consistent: bool,
    hardware_model: &str,
) -> Result<TargetRef, AgentError> {
    let info = repo
        .target_info(&t.name)
        .map_err(AgentError::Image)?
        .ok_or(AgentError::NotInImageRepository)?;
    if info.length() != t.file.length || info.hashes() != &t.file.hashes {
        return Err(AgentError::DirectorImageDisagreement);
    }
    let nl = info.nightlatch().ok_or(AgentError::WrongHardwareModel)?;
    if nl.hardware_model != hardware_model {
        return Err(AgentError::WrongHardwareModel);
    }
    let sha = info
        .hashes()
        .get("sha256")
        .map(tuf::hex_encode)
        .ok_or(AgentError::Image(TufError::UnsupportedHash))?;
    Ok(TargetRef {
        name: t.name.clone(),
        length: info.length(),
        sha256: sha,
        path: info.download_path(consistent),
        version: nl.version,
        security_counter: nl.security_counter,
    })
}
