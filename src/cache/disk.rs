//! The edge cache's disk tier (README, "Edge cache"): object entries and slices in files
//! under `[cache].disk.path`, sealed with AES-256-GCM under a key derived from the master
//! key. What rests on the edge's disk is unreadable without that key, and a file that was
//! altered, truncated or put in another entry's place does not open: it is dropped, counted,
//! and the request goes to the bucket.
//!
//! A file is named by a keyed digest of the entry it holds (so names say nothing of orgs,
//! buckets or keys) and made of two sealed parts: a small label saying which entry it is,
//! then the entry itself. At start the directory is read back, labels only, so that entries
//! survive a restart and a purge can find an org's files. The tier never holds more than its
//! `size`: room is made, least recently used first, before a file is written, and a file
//! being written counts against it.
//!
//! Every function here does file I/O and blocks: the cache calls them on tokio's blocking
//! pool, never on a task that serves requests.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use ring::aead::{Aad, LessSafeKey, Nonce, NONCE_LEN};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use super::ObjectKey;
use crate::telemetry::metrics::EdgeCacheMetrics;

/// What the file-sealing key is derived for (HKDF's `info`).
const SEALING: &[u8] = b"assetgate edge cache disk entries v1";
/// What the file-naming key is derived for.
const NAMING: &[u8] = b"assetgate edge cache disk names v1";
/// The first bytes of every file of this format.
const MAGIC: &[u8; 4] = b"AGC1";
const TAG_LEN: usize = 16;
/// No label is larger: its parts are an org, a storage, a bucket and a key.
const MAX_LABEL: usize = 16 << 10;

/// Which entry a file holds: an object's entry (`slice: None`) or one slice of its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub object: Arc<ObjectKey>,
    pub slice: Option<u64>,
}

impl Label {
    /// The label of `key`'s entry.
    pub fn entry(key: &Arc<ObjectKey>) -> Label {
        Label {
            object: key.clone(),
            slice: None,
        }
    }

    /// The label of slice `index` of `key`.
    pub fn slice(key: &Arc<ObjectKey>, index: u64) -> Label {
        Label {
            object: key.clone(),
            slice: Some(index),
        }
    }

    fn encode(&self) -> Vec<u8> {
        let k = &self.object;
        let mut out = Vec::with_capacity(64 + k.org.len() + k.storage.len() + k.bucket.len() + k.key.len());
        for part in [&k.org, &k.storage, &k.bucket, &k.key] {
            put_bytes(&mut out, part.as_bytes());
        }
        out.extend_from_slice(&k.revision.to_be_bytes());
        match self.slice {
            None => out.push(0),
            Some(index) => {
                out.push(1);
                out.extend_from_slice(&index.to_be_bytes());
            }
        }
        out
    }

    fn decode(bytes: &[u8]) -> Option<Label> {
        let mut r = Reader(bytes);
        let mut text = || String::from_utf8(r.bytes()?.to_vec()).ok();
        let (org, storage, bucket, key) = (text()?, text()?, text()?, text()?);
        let revision = r.u64()?;
        let slice = match r.u8()? {
            0 => None,
            1 => Some(r.u64()?),
            _ => return None,
        };
        r.0.is_empty().then(|| Label {
            object: Arc::new(ObjectKey {
                org,
                storage,
                revision,
                bucket,
                key,
            }),
            slice,
        })
    }
}

/// Appends `bytes` with its length before it.
pub fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// Reads what [`put_bytes`] and big-endian integers wrote; `None` past the end.
pub struct Reader<'a>(pub &'a [u8]);

impl<'a> Reader<'a> {
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    pub fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = u32::from_be_bytes(self.take(4)?.try_into().ok()?);
        self.take(usize::try_from(n).ok()?)
    }

    pub fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }

    pub fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
}

/// A file's name: the keyed digest of its label.
type Name = [u8; 32];

struct Held {
    label: Label,
    size: u64,
    used: u64,
}

/// The files of the tier, least recently used first.
#[derive(Default)]
struct Index {
    files: HashMap<Name, Held>,
    by_use: BTreeMap<u64, Name>,
    clock: u64,
    /// Bytes of the files listed, and of files being written.
    bytes: u64,
    reserved: u64,
}

impl Index {
    /// Marks `name` as just used; its size, when listed.
    fn touch(&mut self, name: &Name) -> Option<u64> {
        self.clock += 1;
        let held = self.files.get_mut(name)?;
        self.by_use.remove(&held.used);
        held.used = self.clock;
        self.by_use.insert(self.clock, *name);
        Some(held.size)
    }

    fn add(&mut self, name: Name, label: Label, size: u64) {
        self.clock += 1;
        self.bytes += size;
        self.by_use.insert(self.clock, name);
        let held = Held {
            label,
            size,
            used: self.clock,
        };
        if let Some(old) = self.files.insert(name, held) {
            self.by_use.remove(&old.used);
            self.bytes -= old.size;
        }
    }

    fn take(&mut self, name: &Name) -> Option<Held> {
        let held = self.files.remove(name)?;
        self.by_use.remove(&held.used);
        self.bytes -= held.size;
        Some(held)
    }

    fn oldest(&self) -> Option<Name> {
        self.by_use.values().next().copied()
    }
}

/// The disk tier of one replica.
pub struct DiskTier {
    pub(super) dir: PathBuf,
    limit: u64,
    sealing: LessSafeKey,
    naming: hmac::Key,
    rng: SystemRandom,
    /// Renames and removals happen under this lock too, so that the files on disk and the
    /// index agree.
    index: Mutex<Index>,
    metrics: EdgeCacheMetrics,
    /// Held locked while the tier is open: two processes never share a directory (each
    /// would count only its own files against `size`).
    _lock: std::fs::File,
}

/// Writes entries to a tier on a thread of its own, one at a time, so that sealing and
/// writing take at most one core from the requests being served. What it is offered beyond
/// its bound (bytes waiting) is not written: the disk is behind, and the entry stays in
/// memory only.
pub struct Writer {
    queue: std::sync::mpsc::SyncSender<(Label, Vec<u8>)>,
    waiting: Arc<std::sync::atomic::AtomicU64>,
    bound: u64,
}

impl Writer {
    /// The writer of `tier`; its thread ends once the writer is dropped and what it holds
    /// is written.
    pub fn start(tier: Arc<DiskTier>, bound: u64) -> io::Result<Writer> {
        use std::sync::atomic::Ordering;
        let (queue, entries) = std::sync::mpsc::sync_channel::<(Label, Vec<u8>)>(256);
        let waiting = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let written = waiting.clone();
        std::thread::Builder::new()
            .name("assetgate-disk-cache".into())
            .spawn(move || {
                for (label, entry) in entries {
                    let size = entry.len() as u64;
                    if let Err(e) = tier.write(&label, entry) {
                        tier.metrics.disk_errors.inc();
                        tracing::debug!(error = %e, "an edge cache entry was not written to disk");
                    }
                    written.fetch_sub(size, Ordering::Relaxed);
                }
            })?;
        Ok(Writer { queue, waiting, bound })
    }

    /// Queues `entry` for writing, unless the bytes waiting would pass the bound.
    pub fn offer(&self, label: Label, entry: Vec<u8>) {
        use std::sync::atomic::Ordering;
        let size = entry.len() as u64;
        if self.waiting.fetch_add(size, Ordering::Relaxed) + size > self.bound
            || self.queue.try_send((label, entry)).is_err()
        {
            self.waiting.fetch_sub(size, Ordering::Relaxed);
        }
    }
}

/// Why the disk tier cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("the edge cache's disk tier at {}: {source}", .dir.display())]
pub struct DiskError {
    dir: PathBuf,
    source: io::Error,
}

impl DiskError {
    pub(super) fn new(dir: &Path, source: io::Error) -> DiskError {
        DiskError {
            dir: dir.to_path_buf(),
            source,
        }
    }
}

impl DiskTier {
    /// The tier in `dir`, at most `limit` bytes, sealed under keys derived from `master`:
    /// the entries a previous run left are read back (labels only), those that do not open
    /// are removed, and the least recently used go until the rest fit.
    pub fn open(
        dir: &Path,
        limit: u64,
        master: &crate::sealed::MasterKey,
        metrics: EdgeCacheMetrics,
    ) -> Result<DiskTier, DiskError> {
        let failed = |source| DiskError::new(dir, source);
        std::fs::create_dir_all(dir).map_err(failed)?;
        // The files are sealed; still, only the gateway's user may list or read them.
        std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).map_err(failed)?;
        let lock_file = std::fs::File::create(dir.join(".lock")).map_err(failed)?;
        // A moment's patience: the writer of a tier of this process that is closing lets go
        // of it once it has written what it holds.
        let mut tries = 0;
        while lock_file.try_lock().is_err() {
            tries += 1;
            if tries == 30 {
                return Err(failed(io::Error::other(
                    "another process uses this directory (each replica needs a disk tier of its own)",
                )));
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let tier = DiskTier {
            dir: dir.to_path_buf(),
            limit,
            sealing: master.derived_aead_key(SEALING),
            naming: master.derived_mac_key(NAMING),
            rng: SystemRandom::new(),
            index: Mutex::new(Index::default()),
            metrics,
            _lock: lock_file,
        };
        let mut found = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(failed)? {
            let folder = entry.map_err(failed)?.path();
            if !folder.is_dir() || !is_fanout(&folder) {
                continue;
            }
            for file in std::fs::read_dir(&folder).map_err(failed)?.flatten() {
                let path = file.path();
                let Some(name) = path.file_name().and_then(|n| n.to_str()).and_then(parse_name) else {
                    // A file being written when the last run stopped, or not ours.
                    if path.extension().is_some_and(|e| e == "tmp") {
                        let _ = std::fs::remove_file(&path);
                    }
                    continue;
                };
                match tier.read_label(&path, &name) {
                    Ok((label, size, modified)) => found.push((modified, name, label, size)),
                    Err(_) => {
                        tier.metrics.disk_errors.inc();
                        let _ = std::fs::remove_file(&path);
                    }
                }
            }
        }
        found.sort_by_key(|f| f.0);
        let mut index = lock(&tier.index);
        for (_, name, label, size) in found {
            index.add(name, label, size);
        }
        drop(index);
        // Trims to `size` and sets the gauge.
        tier.make_room(0);
        Ok(tier)
    }

    fn name(&self, label: &[u8]) -> Name {
        let mut name = [0u8; 32];
        name.copy_from_slice(hmac::sign(&self.naming, label).as_ref());
        name
    }

    fn path(&self, name: &Name) -> PathBuf {
        let hex = crate::hex::encode(name);
        self.dir.join(&hex[..2]).join(hex)
    }

    /// Whether the tier lists the entry `label` names (without reading it).
    pub fn contains(&self, label: &Label) -> bool {
        lock(&self.index).files.contains_key(&self.name(&label.encode()))
    }

    /// The entry `label` names, checked: `None` when there is none, or when its file does
    /// not open (it is then removed and counted).
    pub fn read(&self, label: &Label) -> Option<Bytes> {
        let encoded = label.encode();
        let name = self.name(&encoded);
        let size = lock(&self.index).touch(&name)?;
        let path = self.path(&name);
        // Never more than the file this tier wrote: one of another size is not read at all.
        let data = match read_exactly(&path, size) {
            Ok(data) => data,
            Err(e) => {
                if e.kind() != io::ErrorKind::NotFound {
                    self.metrics.disk_errors.inc();
                    tracing::warn!(error = %e, "an edge cache file cannot be read; the bucket answers");
                }
                self.drop_file(&name);
                return None;
            }
        };
        match self.open_file(data, &name, &encoded) {
            Some(entry) => Some(entry),
            None => {
                self.metrics.disk_errors.inc();
                tracing::warn!(
                    "an edge cache file does not open (altered or cut short); it is removed and the bucket answers"
                );
                self.drop_file(&name);
                None
            }
        }
    }

    /// Writes `entry` as the entry `label` names, replacing any: `Ok(false)` when it does
    /// not fit (larger than the tier, or the room is held by files being written). Fails on
    /// a full or failing disk, leaving nothing behind.
    pub fn write(&self, label: &Label, entry: Vec<u8>) -> io::Result<bool> {
        let encoded = label.encode();
        let name = self.name(&encoded);
        // The file is its head (magic, the sealed label, the entry's nonce), then the
        // entry sealed in place: its bytes are not copied again.
        let (label_nonce, sealed_label) = self.seal(encoded, &[b"label".as_slice(), &name].concat())?;
        let (entry_nonce, sealed_entry) = self.seal(entry, &[b"entry".as_slice(), &name].concat())?;
        let mut head = Vec::with_capacity(MAGIC.len() + 4 + 2 * NONCE_LEN + sealed_label.len());
        head.extend_from_slice(MAGIC);
        let label_len = NONCE_LEN + sealed_label.len();
        head.extend_from_slice(&u32::try_from(label_len).unwrap_or(u32::MAX).to_be_bytes());
        head.extend_from_slice(&label_nonce);
        head.extend_from_slice(&sealed_label);
        head.extend_from_slice(&entry_nonce);
        let size = (head.len() + sealed_entry.len()) as u64;
        if size > self.limit || !self.make_room(size) {
            return Ok(false);
        }
        let path = self.path(&name);
        let temporary = path.with_extension(format!("{}.tmp", crate::hex::encode(&crate::hex::random_bytes::<8>())));
        let written = path.parent().map_or(Ok(()), std::fs::create_dir_all).and_then(|()| {
            let mut file = private_file(&temporary)?;
            file.write_all(&head)?;
            file.write_all(&sealed_entry)
        });
        let mut index = lock(&self.index);
        index.reserved -= size;
        let result = written.and_then(|()| std::fs::rename(&temporary, &path));
        match &result {
            Ok(()) => index.add(name, label.clone(), size),
            Err(_) => {
                let _ = std::fs::remove_file(&temporary);
            }
        }
        self.gauge(&index);
        result.map(|()| true)
    }

    /// Removes the entry `label` names, if any.
    pub fn remove(&self, label: &Label) {
        self.drop_file(&self.name(&label.encode()));
    }

    /// Removes every entry whose object `matches`; returns the objects whose entries went.
    pub fn purge(&self, matches: &dyn Fn(&ObjectKey) -> bool) -> Vec<Arc<ObjectKey>> {
        let names: Vec<Name> = lock(&self.index)
            .files
            .iter()
            .filter(|(_, held)| matches(&held.label.object))
            .map(|(name, _)| *name)
            .collect();
        let mut objects = Vec::new();
        // A few files per hold of the lock, so that requests looking at the index never
        // wait for a large purge.
        for batch in names.chunks(64) {
            let mut index = lock(&self.index);
            for name in batch {
                if let Some(held) = index.take(name) {
                    let _ = std::fs::remove_file(self.path(name));
                    if held.label.slice.is_none() {
                        objects.push(held.label.object);
                    }
                }
            }
            self.gauge(&index);
        }
        objects
    }

    fn drop_file(&self, name: &Name) {
        let mut index = lock(&self.index);
        if index.take(name).is_some() {
            let _ = std::fs::remove_file(self.path(name));
        }
        self.gauge(&index);
    }

    /// Says in `assetgate_cache_size_bytes{tier="disk"}` what the listed files hold.
    fn gauge(&self, index: &Index) {
        self.metrics
            .disk_size
            .set(i64::try_from(index.bytes).unwrap_or(i64::MAX));
    }

    /// Removes the least recently used files until `size` more bytes fit, and reserves them;
    /// `false` when they cannot fit (files being written hold the rest).
    fn make_room(&self, size: u64) -> bool {
        let mut index = lock(&self.index);
        while index.bytes + index.reserved + size > self.limit {
            let Some(name) = index.oldest() else { break };
            index.take(&name);
            let _ = std::fs::remove_file(self.path(&name));
            self.metrics.disk_evictions.inc();
        }
        let fits = index.bytes + index.reserved + size <= self.limit;
        if fits {
            index.reserved += size;
        }
        self.gauge(&index);
        fits
    }

    /// A fresh nonce, and `plain` sealed in place under it (ciphertext, then tag), bound
    /// to `aad`.
    fn seal(&self, mut plain: Vec<u8>, aad: &[u8]) -> io::Result<([u8; NONCE_LEN], Vec<u8>)> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| io::Error::other("no randomness"))?;
        self.sealing
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut plain)
            .map_err(|_| io::Error::other("sealing failed"))?;
        Ok((nonce, plain))
    }

    /// Opens the sealed part at the start of `data` (bound to `aad`): where its plaintext
    /// lies in `data` and where the part ends.
    fn open_part(&self, data: &mut [u8], aad: &[u8]) -> Option<std::ops::Range<usize>> {
        if data.len() < NONCE_LEN + TAG_LEN {
            return None;
        }
        let (nonce, sealed) = data.split_at_mut(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let plain = self.sealing.open_in_place(nonce, Aad::from(aad), sealed).ok()?;
        Some(NONCE_LEN..NONCE_LEN + plain.len())
    }

    /// The entry in file `data`, if it opens and is the entry `label` names.
    fn open_file(&self, mut data: Vec<u8>, name: &Name, label: &[u8]) -> Option<Bytes> {
        let label_end = self.check_label(&mut data, name, Some(label))?.1;
        let entry = self.open_part(&mut data[label_end..], &[b"entry".as_slice(), name].concat())?;
        let (from, to) = (label_end + entry.start, label_end + entry.end);
        Some(Bytes::from(data).slice(from..to))
    }

    /// Opens the label at the start of file `data` named `name`; when `expected` is given it
    /// must be that label. Returns the label's bytes and where the entry's part starts.
    fn check_label(&self, data: &mut [u8], name: &Name, expected: Option<&[u8]>) -> Option<(Vec<u8>, usize)> {
        let header = MAGIC.len() + 4;
        if data.len() < header || &data[..MAGIC.len()] != MAGIC {
            return None;
        }
        let len = usize::try_from(u32::from_be_bytes(data[MAGIC.len()..header].try_into().ok()?)).ok()?;
        if len > MAX_LABEL + NONCE_LEN + TAG_LEN || data.len() < header + len {
            return None;
        }
        let part = &mut data[header..header + len];
        let plain = self.open_part(part, &[b"label".as_slice(), name].concat())?;
        let label = part[plain].to_vec();
        if expected.is_some_and(|e| e != label) || self.name(&label) != *name {
            return None;
        }
        Some((label, header + len))
    }

    /// The label, size and modification time of the file at `path`, reading its label only.
    fn read_label(&self, path: &Path, name: &Name) -> io::Result<(Label, u64, std::time::SystemTime)> {
        let bad = || io::Error::new(io::ErrorKind::InvalidData, "not an entry of this tier");
        let mut file = std::fs::File::open(path)?;
        let metadata = file.metadata()?;
        let mut head = vec![0u8; MAGIC.len() + 4];
        file.read_exact(&mut head)?;
        let len = u32::from_be_bytes(head[MAGIC.len()..].try_into().map_err(|_| bad())?);
        let len = usize::try_from(len).map_err(|_| bad())?;
        if len > MAX_LABEL + NONCE_LEN + TAG_LEN {
            return Err(bad());
        }
        head.resize(MAGIC.len() + 4 + len, 0);
        file.read_exact(&mut head[MAGIC.len() + 4..])?;
        let (label, _) = self.check_label(&mut head, name, None).ok_or_else(bad)?;
        let label = Label::decode(&label).ok_or_else(bad)?;
        Ok((label, metadata.len(), metadata.modified()?))
    }
}

/// A new file at `path` that only its owner may read.
fn private_file(path: &Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// The bytes of the file at `path`, which must be `size` bytes long.
fn read_exactly(path: &Path, size: u64) -> io::Result<Vec<u8>> {
    let mut file = std::fs::File::open(path)?;
    if file.metadata()?.len() != size {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not the size it was written with",
        ));
    }
    let mut data = vec![0u8; usize::try_from(size).map_err(io::Error::other)?];
    file.read_exact(&mut data)?;
    Ok(data)
}

fn is_fanout(folder: &Path) -> bool {
    folder
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.len() == 2 && n.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn parse_name(text: &str) -> Option<Name> {
    crate::hex::decode(text)?.try_into().ok()
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sealed::MasterKey;
    use crate::secret::Secret;
    use base64::Engine as _;

    fn master(byte: u8) -> MasterKey {
        MasterKey::from_base64(&Secret::new(
            base64::engine::general_purpose::STANDARD.encode([byte; 32]),
        ))
        .unwrap()
    }

    fn label(key: &str, slice: Option<u64>) -> Label {
        Label {
            object: Arc::new(ObjectKey {
                org: "acme".into(),
                storage: "main".into(),
                revision: 7,
                bucket: "scans".into(),
                key: key.into(),
            }),
            slice,
        }
    }

    fn tier(dir: &Path, limit: u64, key: u8) -> DiskTier {
        DiskTier::open(dir, limit, &master(key), EdgeCacheMetrics::default()).unwrap()
    }

    /// Every file of the tier, with its bytes.
    fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        for folder in std::fs::read_dir(dir).unwrap().flatten() {
            if !folder.path().is_dir() {
                continue;
            }
            for file in std::fs::read_dir(folder.path()).unwrap().flatten() {
                out.push((file.path(), std::fs::read(file.path()).unwrap()));
            }
        }
        out
    }

    #[test]
    fn labels_round_trip_and_refuse_anything_else() {
        for l in [label("a/b c.tif", None), label("", Some(u64::MAX))] {
            assert_eq!(Label::decode(&l.encode()), Some(l.clone()));
            let mut longer = l.encode();
            longer.push(0);
            assert_eq!(Label::decode(&longer), None);
            assert_eq!(Label::decode(&l.encode()[..l.encode().len() - 1]), None);
        }
    }

    #[test]
    fn entries_come_back_after_a_restart_sealed_and_named_by_a_digest() {
        let dir = tempfile::tempdir().unwrap();
        let secret = b"the bytes of a private scan".repeat(100);
        {
            let t = tier(dir.path(), 1 << 20, 1);
            assert!(t.write(&label("patient-42.dcm", Some(3)), secret.clone()).unwrap());
            assert!(t.write(&label("patient-42.dcm", None), b"meta".to_vec()).unwrap());
        }
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(dir.path()), 0o700);
        for (path, bytes) in files(dir.path()) {
            assert_eq!(mode(&path), 0o600);
            let name = path.file_name().unwrap().to_str().unwrap().to_string();
            assert!(!name.contains("patient"), "{name}");
            let text = String::from_utf8_lossy(&bytes);
            assert!(!text.contains("private scan") && !text.contains("patient") && !text.contains("acme"));
        }
        let t = tier(dir.path(), 1 << 20, 1);
        assert!(t.contains(&label("patient-42.dcm", Some(3))));
        assert_eq!(t.read(&label("patient-42.dcm", Some(3))).unwrap(), secret);
        assert_eq!(t.read(&label("patient-42.dcm", None)).unwrap(), &b"meta"[..]);
        assert!(t.read(&label("patient-42.dcm", Some(4))).is_none());
        // Under another master key nothing opens, and what does not open is removed.
        drop(t);
        let other = tier(dir.path(), 1 << 20, 2);
        assert!(!other.contains(&label("patient-42.dcm", Some(3))));
        assert_eq!(other.metrics.disk_errors.get(), 2);
        assert!(files(dir.path()).is_empty());
    }

    #[test]
    fn an_altered_truncated_or_moved_file_is_never_read_and_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let t = tier(dir.path(), 1 << 20, 1);
        let data = vec![7u8; 5000];
        for (i, damage) in ["flip", "truncate", "swap"].iter().enumerate() {
            let (a, b) = (label(&format!("a{i}"), Some(0)), label(&format!("b{i}"), Some(0)));
            t.write(&a, data.clone()).unwrap();
            t.write(&b, vec![9u8; 5000]).unwrap();
            let path_a = t.path(&t.name(&a.encode()));
            let path_b = t.path(&t.name(&b.encode()));
            let mut bytes = std::fs::read(&path_a).unwrap();
            match *damage {
                "flip" => {
                    let at = bytes.len() - 100;
                    bytes[at] ^= 1;
                }
                "truncate" => bytes.truncate(bytes.len() - 1),
                _ => bytes = std::fs::read(&path_b).unwrap(),
            }
            std::fs::write(&path_a, bytes).unwrap();
            assert_eq!(t.read(&a), None, "{damage}");
            assert!(!path_a.exists(), "{damage}: the damaged file is gone");
            assert!(!t.contains(&a));
            assert_eq!(t.read(&b).unwrap(), vec![9u8; 5000]);
        }
        assert_eq!(t.metrics.disk_errors.get(), 3);
    }

    #[test]
    fn the_tier_never_holds_more_than_its_size_and_drops_the_least_recently_used() {
        let dir = tempfile::tempdir().unwrap();
        let limit = 40_000;
        let t = tier(dir.path(), limit, 1);
        for i in 0..20u64 {
            assert!(t.write(&label("video", Some(i)), vec![1u8; 9_000]).unwrap());
            if i > 0 {
                // Slice 0 is read after every write: it stays.
                assert!(t.read(&label("video", Some(0))).is_some(), "{i}");
            }
            let on_disk: u64 = files(dir.path()).iter().map(|(_, b)| b.len() as u64).sum();
            assert!(on_disk <= limit, "{on_disk}");
        }
        assert!(t.contains(&label("video", Some(19))));
        assert!(!t.contains(&label("video", Some(1))));
        assert!(t.metrics.disk_evictions.get() >= 15);
        assert!(!t.write(&label("huge", Some(0)), vec![0u8; 50_000]).unwrap());
        // A smaller size at the next start trims what is there.
        drop(t);
        let smaller = tier(dir.path(), 20_000, 1);
        let on_disk: u64 = files(dir.path()).iter().map(|(_, b)| b.len() as u64).sum();
        assert!(on_disk <= 20_000 && on_disk > 0, "{on_disk}");
        assert_eq!(smaller.metrics.disk_size.get(), i64::try_from(on_disk).unwrap());
    }

    #[test]
    fn purge_removes_the_matching_objects_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let t = tier(dir.path(), 1 << 20, 1);
        for key in ["cats/1.jpg", "cats/2.jpg", "dogs/1.jpg"] {
            t.write(&label(key, None), b"meta".to_vec()).unwrap();
            t.write(&label(key, Some(0)), b"bytes".to_vec()).unwrap();
        }
        let purged = t.purge(&|k| k.key.starts_with("cats/"));
        assert_eq!(purged.len(), 2);
        assert!(!t.contains(&label("cats/1.jpg", Some(0))));
        assert!(t.contains(&label("dogs/1.jpg", Some(0))));
        assert_eq!(files(dir.path()).len(), 2);
    }

    #[test]
    fn the_writer_writes_behind_and_drops_what_passes_its_bound() {
        let dir = tempfile::tempdir().unwrap();
        let t = Arc::new(tier(dir.path(), 1 << 20, 1));
        let writer = Writer::start(t.clone(), 10_000).unwrap();
        writer.offer(label("a", Some(0)), vec![1u8; 6_000]);
        // Waiting with the first, or written already: either way the second passes nothing.
        writer.offer(label("huge", Some(0)), vec![2u8; 20_000]);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !t.contains(&label("a", Some(0))) {
            assert!(std::time::Instant::now() < deadline);
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(t.read(&label("a", Some(0))).unwrap(), vec![1u8; 6_000]);
        assert!(!t.contains(&label("huge", Some(0))));
        drop(writer);
    }

    #[test]
    fn two_tiers_never_share_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let first = tier(dir.path(), 1 << 20, 1);
        let second = DiskTier::open(dir.path(), 1 << 20, &master(1), EdgeCacheMetrics::default());
        assert!(second.is_err_and(|e| e.to_string().contains("another process")));
        drop(first);
        assert!(DiskTier::open(dir.path(), 1 << 20, &master(1), EdgeCacheMetrics::default()).is_ok());
    }

    #[test]
    fn files_left_half_written_are_removed_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let t = tier(dir.path(), 1 << 20, 1);
        t.write(&label("a", Some(0)), b"bytes".to_vec()).unwrap();
        let path = t.path(&t.name(&label("a", Some(0)).encode()));
        let left = path.with_extension("0011223344556677.tmp");
        std::fs::write(&left, b"half").unwrap();
        drop(t);
        let t = tier(dir.path(), 1 << 20, 1);
        assert!(!left.exists());
        assert!(t.contains(&label("a", Some(0))));
    }
}
