//! Blobs in an S3 bucket (any S3-compatible server: path-style addressing,
//! static credentials, optional endpoint). Several replicas share one bucket;
//! a CDN may serve it directly since metadata keys mirror the URL paths.

use std::ops::Range;

use anyhow::Context;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::primitives::ByteStream;
use axum::body::Body;
use bytes::Bytes;
use tokio_util::io::ReaderStream;

use crate::blob::BlobMeta;
use crate::config::S3Config;

/// A bucket (and key prefix).
#[derive(Debug, Clone)]
pub struct S3Blobs {
    client: Client,
    bucket: String,
    prefix: String,
}

impl S3Blobs {
    /// A client for `config` (no request is made yet).
    pub fn new(config: &S3Config) -> Self {
        let creds = Credentials::new(
            &config.access_key_id,
            &config.secret_access_key,
            None,
            None,
            "nightlatch-config",
        );
        let mut b = aws_sdk_s3::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()))
            .credentials_provider(creds)
            .force_path_style(true)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if let Some(endpoint) = &config.endpoint {
            b = b.endpoint_url(endpoint);
        }
        Self {
            client: Client::from_conf(b.build()),
            bucket: config.bucket.clone(),
            prefix: config.prefix.clone(),
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    pub(crate) async fn head(&self, key: &str) -> anyhow::Result<Option<BlobMeta>> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(self.key(key))
            .send()
            .await
        {
            Ok(out) => Ok(Some(BlobMeta {
                len: out
                    .content_length()
                    .and_then(|l| u64::try_from(l).ok())
                    .unwrap_or(0),
                etag: out.e_tag().map_or_else(|| "\"\"".to_owned(), str::to_owned),
            })),
            Err(e) => {
                let e = e.into_service_error();
                if e.is_not_found() {
                    Ok(None)
                } else {
                    Err(anyhow::Error::new(e).context(format!("S3 HEAD {key}")))
                }
            }
        }
    }

    async fn get_object(
        &self,
        key: &str,
        range: Option<Range<u64>>,
    ) -> anyhow::Result<Option<ByteStream>> {
        let mut req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.key(key));
        if let Some(r) = range {
            req = req.range(format!("bytes={}-{}", r.start, r.end.saturating_sub(1)));
        }
        match req.send().await {
            Ok(out) => Ok(Some(out.body)),
            Err(e) => {
                let e = e.into_service_error();
                if e.is_no_such_key() {
                    Ok(None)
                } else {
                    Err(anyhow::Error::new(e).context(format!("S3 GET {key}")))
                }
            }
        }
    }

    pub(crate) async fn read(
        &self,
        key: &str,
        range: Option<Range<u64>>,
    ) -> anyhow::Result<Option<Body>> {
        Ok(self
            .get_object(key, range)
            .await?
            .map(|body| Body::from_stream(ReaderStream::new(body.into_async_read()))))
    }

    pub(crate) async fn get(&self, key: &str, limit: u64) -> anyhow::Result<Option<Bytes>> {
        if let Some(meta) = self.head(key).await? {
            anyhow::ensure!(meta.len <= limit, "{key} is larger than {limit} bytes");
        }
        let Some(body) = self.get_object(key, None).await? else {
            return Ok(None);
        };
        let bytes = body
            .collect()
            .await
            .with_context(|| format!("S3 GET {key}: reading the body"))?
            .into_bytes();
        anyhow::ensure!(
            bytes.len() as u64 <= limit,
            "{key} is larger than {limit} bytes"
        );
        Ok(Some(bytes))
    }

    pub(crate) async fn put(&self, key: &str, bytes: Bytes) -> anyhow::Result<()> {
        let content_type = if key.ends_with(".json") {
            "application/json"
        } else {
            "application/octet-stream"
        };
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(self.key(key))
            .content_type(content_type)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| anyhow::Error::new(e.into_service_error()))
            .with_context(|| format!("S3 PUT {key}"))?;
        Ok(())
    }

    pub(crate) async fn put_file(
        &self,
        key: &str,
        path: &std::path::Path,
        len: u64,
    ) -> anyhow::Result<()> {
        let body = ByteStream::read_from()
            .path(path)
            .buffer_size(256 * 1024)
            .length(aws_sdk_s3::primitives::Length::Exact(len))
            .build()
            .await
            .with_context(|| format!("S3 PUT {key}: reading {}", path.display()))?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(self.key(key))
            .content_type("application/octet-stream")
            .content_length(i64::try_from(len).unwrap_or(i64::MAX))
            .body(body)
            .send()
            .await
            .map_err(|e| anyhow::Error::new(e.into_service_error()))
            .with_context(|| format!("S3 PUT {key}"))?;
        Ok(())
    }

    pub(crate) async fn copy(&self, from: &str, to: &str) -> anyhow::Result<()> {
        self.client
            .copy_object()
            .bucket(&self.bucket)
            .copy_source(format!(
                "{}/{}",
                self.bucket,
                percent_encode(&self.key(from))
            ))
            .key(self.key(to))
            .send()
            .await
            .map_err(|e| anyhow::Error::new(e.into_service_error()))
            .with_context(|| format!("S3 COPY {from} to {to}"))?;
        Ok(())
    }

    pub(crate) async fn delete(&self, key: &str) -> anyhow::Result<()> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(self.key(key))
            .send()
            .await
            .map_err(|e| anyhow::Error::new(e.into_service_error()))
            .with_context(|| format!("S3 DELETE {key}"))?;
        Ok(())
    }

    pub(crate) async fn list(&self, prefix: &str) -> anyhow::Result<Vec<(String, u64)>> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(self.key(prefix))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page
                .map_err(|e| anyhow::Error::new(e.into_service_error()))
                .with_context(|| format!("S3 LIST {prefix}"))?;
            for obj in page.contents() {
                if let Some(k) = obj.key().and_then(|k| k.strip_prefix(&self.prefix)) {
                    let len = obj.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0);
                    out.push((k.to_owned(), len));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    pub(crate) async fn ping(&self) -> anyhow::Result<()> {
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(|e| anyhow::Error::new(e.into_service_error()))
            .with_context(|| format!("S3 bucket {} is not reachable", self.bucket))?;
        Ok(())
    }
}

/// `x-amz-copy-source` wants the key URL-encoded (`/` kept).
fn percent_encode(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
