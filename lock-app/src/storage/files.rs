//! The agent's files on flash: small named files (device key, agent state,
//! trusted TUF metadata of both repositories), replaced atomically, on one
//! partition, with sequential-storage's map.
//!
//! Format (all in one sequential-storage map, `u32` keys):
//!
//! * a file's **header** item, key `h << 12 | 0xFFF` (`h` = the first 20
//!   bits of SHA-256 of the name): format byte `1`, generation (0 or 1),
//!   length (`u32` LE), SHA-256 of the content, the number of chunks the
//!   other generation may still hold (its previous version), name length
//!   and name;
//! * its **chunks**, key `h << 12 | gen << 11 | i`, [`CHUNK`] bytes each
//!   (the last shorter).
//!
//! Writing puts every chunk under the generation the header does *not*
//! name, then writes the header (the commit point: one sequential-storage
//! item, itself power-safe). A power cut at any point leaves exactly the
//! old or exactly the new file: readers take the generation the header
//! names and check length and SHA-256, so a torn or stale chunk reads as
//! "absent", never as wrong bytes. Two names whose hashes collide read as
//! absent (the header holds the full name), which the TUF client treats as
//! "fetch again".
//!
//! The previous version's chunks are left where they are: the next write
//! of the file stores its chunks under those keys, which supersedes them,
//! and removes only those beyond its new length (a file that shrank).
//! Removing them at once would cost a scan of the partition per chunk
//! (sequential-storage removes every item of a key), at every save of the
//! agent's state. The price is room: each file may be held twice. When the
//! partition is full, a write first removes every file's previous version
//! ([`FileStore::compact`]) and tries again.
//!
//! The API is blocking (it drives the async map with
//! `embassy_futures::block_on`), as the agent's `MetadataStore` is.

use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;

use embedded_storage_async::nor_flash::MultiwriteNorFlash;
use sequential_storage::cache::Cache;
use sequential_storage::cache::key_pointers::HeapKeyPointers;
use sequential_storage::cache::page_pointers::HeapPagePointers;
use sequential_storage::cache::page_states::HeapPageStates;
use sequential_storage::map::{MapConfig, MapStorage};
use sha2::{Digest, Sha256};

use crate::tuf::{MetadataStore, StoreError};

/// Bytes per chunk item: four items (with sequential-storage's item header
/// and the key) fill a 4 KiB sector.
pub const CHUNK: usize = 992;
/// Largest file.
pub const MAX_FILE: usize = 32 * 1024;
/// Longest name.
pub const MAX_NAME: usize = 64;
const HEADER_SLOT: u32 = 0xFFF;
const MAX_CHUNKS: u32 = MAX_FILE.div_ceil(CHUNK) as u32;
const FORMAT: u8 = 1;
const HEADER_LEN: usize = 1 + 1 + 4 + 32 + 1 + 1;
/// Work buffer: key + largest value, word-aligned with room to spare.
const BUF: usize = CHUNK + 64;

/// Keys whose flash location is cached in RAM (headers and chunks of the
/// agent's dozen files); more keys still work, by scanning.
const CACHED_KEYS: usize = 96;

/// RAM cache of page states, page pointers and key locations (a few hundred
/// bytes): without it every read scans and CRC-checks the whole partition.
/// sequential-storage marks it dirty around each write, so an interrupted
/// write invalidates it rather than leaving it wrong. A lock keeps it for
/// as long as it runs ([`FileStore::into_parts`], [`FileStore::open_cached`]).
pub type FileCache = Cache<HeapPageStates, HeapPagePointers, HeapKeyPointers<u32>, u32>;
type Map<F> = MapStorage<u32, F, FileCache>;

/// Why a file operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileError {
    /// The flash driver failed.
    Flash,
    /// The partition is full.
    Full,
    /// sequential-storage found damage it could not repair.
    Corrupted,
    /// The partition does not suit sequential-storage.
    BadPartition,
    /// Larger than [`MAX_FILE`].
    TooLarge,
    /// Empty, longer than [`MAX_NAME`].
    BadName,
    /// An impossible state.
    LogicBug,
}

impl<E> From<sequential_storage::Error<E>> for FileError {
    fn from(e: sequential_storage::Error<E>) -> Self {
        match e {
            sequential_storage::Error::Storage { .. } => Self::Flash,
            sequential_storage::Error::FullStorage => Self::Full,
            sequential_storage::Error::Corrupted { .. } => Self::Corrupted,
            _ => Self::LogicBug,
        }
    }
}

struct Header {
    generation: u8,
    len: u32,
    sha256: [u8; 32],
    stale: u8,
}

fn name_hash(name: &str) -> u32 {
    let d = Sha256::digest(name.as_bytes());
    (u32::from(d[0]) << 12 | u32::from(d[1]) << 4 | u32::from(d[2]) >> 4) & 0xF_FFFF
}

fn header_key(h: u32) -> u32 {
    h << 12 | HEADER_SLOT
}

fn chunk_key(h: u32, generation: u8, i: u32) -> u32 {
    h << 12 | u32::from(generation & 1) << 11 | (i & 0x7FF)
}

fn check_name(name: &str) -> Result<(), FileError> {
    if name.is_empty() || name.len() > MAX_NAME {
        Err(FileError::BadName)
    } else {
        Ok(())
    }
}

/// Small named files on one flash partition (see the module docs).
pub struct FileStore<F: MultiwriteNorFlash> {
    map: RefCell<Map<F>>,
}

impl<F: MultiwriteNorFlash> core::fmt::Debug for FileStore<F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FileStore").finish_non_exhaustive()
    }
}

impl<F: MultiwriteNorFlash> FileStore<F> {
    /// Use the whole of `flash` (a partition) for files.
    pub fn open(flash: F) -> Result<Self, FileError> {
        let pages = flash.capacity() / F::ERASE_SIZE;
        let cache = Cache::new(
            HeapPageStates::new(pages),
            HeapPagePointers::new(pages),
            HeapKeyPointers::new(CACHED_KEYS),
        );
        Self::open_cached(flash, cache)
    }

    /// Open with the RAM cache an earlier [`FileStore`] on the *same*
    /// partition left ([`Self::into_parts`]), since which nothing else
    /// wrote the partition: reads go straight to the items it located
    /// instead of scanning (and CRC-checking) the partition first.
    pub fn open_cached(flash: F, cache: FileCache) -> Result<Self, FileError> {
        let cfg = MapConfig::<F>::try_new(
            0..u32::try_from(flash.capacity()).map_err(|_| FileError::BadPartition)?,
        )
        .map_err(|_| FileError::BadPartition)?;
        Ok(Self {
            map: RefCell::new(MapStorage::new(flash, cfg, cache)),
        })
    }

    /// Give back the flash.
    pub fn into_flash(self) -> F {
        self.into_parts().0
    }

    /// Give back the flash and the RAM cache.
    pub fn into_parts(self) -> (F, FileCache) {
        self.map.into_inner().destroy()
    }

    fn header(&self, name: &str) -> Result<Option<Header>, FileError> {
        let h = name_hash(name);
        let mut buf = [0u8; BUF];
        let mut map = self.map.borrow_mut();
        let raw: Option<&[u8]> =
            embassy_futures::block_on(map.fetch_item::<&[u8]>(&mut buf, &header_key(h)))?;
        let Some(raw) = raw else { return Ok(None) };
        let parsed = (|| {
            let fixed = raw.get(..HEADER_LEN)?;
            if fixed[0] != FORMAT {
                return None;
            }
            let name_len = usize::from(fixed[HEADER_LEN - 1]);
            let stored = raw.get(HEADER_LEN..HEADER_LEN + name_len)?;
            if stored != name.as_bytes() {
                return None; // another name with the same hash
            }
            let len = u32::from_le_bytes(fixed.get(2..6)?.try_into().ok()?);
            let sha256: [u8; 32] = fixed.get(6..38)?.try_into().ok()?;
            Some(Header {
                generation: fixed[1] & 1,
                len,
                sha256,
                stale: fixed[38],
            })
        })();
        Ok(parsed)
    }

    /// The file's content, or `None` if it is absent (or unreadable:
    /// a stale chunk, a name collision).
    pub fn read(&self, name: &str) -> Result<Option<Vec<u8>>, FileError> {
        check_name(name)?;
        let Some(hd) = self.header(name)? else {
            return Ok(None);
        };
        let len = hd.len as usize;
        if len > MAX_FILE {
            return Ok(None);
        }
        let h = name_hash(name);
        let mut out = Vec::with_capacity(len);
        let mut buf = [0u8; BUF];
        let mut map = self.map.borrow_mut();
        let mut i = 0u32;
        while out.len() < len {
            let chunk: Option<&[u8]> = embassy_futures::block_on(
                map.fetch_item::<&[u8]>(&mut buf, &chunk_key(h, hd.generation, i)),
            )?;
            match chunk {
                Some(c) if !c.is_empty() && out.len() + c.len() <= len => out.extend_from_slice(c),
                _ => return Ok(None),
            }
            i += 1;
        }
        if <[u8; 32]>::from(Sha256::digest(&out)) != hd.sha256 {
            return Ok(None);
        }
        Ok(Some(out))
    }

    /// Replace (or create) the file atomically.
    pub fn write(&self, name: &str, data: &[u8]) -> Result<(), FileError> {
        check_name(name)?;
        if data.len() > MAX_FILE {
            return Err(FileError::TooLarge);
        }
        match self.write_once(name, data) {
            Err(FileError::Full) => {
                // Room held by previous versions, then once more. What the
                // failed attempt stored sits under the generation the
                // header does not name, and is rewritten or removed.
                self.compact()?;
                self.write_once(name, data)
            }
            other => other,
        }
    }

    fn write_once(&self, name: &str, data: &[u8]) -> Result<(), FileError> {
        let old = self.header(name)?;
        let generation = old.as_ref().map_or(0, |o| 1 - o.generation);
        let h = name_hash(name);
        let count = u32::try_from(data.len().div_ceil(CHUNK)).map_err(|_| FileError::TooLarge)?;
        let mut buf = [0u8; BUF];
        let mut map = self.map.borrow_mut();
        // Chunks this generation may still hold beyond the new count: its
        // previous version's (kept after the last commit, see the module
        // documentation). A file never seen before may have leftovers of a
        // write cut before its first commit.
        let stale = old
            .as_ref()
            .map_or(MAX_CHUNKS, |o| u32::from(o.stale).min(MAX_CHUNKS));
        // Each removal scans the partition: remove only keys that are there
        // (one scan finds them), not every key that might be. Most writes
        // have no such candidates (a file that did not shrink overwrites its
        // chunks), and skip that scan.
        let present = if stale > count {
            Some(present_keys(&mut map, &mut buf, h)?)
        } else {
            None
        };
        let is_present = |key: &u32| present.as_ref().is_none_or(|p| p.contains(key));
        for i in count..stale {
            let key = chunk_key(h, generation, i);
            if is_present(&key) {
                embassy_futures::block_on(map.remove_item(&mut buf, &key))?;
            }
        }
        for (i, c) in data.chunks(CHUNK).enumerate() {
            let i = u32::try_from(i).map_err(|_| FileError::TooLarge)?;
            embassy_futures::block_on(map.store_item(&mut buf, &chunk_key(h, generation, i), &c))?;
        }
        let mut header = vec![0u8; HEADER_LEN + name.len()];
        header[0] = FORMAT;
        header[1] = generation;
        header[2..6].copy_from_slice(&(data.len() as u32).to_le_bytes());
        header[6..38].copy_from_slice(&Sha256::digest(data));
        // The old generation's chunks, kept (the module documentation).
        header[38] = old.as_ref().map_or(0, |o| {
            (o.len as usize).div_ceil(CHUNK).min(MAX_CHUNKS as usize) as u8
        });
        header[HEADER_LEN - 1] = name.len() as u8;
        header[HEADER_LEN..].copy_from_slice(name.as_bytes());
        // The commit point.
        embassy_futures::block_on(map.store_item(&mut buf, &header_key(h), &header.as_slice()))?;
        Ok(())
    }

    /// Remove every file's previous version (the chunks of the generation
    /// its header does not name): one scan of the partition, then one per
    /// chunk removed. Writes do this when the partition is full; a cut
    /// part-way loses nothing, as only superseded chunks are removed.
    pub fn compact(&self) -> Result<(), FileError> {
        let mut buf = [0u8; BUF];
        let mut map = self.map.borrow_mut();
        // Which generation each header names; the chunk keys present.
        let (generations, chunks) = embassy_futures::block_on(async {
            let mut generations: Vec<(u32, u8)> = Vec::new();
            let mut chunks: Vec<u32> = Vec::new();
            let mut items = map.fetch_all_items(&mut buf).await?;
            let mut item = [0u8; BUF];
            while let Some((key, value)) = items.next::<&[u8]>(&mut item).await? {
                if key & HEADER_SLOT == HEADER_SLOT {
                    // The newest header of a key comes last.
                    let generation = value.get(1).map_or(0, |g| g & 1);
                    match generations.iter_mut().find(|(h, _)| *h == key >> 12) {
                        Some(entry) => entry.1 = generation,
                        None => generations.push((key >> 12, generation)),
                    }
                } else if !chunks.contains(&key) {
                    chunks.push(key);
                }
            }
            Ok::<_, FileError>((generations, chunks))
        })?;
        for key in chunks {
            let h = key >> 12;
            let generation = ((key >> 11) & 1) as u8;
            // A chunk of a name with no header is a leftover of a first
            // write that was cut: garbage too.
            let current = generations
                .iter()
                .find(|(g, _)| *g == h)
                .is_some_and(|(_, g)| *g == generation);
            if !current {
                embassy_futures::block_on(map.remove_item(&mut buf, &key))?;
            }
        }
        Ok(())
    }

    /// Remove the file (absent is not an error).
    pub fn remove(&self, name: &str) -> Result<(), FileError> {
        check_name(name)?;
        let Some(hd) = self.header(name)? else {
            return Ok(());
        };
        let h = name_hash(name);
        let mut buf = [0u8; BUF];
        let mut map = self.map.borrow_mut();
        let present = present_keys(&mut map, &mut buf, h)?;
        embassy_futures::block_on(map.remove_item(&mut buf, &header_key(h)))?;
        // Both generations' chunks: the file's and its previous version's.
        let count = (hd.len as usize).div_ceil(CHUNK).min(MAX_CHUNKS as usize) as u32;
        let previous = u32::from(hd.stale).min(MAX_CHUNKS);
        let keys = (0..count)
            .map(|i| chunk_key(h, hd.generation, i))
            .chain((0..previous).map(|i| chunk_key(h, 1 - hd.generation, i)));
        for key in keys {
            if present.contains(&key) {
                embassy_futures::block_on(map.remove_item(&mut buf, &key))?;
            }
        }
        Ok(())
    }
}

/// Keys of name hash `h` present on flash (one scan of the partition).
fn present_keys<F: MultiwriteNorFlash>(
    map: &mut Map<F>,
    buf: &mut [u8; BUF],
    h: u32,
) -> Result<Vec<u32>, FileError> {
    embassy_futures::block_on(async {
        let mut found = Vec::new();
        let mut items = map.fetch_all_items(buf).await?;
        let mut item = [0u8; BUF];
        while let Some((key, _)) = items.next::<&[u8]>(&mut item).await? {
            if key >> 12 == h && !found.contains(&key) {
                found.push(key);
            }
        }
        Ok(found)
    })
}

impl<F: MultiwriteNorFlash> MetadataStore for FileStore<F> {
    fn load(&self, role: &str) -> Option<Vec<u8>> {
        self.read(role).ok().flatten()
    }
    fn store(&mut self, role: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.write(role, bytes).map_err(|_| StoreError)
    }
    fn remove(&mut self, role: &str) -> Result<(), StoreError> {
        FileStore::remove(self, role).map_err(|_| StoreError)
    }
}
