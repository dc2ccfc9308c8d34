//! The edge cache (README, "Edge cache"): object slices kept in memory on this replica, and
//! on its disk when a disk tier is configured ([`disk`]), asked only after every check of
//! the request (token, scope, org and storage, limits, origin).
//! Entries are keyed by org, storage, the storage's revision (any change to a storage gives
//! it a new one, so nothing cached under old credentials or buckets is found again), bucket
//! and key. An object's entry holds its size, `ETag` and headers; its bytes are kept in
//! aligned slices, each fetched once however many requests need it at the same time
//! ([`fill`]). Objects are never held whole: a response streams slice after slice, the next
//! one fetched while the current one is sent.

mod disk;
mod fill;
pub mod plan;
pub mod settings;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use http::header::{self, HeaderMap, HeaderValue};
use http::StatusCode;
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use moka::notification::RemovalCause;
use std::panic::AssertUnwindSafe;

use crate::body::{Body, BoxError};
use crate::error::GatewayError;
use crate::telemetry::metrics::EdgeCacheMetrics;
pub use disk::DiskError;
use disk::{DiskTier, Label};
use fill::Fill;
pub use fill::FillReader;
pub use fill::Head;
pub use settings::{CacheSettings, DiskSettings, Freshness};

/// How long an object found uncacheable (`no-store`, too large, no or a weak `ETag`, a
/// bucket that ignores ranges) goes straight to the bucket before the cache tries it again.
const UNCACHEABLE_FOR: Duration = Duration::from_secs(60);

/// Which object an entry is of.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectKey {
    pub org: String,
    pub storage: String,
    /// The storage's revision: a new one for every change of the storage.
    pub revision: u64,
    pub bucket: String,
    pub key: String,
}

/// What an object's cached entry says about it.
#[derive(Debug)]
pub struct Meta {
    pub etag: HeaderValue,
    pub size: u64,
    /// The bucket's headers, without `Content-Range` and `Content-Length`.
    pub headers: HeaderMap,
    /// The bucket said `no-cache`: confirmed on every hit whatever the freshness.
    no_cache: bool,
    /// When the bucket last confirmed the entry; `None` for an entry read back from disk,
    /// which the bucket confirms once before it is served.
    checked: Mutex<Option<Instant>>,
    /// The headers of an answer from the entry (made by the request pipeline from
    /// `headers`), with the default `Cache-Control` they were made for: made once, not on
    /// every hit.
    pub answer_headers: arc_swap::ArcSwapOption<(HeaderValue, HeaderMap)>,
    /// The bytes of an object of one slice, once a request read them from the cache: they
    /// move into the object's entry, and a hit costs one lookup instead of two.
    whole: Option<Bytes>,
}

impl Meta {
    /// The entry as the disk tier keeps it (when the bucket confirmed it is left out).
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        disk::put_bytes(&mut out, self.etag.as_bytes());
        out.extend_from_slice(&self.size.to_be_bytes());
        out.push(u8::from(self.no_cache));
        for (name, value) in &self.headers {
            disk::put_bytes(&mut out, name.as_str().as_bytes());
            disk::put_bytes(&mut out, value.as_bytes());
        }
        out
    }

    fn decode(bytes: &[u8]) -> Option<Meta> {
        let mut r = disk::Reader(bytes);
        let etag = HeaderValue::from_bytes(r.bytes()?).ok()?;
        let size = r.u64()?;
        let no_cache = r.u8()? == 1;
        let mut headers = HeaderMap::new();
        while !r.0.is_empty() {
            let name = header::HeaderName::from_bytes(r.bytes()?).ok()?;
            headers.append(name, HeaderValue::from_bytes(r.bytes()?).ok()?);
        }
        Some(Meta {
            etag,
            size,
            headers,
            no_cache,
            checked: Mutex::new(None),
            answer_headers: Default::default(),
            whole: None,
        })
    }
}

/// A slice as the disk tier keeps it: the version's `ETag`, then the bytes.
fn encode_slice(etag: &HeaderValue, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + etag.len() + bytes.len());
    disk::put_bytes(&mut out, etag.as_bytes());
    out.extend_from_slice(bytes);
    out
}

fn decode_slice(entry: &Bytes) -> Option<(HeaderValue, Bytes)> {
    let mut r = disk::Reader(entry);
    let etag = HeaderValue::from_bytes(r.bytes()?).ok()?;
    let start = entry.len() - r.0.len();
    Some((etag, entry.slice(start..)))
}

/// What the cache knows of an object.
pub enum Lookup {
    /// Nothing.
    Cold,
    /// It was found uncacheable a moment ago: go to the bucket.
    Uncacheable,
    /// Cached, and may be served without asking the bucket.
    Fresh(Arc<Meta>),
    /// Cached; the bucket must confirm it first.
    Stale(Arc<Meta>),
}

/// Why a fetch for the cache gave no bytes.
#[derive(Debug, Clone)]
pub enum FetchError {
    /// The bucket refused, or could not be asked: the client gets this as without a cache.
    Refused(Arc<Refusal>),
    /// The object is not the version the entry holds (`If-Match` failed, another `ETag`).
    Changed,
    /// Not an answer the cache can keep (not a 206 of the range asked for).
    Uncacheable,
    /// The transfer failed, stalled or was abandoned.
    Failed(String),
}

/// A refusal, as the request pipeline answers it.
#[derive(Debug)]
pub struct Refusal {
    /// The bucket's status, when it answered.
    pub status: Option<StatusCode>,
    pub error: GatewayError,
    pub content_range: Option<HeaderValue>,
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Refused(r) => write!(f, "the bucket refused: {}", r.error),
            FetchError::Changed => f.write_str("the object changed while it was being sent"),
            FetchError::Uncacheable => f.write_str("the bucket's answer cannot be cached"),
            FetchError::Failed(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for FetchError {}

/// A bucket's answer to one ranged request.
pub struct Fetched {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Body,
}

/// Fetches bytes `first..=last` of the object, with `If-Match` when given. The request
/// pipeline's: signed with the storage's current credentials.
pub type Fetcher = Arc<
    dyn Fn(u64, u64, Option<HeaderValue>) -> Pin<Box<dyn Future<Output = Result<Fetched, FetchError>> + Send>>
        + Send
        + Sync,
>;

/// One slice of one object: its index.
type SliceId = (Arc<ObjectKey>, u64);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Object(Arc<ObjectKey>),
    Slice(Arc<ObjectKey>, u64),
}

#[derive(Clone)]
enum Value {
    Object(Arc<Meta>),
    Uncacheable(Instant),
    Slice(HeaderValue, Bytes),
}

impl Key {
    fn object(&self) -> &ObjectKey {
        match self {
            Key::Object(k) | Key::Slice(k, _) => k,
        }
    }
}

/// What a purge drops: an org's entries, narrowed by storage, bucket and key prefix.
#[derive(Debug, Clone, Default)]
pub struct Purge {
    pub org: String,
    pub storage: Option<String>,
    pub bucket: Option<String>,
    pub prefix: Option<String>,
}

impl Purge {
    fn matches(&self, k: &ObjectKey) -> bool {
        k.org == self.org
            && self.storage.as_ref().is_none_or(|s| *s == k.storage)
            && self.bucket.as_ref().is_none_or(|b| *b == k.bucket)
            && self.prefix.as_ref().is_none_or(|p| k.key.starts_with(p.as_str()))
    }
}

/// The edge cache of one replica.
#[derive(Clone)]
pub struct ObjectCache {
    inner: Arc<Inner>,
}

struct Inner {
    settings: CacheSettings,
    idle_timeout: Duration,
    entries: moka::sync::Cache<Key, Value>,
    fills: Mutex<HashMap<SliceId, Arc<Fill>>>,
    /// Bytes received by fetches under way: while it is above the memory tier's size, cold
    /// objects go to the bucket uncached (streamed with backpressure), so that many readers
    /// of many cold objects cannot make the cache hold more than twice its size.
    fetching: AtomicU64,
    /// The disk tier, when configured, and what writes to it.
    disk: Option<Arc<DiskTier>>,
    writer: Option<disk::Writer>,
    metrics: EdgeCacheMetrics,
}

fn weight(key: &Key, value: &Value) -> u32 {
    let k = key.object();
    let fixed = 160 + k.org.len() + k.storage.len() + k.bucket.len() + k.key.len();
    let variable = match value {
        Value::Object(meta) => {
            let headers: usize = meta.headers.iter().map(|(n, v)| n.as_str().len() + v.len() + 32).sum();
            headers + meta.whole.as_ref().map_or(0, Bytes::len)
        }
        Value::Uncacheable(_) => 0,
        Value::Slice(etag, bytes) => etag.len() + bytes.len(),
    };
    u32::try_from(fixed + variable).unwrap_or(u32::MAX)
}

/// The answer's entity tag, if strong: a weak one cannot hold the slices of one response
/// together (`If-Match` compares strongly), so such objects stream through.
fn strong_etag(headers: &HeaderMap) -> Option<&HeaderValue> {
    headers.get(header::ETAG).filter(|e| !e.as_bytes().starts_with(b"W/"))
}

fn no_store_or_cache(headers: &HeaderMap) -> (bool, bool) {
    let mut out = (false, false);
    for value in headers.get_all(header::CACHE_CONTROL) {
        for directive in value.to_str().unwrap_or("").split(',') {
            let name = directive.split('=').next().unwrap_or("").trim();
            out.0 |= name.eq_ignore_ascii_case("no-store");
            out.1 |= name.eq_ignore_ascii_case("no-cache");
        }
    }
    out
}

impl ObjectCache {
    /// The cache `settings` describe, or `None` when they turn it off. A disk tier is sealed
    /// under keys derived from `master` (configuration makes sure there is one); opening it
    /// reads back what a previous run left there.
    pub fn new(
        settings: &CacheSettings,
        idle_timeout: Duration,
        metrics: EdgeCacheMetrics,
        master: Option<&crate::sealed::MasterKey>,
    ) -> Result<Option<ObjectCache>, DiskError> {
        if !settings.enabled() {
            return Ok(None);
        }
        let disk = match (&settings.disk, master) {
            (Some(d), Some(master)) => Some(Arc::new(DiskTier::open(&d.path, d.size, master, metrics.clone())?)),
            _ => None,
        };
        // At most 16 MiB, or 8 slices, waiting to be written.
        let bound = (8 * settings.slice).max(16 << 20);
        let writer = disk
            .as_ref()
            .map(|d| disk::Writer::start(d.clone(), bound).map_err(|e| DiskError::new(&d.dir, e)))
            .transpose()?;
        let (evictions, size) = (metrics.memory_evictions.clone(), metrics.memory_size.clone());
        let entries = moka::sync::Cache::builder()
            .max_capacity(settings.memory)
            .weigher(weight)
            .eviction_listener(move |key, value, cause| {
                size.dec_by(i64::from(weight(&key, &value)));
                if cause == RemovalCause::Size {
                    evictions.inc();
                }
            })
            .build();
        Ok(Some(ObjectCache {
            inner: Arc::new(Inner {
                settings: settings.clone(),
                idle_timeout,
                entries,
                fills: Mutex::new(HashMap::new()),
                fetching: AtomicU64::new(0),
                writer,
                disk,
                metrics,
            }),
        }))
    }

    pub fn settings(&self) -> &CacheSettings {
        &self.inner.settings
    }

    pub fn metrics(&self) -> &EdgeCacheMetrics {
        &self.inner.metrics
    }

    /// What the cache knows of `key`, and whether the bucket must confirm it.
    pub async fn lookup(&self, key: &Arc<ObjectKey>) -> Lookup {
        let meta = match self.inner.entries.get(&Key::Object(key.clone())) {
            Some(Value::Object(meta)) => meta,
            Some(Value::Uncacheable(until)) if Instant::now() < until => return Lookup::Uncacheable,
            _ => match self.inner.meta_from_disk(key).await {
                Some(meta) => meta,
                None => return Lookup::Cold,
            },
        };
        let fresh = match self.inner.settings.freshness {
            Freshness::For(d) if !meta.no_cache => lock(&meta.checked).is_some_and(|c| c.elapsed() < d),
            _ => false,
        };
        if fresh {
            Lookup::Fresh(meta)
        } else {
            Lookup::Stale(meta)
        }
    }

    /// The bucket confirmed `meta` (304).
    pub fn confirmed(&self, meta: &Meta) {
        *lock(&meta.checked) = Some(Instant::now());
    }

    /// Drops the entry of `key` (its slices are never read without it, and age out).
    pub fn forget(&self, key: &Arc<ObjectKey>) {
        self.inner.forget(key);
    }

    /// Leaves `key` to the bucket for a while: its answer cannot be cached (a bucket that
    /// answers a range with the whole object).
    pub fn pass(&self, key: &Arc<ObjectKey>) {
        self.inner.insert(
            Key::Object(key.clone()),
            Value::Uncacheable(Instant::now() + UNCACHEABLE_FOR),
        );
    }

    /// The entry for `key` from the head of a fetched slice, or `None` (and a note to go to
    /// the bucket for a while) when the object may not be cached.
    pub fn remember(&self, key: &Arc<ObjectKey>, head: &Head) -> Option<Arc<Meta>> {
        let Some(etag) = self.inner.keepable(head) else {
            self.pass(key);
            return None;
        };
        let mut headers = head.headers.clone();
        headers.remove(header::CONTENT_RANGE);
        headers.remove(header::CONTENT_LENGTH);
        let meta = Arc::new(Meta {
            etag: etag.clone(),
            size: head.size,
            headers,
            no_cache: no_store_or_cache(&head.headers).1,
            checked: Mutex::new(Some(Instant::now())),
            answer_headers: Default::default(),
            whole: None,
        });
        self.inner.insert(Key::Object(key.clone()), Value::Object(meta.clone()));
        self.inner.keep_on_disk(Label::entry(key), || meta.encode());
        Some(meta)
    }

    /// Whether fetches under way hold more than the memory tier's size: a cold object is
    /// then better streamed from the bucket than fetched into memory.
    pub fn busy(&self) -> bool {
        self.inner.fetching.load(Ordering::Relaxed) > self.inner.settings.memory
    }

    /// Whether every slice holding bytes `first..=last` is cached, in memory or on disk.
    pub fn holds(&self, key: &Arc<ObjectKey>, meta: &Meta, first: u64, last: u64) -> bool {
        plan::slices(first, last, self.inner.settings.slice)
            .all(|i| self.inner.stored(key, i, &meta.etag).is_some() || self.inner.on_disk(key, i))
    }

    /// Bytes `first..=last` of the object `meta` describes when one slice held in memory
    /// has them all: the answer's body, counted as bytes from the cache.
    pub fn held(&self, key: &Arc<ObjectKey>, meta: &Arc<Meta>, first: u64, last: u64) -> Option<Bytes> {
        let slice = self.inner.settings.slice;
        let index = first / slice;
        if last / slice != index {
            return None;
        }
        let bytes = match &meta.whole {
            Some(whole) => whole.clone(),
            None => {
                let bytes = self.inner.stored(key, index, &meta.etag)?;
                if meta.size <= slice {
                    self.inner.make_whole(key, meta, &bytes);
                }
                bytes
            }
        };
        let start = usize::try_from(first - index * slice).ok()?;
        let end = usize::try_from(last - index * slice).ok()?;
        let held = (end < bytes.len()).then(|| bytes.slice(start..=end))?;
        self.inner.metrics.from_cache.inc_by(held.len() as u64);
        Some(held)
    }

    /// A place in the fetch of slice `index` of `key` (joining one under way), whose answer
    /// must carry `etag` when given.
    pub fn join(
        &self,
        key: &Arc<ObjectKey>,
        index: u64,
        size: Option<u64>,
        etag: Option<&HeaderValue>,
        fetch: &Fetcher,
    ) -> FillReader {
        self.inner.join(key, index, size, etag, fetch)
    }

    /// Bytes `first..=last` of the object `meta` describes, slice after slice: from the
    /// cache, or fetched (one slice ahead) and kept. `started` is a fetch the caller already
    /// joined, of the slice holding `first`. Fails (and the client's connection is cut) when
    /// a slice cannot be fetched or the object changed meanwhile.
    pub fn body(
        &self,
        key: Arc<ObjectKey>,
        meta: Arc<Meta>,
        (first, last): (u64, u64),
        fetch: Fetcher,
        started: Option<FillReader>,
    ) -> Body {
        let slice = self.inner.settings.slice;
        let walker = Walker {
            inner: self.inner.clone(),
            key,
            meta,
            pos: first,
            last,
            current: None,
            ahead: started.map(|reader| (first / slice, reader)),
            fetch,
        };
        let stream = futures_util::stream::unfold(walker, |mut walker| async move {
            let item = walker.next().await?;
            if let Err(FetchError::Changed) = item {
                // Never bytes of two versions as one object; the entry is of the old one.
                walker.inner.forget(&walker.key);
            }
            Some((item.map(Frame::data).map_err(|e| Box::new(e) as BoxError), walker))
        });
        Sized {
            inner: StreamBody::new(stream.boxed()),
            remaining: last - first + 1,
        }
        .boxed_unsync()
    }

    /// Drops the entries of storage `storage` of `org` under any revision but `keep` (its
    /// current one; `None` when it is gone), in memory at once and on disk behind.
    pub fn retire(&self, org: &str, storage: &str, keep: Option<u64>) {
        let (org, storage) = (org.to_string(), storage.to_string());
        self.drop_matching(move |k| k.org == org && k.storage == storage && Some(k.revision) != keep);
    }

    /// Drops the entries `purge` names, in memory at once and on disk behind: a purge that
    /// another replica stored.
    pub fn purge_behind(&self, purge: &Purge) {
        let purge = purge.clone();
        self.drop_matching(move |k| purge.matches(k));
    }

    fn drop_matching(&self, matches: impl Fn(&ObjectKey) -> bool + Send + 'static) {
        self.inner.drop_in_memory(&matches);
        if let (Some(disk), Ok(runtime)) = (self.inner.disk.clone(), tokio::runtime::Handle::try_current()) {
            runtime.spawn_blocking(move || disk.purge(&matches));
        }
    }

    /// Drops the entries `purge` names on this replica, in memory and on disk; returns how
    /// many objects.
    pub async fn purge(&self, purge: &Purge) -> u64 {
        let mut objects = self.inner.drop_in_memory(&|k| purge.matches(k));
        if let Some(disk) = self.inner.disk.clone() {
            let purge = purge.clone();
            let on_disk = tokio::task::spawn_blocking(move || disk.purge(&|k| purge.matches(k)))
                .await
                .unwrap_or_default();
            objects.extend(on_disk);
        }
        objects.len() as u64
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Inner {
    /// Keeps `value` under `key`, counted in the size gauge (and counted out by the
    /// eviction listener when it goes, whatever the cause).
    fn insert(&self, key: Key, value: Value) {
        self.metrics.memory_size.inc_by(i64::from(weight(&key, &value)));
        self.entries.insert(key, value);
    }

    /// The strong `ETag` of an answer the cache may keep: not `no-store`, not empty, not
    /// larger than `max_object_size`; `None` for any other.
    fn keepable<'h>(&self, head: &'h Head) -> Option<&'h HeaderValue> {
        let (no_store, _) = no_store_or_cache(&head.headers);
        let size_ok = head.size > 0 && head.size <= self.settings.max_object_size;
        strong_etag(&head.headers).filter(|_| !no_store && size_ok)
    }

    /// Slice `index` of `key`, if cached in memory as the version `etag` names: as a slice,
    /// or (an object of one slice) in the object's entry.
    fn stored(&self, key: &Arc<ObjectKey>, index: u64, etag: &HeaderValue) -> Option<Bytes> {
        match self.entries.get(&Key::Slice(key.clone(), index)) {
            Some(Value::Slice(tag, bytes)) if tag == etag => Some(bytes),
            _ if index == 0 => match self.entries.get(&Key::Object(key.clone())) {
                Some(Value::Object(meta)) if meta.etag == etag => meta.whole.clone(),
                _ => None,
            },
            _ => None,
        }
    }

    /// Moves `bytes`, the one slice of the object `meta` describes, into the object's entry
    /// (unless the entry changed meanwhile): one copy in memory, one lookup per hit.
    fn make_whole(&self, key: &Arc<ObjectKey>, meta: &Arc<Meta>, bytes: &Bytes) {
        let whole = Value::Object(Arc::new(Meta {
            etag: meta.etag.clone(),
            size: meta.size,
            headers: meta.headers.clone(),
            no_cache: meta.no_cache,
            checked: Mutex::new(*lock(&meta.checked)),
            answer_headers: arc_swap::ArcSwapOption::new(meta.answer_headers.load_full()),
            whole: Some(bytes.clone()),
        }));
        let object = Key::Object(key.clone());
        let added = i64::from(weight(&object, &whole));
        let result = self.entries.entry(object).and_compute_with(|current| match current {
            Some(entry) if matches!(entry.value(), Value::Object(m) if Arc::ptr_eq(m, meta)) => {
                moka::ops::compute::Op::Put(whole)
            }
            _ => moka::ops::compute::Op::Nop,
        });
        if let moka::ops::compute::CompResult::ReplacedWith(_) = result {
            // The replaced entry and the slice are counted out by the eviction listener.
            self.metrics.memory_size.inc_by(added);
            self.entries.invalidate(&Key::Slice(key.clone(), 0));
        }
    }

    /// Drops the memory tier's entries whose object `matches`; returns the objects whose
    /// entries (not only slices) went.
    fn drop_in_memory(&self, matches: &dyn Fn(&ObjectKey) -> bool) -> std::collections::HashSet<Arc<ObjectKey>> {
        let mut objects = std::collections::HashSet::new();
        let matching: Vec<(Arc<Key>, Value)> = self.entries.iter().filter(|(k, _)| matches(k.object())).collect();
        for (key, value) in matching {
            if let (Value::Object(_), Key::Object(object)) = (&value, &*key) {
                objects.insert(object.clone());
            }
            self.entries.invalidate(&*key);
        }
        objects
    }

    /// Whether the disk tier lists slice `index` of `key` (of some version).
    fn on_disk(&self, key: &Arc<ObjectKey>, index: u64) -> bool {
        self.disk
            .as_ref()
            .is_some_and(|d| d.contains(&Label::slice(key, index)))
    }

    /// The entry `label` names, read back from disk on the blocking pool; one the disk
    /// tier does not list costs a look at its index only.
    async fn read_back(&self, label: Label) -> Option<Bytes> {
        let disk = self.disk.clone()?;
        if !disk.contains(&label) {
            return None;
        }
        tokio::task::spawn_blocking(move || disk.read(&label)).await.ok()?
    }

    /// Slice `index` of `key` read back from disk, if there as the version `etag` names; it
    /// is kept in memory again.
    async fn slice_from_disk(&self, key: &Arc<ObjectKey>, index: u64, etag: &HeaderValue) -> Option<Bytes> {
        let entry = self.read_back(Label::slice(key, index)).await?;
        let (tag, bytes) = decode_slice(&entry)?;
        if tag != etag {
            return None;
        }
        self.insert(Key::Slice(key.clone(), index), Value::Slice(tag, bytes.clone()));
        Some(bytes)
    }

    /// The entry of `key` read back from disk, if there; it is kept in memory again.
    async fn meta_from_disk(&self, key: &Arc<ObjectKey>) -> Option<Arc<Meta>> {
        let entry = self.read_back(Label::entry(key)).await?;
        let meta = Arc::new(Meta::decode(&entry)?);
        self.insert(Key::Object(key.clone()), Value::Object(meta.clone()));
        Some(meta)
    }

    /// Writes the entry `encode` makes to the disk tier, behind, unless the disk is behind;
    /// nothing is encoded without a disk tier.
    fn keep_on_disk(&self, label: Label, encode: impl FnOnce() -> Vec<u8>) {
        if let Some(writer) = &self.writer {
            writer.offer(label, encode());
        }
    }

    /// Drops the entry of `key`, in memory and on disk.
    fn forget(&self, key: &Arc<ObjectKey>) {
        self.entries.invalidate(&Key::Object(key.clone()));
        if let Some(disk) = self.disk.clone() {
            let label = Label::entry(key);
            tokio::task::spawn_blocking(move || disk.remove(&label));
        }
    }

    fn join(
        self: &Arc<Inner>,
        key: &Arc<ObjectKey>,
        index: u64,
        size: Option<u64>,
        etag: Option<&HeaderValue>,
        fetch: &Fetcher,
    ) -> FillReader {
        let id = (key.clone(), index);
        let mut fills = lock(&self.fills);
        if let Some(fill) = fills.get(&id) {
            self.metrics.coalesced.inc();
            return fill.reader();
        }
        let fill = Arc::new(Fill::default());
        let reader = fill.reader();
        fills.insert(id.clone(), fill.clone());
        drop(fills);
        let (first, last) = plan::slice_bytes(index, self.settings.slice, size);
        let request = fetch(first, last, etag.cloned());
        let inner = self.clone();
        tokio::spawn(async move {
            // A panic in the cache's own code fails the requests reading this slice (their
            // connections are cut, as for a failed fetch), never leaves them waiting.
            let received = AtomicU64::new(0);
            let result = AssertUnwindSafe(inner.fill(&id, &fill, request, (first, last), &received))
                .catch_unwind()
                .await
                .unwrap_or_else(|_| Err(FetchError::Failed("the edge cache failed (a panic)".into())));
            inner
                .fetching
                .fetch_sub(received.load(Ordering::Relaxed), Ordering::Relaxed);
            if let Err(e) = &result {
                inner.metrics.errors.inc();
                tracing::debug!(error = %e, "a fetch for the edge cache ended early");
            }
            // Out of the map first: a request that comes after the end starts a fetch of its
            // own instead of joining this one's result.
            lock(&inner.fills).remove(&id);
            fill.end(result);
        });
        reader
    }

    /// Runs one slice's fetch into `fill`, and keeps the slice when it came whole and the
    /// object may be cached.
    async fn fill(
        &self,
        (key, index): &SliceId,
        fill: &Fill,
        request: impl Future<Output = Result<Fetched, FetchError>>,
        (first, last): (u64, u64),
        counted: &AtomicU64,
    ) -> Result<(), FetchError> {
        let fetched = request.await?;
        let range = fetched
            .headers
            .get(header::CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(crate::range::parse_content_range);
        let (got_first, got_last, size) = match (fetched.status, range) {
            (StatusCode::PARTIAL_CONTENT, Some(r)) if r.0 == first && r.1 <= last => r,
            _ => return Err(FetchError::Uncacheable),
        };
        let head = Arc::new(Head {
            headers: fetched.headers,
            first: got_first,
            last: got_last,
            size,
        });
        fill.set_head(head.clone());
        let expected = got_last - got_first + 1;
        let keep = self.keepable(&head);
        let mut received = 0u64;
        let mut body = fetched.body;
        loop {
            if !fill.wanted() {
                return Err(FetchError::Failed("every reader went away".into()));
            }
            let frame = match tokio::time::timeout(self.idle_timeout, body.frame()).await {
                Err(_) => return Err(FetchError::Failed("the bucket stopped sending (idle timeout)".into())),
                Ok(None) => break,
                Ok(Some(Err(e))) => return Err(FetchError::Failed(format!("the bucket's body failed: {e}"))),
                Ok(Some(Ok(frame))) => frame,
            };
            // An empty frame (a bucket may end its body with one) adds nothing, and must
            // not be taken for the slice's last bytes a second time.
            let Ok(data) = frame.into_data() else { continue };
            if data.is_empty() {
                continue;
            }
            received += data.len() as u64;
            if received > expected {
                return Err(FetchError::Failed("the bucket sent more than the range".into()));
            }
            self.metrics.from_upstream.inc_by(data.len() as u64);
            self.fetching.fetch_add(data.len() as u64, Ordering::Relaxed);
            counted.fetch_add(data.len() as u64, Ordering::Relaxed);
            match keep {
                // The slice's last bytes: the cache holds the slice before any reader sees
                // them, so a client that has its whole answer finds the slice if it asks
                // again at once (from another thread, too).
                Some(etag) if received == expected => {
                    let whole = fill.joined(&data, usize::try_from(expected).unwrap_or(0));
                    self.insert(
                        Key::Slice(key.clone(), *index),
                        Value::Slice(etag.clone(), whole.clone()),
                    );
                    self.keep_on_disk(Label::slice(key, *index), || encode_slice(etag, &whole));
                    fill.kept(whole);
                }
                _ => fill.push(data),
            }
        }
        if received != expected {
            return Err(FetchError::Failed("the bucket's answer was cut short".into()));
        }
        Ok(())
    }
}

/// A body of known length, which says it has ended once its last byte is out (so that the
/// request counts as complete when the client stops reading at `Content-Length`).
struct Sized<B> {
    inner: B,
    remaining: u64,
}

impl<B> http_body::Body for Sized<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let std::task::Poll::Ready(Some(Ok(frame))) = &polled {
            let len = frame.data_ref().map_or(0, |d| d.len() as u64);
            self.remaining = self.remaining.saturating_sub(len);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.remaining)
    }
}

/// Where the bytes of the current slice come from.
enum Source {
    /// The rest of the slice, cached.
    Stored(Bytes),
    /// A fetch of the slice, read from its first byte.
    Filling(FillReader),
}

/// A response's walk over the slices of its bytes.
struct Walker {
    inner: Arc<Inner>,
    key: Arc<ObjectKey>,
    meta: Arc<Meta>,
    /// The next byte to send.
    pos: u64,
    /// The last byte to send.
    last: u64,
    current: Option<Source>,
    /// A fetch joined ahead of need: the next slice's, joined once half of the current one
    /// has gone out.
    ahead: Option<(u64, FillReader)>,
    fetch: Fetcher,
}

impl Walker {
    async fn next(&mut self) -> Option<Result<Bytes, FetchError>> {
        let slice = self.inner.settings.slice;
        loop {
            if self.pos > self.last {
                return None;
            }
            let index = self.pos / slice;
            let (slice_first, slice_last) = plan::slice_bytes(index, slice, Some(self.meta.size));
            if self.current.is_none() {
                match self.open(index).await {
                    Ok(source) => self.current = Some(source),
                    Err(e) => return Some(Err(e)),
                }
            }
            let end = self.last.min(slice_last);
            match self.current.as_mut()? {
                Source::Stored(bytes) => {
                    let from = usize::try_from(self.pos - slice_first).ok()?;
                    let to = usize::try_from(end - slice_first).ok()?;
                    let piece = bytes.slice(from..=to);
                    self.inner.metrics.from_cache.inc_by(piece.len() as u64);
                    self.pos = end + 1;
                    self.current = None;
                    self.ahead(index, slice_first);
                    return Some(Ok(piece));
                }
                Source::Filling(reader) => match reader.next().await {
                    None => return Some(Err(FetchError::Failed("a slice ended early".into()))),
                    Some(Err(e)) => return Some(Err(e)),
                    Some(Ok(chunk)) => {
                        // The chunk ends where the reader now is in the slice.
                        let chunk_last = slice_first + reader.read();
                        let chunk_first = chunk_last - chunk.len() as u64;
                        if chunk.is_empty() || chunk_last <= self.pos {
                            continue;
                        }
                        let to = end.min(chunk_last - 1);
                        let piece = chunk.slice(
                            usize::try_from(self.pos - chunk_first).ok()?..=usize::try_from(to - chunk_first).ok()?,
                        );
                        self.pos = to + 1;
                        if self.pos > end {
                            if let Some(Source::Filling(reader)) = self.current.take() {
                                reader.done();
                            }
                        }
                        self.ahead(index, slice_first);
                        return Some(Ok(piece));
                    }
                },
            }
        }
    }

    /// Joins the fetch of the slice after `index` once half of slice `index` has gone out
    /// (so that it arrives before it is needed, while a probe that reads a little and
    /// leaves never starts it), unless it is cached or not needed.
    fn ahead(&mut self, index: u64, slice_first: u64) {
        let slice = self.inner.settings.slice;
        let next = index + 1;
        if self.ahead.is_some() || next * slice > self.last || self.pos < slice_first + slice / 2 {
            return;
        }
        let etag = &self.meta.etag;
        if self.inner.stored(&self.key, next, etag).is_none() && !self.inner.on_disk(&self.key, next) {
            let reader = self
                .inner
                .join(&self.key, next, Some(self.meta.size), Some(etag), &self.fetch);
            self.ahead = Some((next, reader));
        }
    }

    /// The source of slice `index`.
    async fn open(&mut self, index: u64) -> Result<Source, FetchError> {
        let (etag, size) = (&self.meta.etag, Some(self.meta.size));
        if let Some(bytes) = self.inner.stored(&self.key, index, etag) {
            return Ok(Source::Stored(bytes));
        }
        if let Some(bytes) = self.inner.slice_from_disk(&self.key, index, etag).await {
            return Ok(Source::Stored(bytes));
        }
        let reader = match self.ahead.take() {
            Some((i, reader)) if i == index => reader,
            _ => self.inner.join(&self.key, index, size, Some(etag), &self.fetch),
        };
        let head = reader.head().await?;
        if head.headers.get(header::ETAG) != Some(etag) {
            return Err(FetchError::Changed);
        }
        Ok(Source::Filling(reader))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SLICE: u64 = 64 << 10;

    fn settings() -> CacheSettings {
        CacheSettings {
            memory: 64 << 20,
            slice: SLICE,
            max_object_size: 1 << 30,
            freshness: Freshness::Revalidate,
            disk: None,
        }
    }

    fn key() -> Arc<ObjectKey> {
        Arc::new(ObjectKey {
            org: "acme".into(),
            storage: "main".into(),
            revision: 1,
            bucket: "b".into(),
            key: "k".into(),
        })
    }

    /// A bucket of one object in memory, answering ranges; the `ETag` of slices at or past
    /// `changes_at` is another (the object was replaced meanwhile).
    fn bucket(data: Arc<Vec<u8>>, changes_at: u64) -> Fetcher {
        Arc::new(move |first, last, if_match| {
            let data = data.clone();
            Box::pin(async move {
                let etag = if first >= changes_at { "\"v2\"" } else { "\"v1\"" };
                if if_match.is_some_and(|m| m != etag) {
                    return Err(FetchError::Changed);
                }
                let last = last.min(data.len() as u64 - 1);
                let mut headers = HeaderMap::new();
                headers.insert(header::ETAG, HeaderValue::from_static(etag));
                let range = format!("bytes {first}-{last}/{}", data.len());
                headers.insert(header::CONTENT_RANGE, HeaderValue::from_str(&range).unwrap());
                let bytes = Bytes::copy_from_slice(&data[first as usize..=last as usize]);
                Ok(Fetched {
                    status: StatusCode::PARTIAL_CONTENT,
                    headers,
                    body: crate::body::full(bytes),
                })
            })
        })
    }

    async fn collect(body: Body) -> Result<Vec<u8>, BoxError> {
        let mut out = Vec::new();
        let mut body = body;
        while let Some(frame) = body.frame().await {
            out.extend_from_slice(&frame?.into_data().unwrap_or_default());
        }
        Ok(out)
    }

    async fn cold(cache: &ObjectCache, fetch: &Fetcher, first: u64) -> (Arc<Meta>, FillReader) {
        let reader = cache.join(&key(), first / SLICE, None, None, fetch);
        let head = reader.head().await.unwrap();
        (cache.remember(&key(), &head).unwrap(), reader)
    }

    #[tokio::test]
    async fn a_walk_over_slices_gives_every_byte_once_cold_and_warm() {
        let data: Arc<Vec<u8>> = Arc::new((0..(3 * SLICE + 100)).map(|i| (i % 251) as u8).collect());
        let fetch = bucket(data.clone(), u64::MAX);
        let cache = ObjectCache::new(&settings(), Duration::from_secs(5), EdgeCacheMetrics::default(), None)
            .unwrap()
            .unwrap();
        let (meta, reader) = cold(&cache, &fetch, 0).await;
        assert_eq!(meta.size, data.len() as u64);
        let all = (0, meta.size - 1);
        let got = collect(cache.body(key(), meta.clone(), all, fetch.clone(), Some(reader)))
            .await
            .unwrap();
        assert!(got == *data);
        // Every slice is kept: a warm walk of any range asks the bucket nothing.
        let refuse: Fetcher = Arc::new(|_, _, _| Box::pin(async { Err(FetchError::Failed("asked".into())) }));
        for (first, last) in [
            (0, 0),
            (SLICE - 1, SLICE),
            (5, 3 * SLICE + 99),
            (3 * SLICE, 3 * SLICE + 99),
        ] {
            let warm = collect(cache.body(key(), meta.clone(), (first, last), refuse.clone(), None))
                .await
                .unwrap();
            assert!(warm[..] == data[first as usize..=last as usize], "{first}-{last}");
        }
        assert!(cache.holds(&key(), &meta, 0, meta.size - 1));
        // Ranges within one slice are handed over as they are kept; others are walked.
        for (first, last) in [
            (0, 0),
            (7, SLICE - 1),
            (3 * SLICE, 3 * SLICE + 99),
            (SLICE + 3, SLICE + 9),
        ] {
            let held = cache.held(&key(), &meta, first, last).expect("one slice held");
            assert!(held[..] == data[first as usize..=last as usize], "{first}-{last}");
        }
        assert_eq!(cache.held(&key(), &meta, SLICE - 1, SLICE), None, "two slices");
        assert_eq!(
            cache.held(&key(), &meta, 3 * SLICE, 3 * SLICE + 100),
            None,
            "past the end"
        );
        let other = Meta {
            etag: HeaderValue::from_static("\"v9\""),
            ..Meta::decode(&meta.encode()).unwrap()
        };
        assert_eq!(
            cache.held(&key(), &Arc::new(other), 0, 0),
            None,
            "slices of another version"
        );
    }

    #[tokio::test]
    async fn an_etag_that_changes_between_slices_aborts_the_answer_and_drops_the_entry() {
        let data: Arc<Vec<u8>> = Arc::new(vec![7; (2 * SLICE + 10) as usize]);
        let fetch = bucket(data, SLICE);
        let cache = ObjectCache::new(&settings(), Duration::from_secs(5), EdgeCacheMetrics::default(), None)
            .unwrap()
            .unwrap();
        let (meta, reader) = cold(&cache, &fetch, 0).await;
        let result = collect(cache.body(key(), meta.clone(), (0, meta.size - 1), fetch, Some(reader))).await;
        assert!(result.is_err(), "bytes of two versions as one object");
        assert!(matches!(cache.lookup(&key()).await, Lookup::Cold));
    }

    #[tokio::test]
    async fn a_panic_in_a_fetch_fails_its_readers_instead_of_leaving_them_waiting() {
        let cache = ObjectCache::new(&settings(), Duration::from_secs(5), EdgeCacheMetrics::default(), None)
            .unwrap()
            .unwrap();
        let panics: Fetcher = Arc::new(|_, _, _| Box::pin(async { panic!("a bug in the cache path") }));
        let reader = cache.join(&key(), 0, None, None, &panics);
        let head = tokio::time::timeout(Duration::from_secs(5), reader.head()).await;
        assert!(matches!(head, Ok(Err(FetchError::Failed(_)))));
        assert_eq!(cache.metrics().errors.get(), 1);
        // The next request tries again.
        let data = Arc::new(vec![1u8; 100]);
        let head = cache
            .join(&key(), 0, None, None, &bucket(data, u64::MAX))
            .head()
            .await
            .unwrap();
        assert_eq!(head.size, 100);
    }

    #[tokio::test]
    async fn an_object_of_one_slice_moves_into_its_entry_at_its_first_hit() {
        let data: Arc<Vec<u8>> = Arc::new((0..5000u32).map(|i| (i % 251) as u8).collect());
        let fetch = bucket(data.clone(), u64::MAX);
        let cache = ObjectCache::new(&settings(), Duration::from_secs(5), EdgeCacheMetrics::default(), None)
            .unwrap()
            .unwrap();
        let (meta, reader) = cold(&cache, &fetch, 0).await;
        let got = collect(cache.body(key(), meta.clone(), (0, 4999), fetch, Some(reader)))
            .await
            .unwrap();
        assert!(got == *data);
        // The size gauge against what the entries in memory weigh.
        let sizes = || {
            cache.inner.entries.run_pending_tasks();
            let weighed: i64 = cache.inner.entries.iter().map(|(k, v)| i64::from(weight(&k, &v))).sum();
            (cache.metrics().memory_size.get(), weighed)
        };
        let (before, _) = sizes();
        // The first hit finds the slice and moves it; the next ones find the bytes with the entry.
        assert!(cache.held(&key(), &meta, 10, 19).unwrap()[..] == data[10..20]);
        let Lookup::Stale(moved) = cache.lookup(&key()).await else {
            panic!("the entry is there")
        };
        assert!(moved.whole.as_ref().is_some_and(|w| w[..] == data[..]));
        assert!(cache.inner.entries.get(&Key::Slice(key(), 0)).is_none(), "one copy");
        assert!(cache.held(&key(), &moved, 0, 4999).unwrap()[..] == data[..]);
        // Counted once: the entry weighs the bytes, the slice it replaced is gone.
        let (now, weighed) = sizes();
        assert_eq!(now, weighed);
        assert!(now < before, "{now} < {before}");
        // The walker and `holds` find it in the entry too; another version does not.
        assert!(cache.holds(&key(), &meta, 0, 4999));
        let refuse: Fetcher = Arc::new(|_, _, _| Box::pin(async { Err(FetchError::Failed("asked".into())) }));
        let walked = collect(cache.body(key(), meta.clone(), (1, 4998), refuse, None))
            .await
            .unwrap();
        assert!(walked[..] == data[1..4999]);
        assert_eq!(cache.inner.stored(&key(), 0, &HeaderValue::from_static("\"v9\"")), None);
        // A hit that read the entry before it moved still finds the bytes, and moves nothing.
        assert!(cache.held(&key(), &meta, 0, 0).is_some());
        assert_eq!(sizes(), (now, now));
    }

    #[tokio::test]
    async fn a_slice_is_held_before_its_last_bytes_reach_a_reader() {
        let cache = ObjectCache::new(&settings(), Duration::from_secs(5), EdgeCacheMetrics::default(), None)
            .unwrap()
            .unwrap();
        // A bucket that sends a whole 100-byte object in two chunks, then an empty frame,
        // and only then (never, here) ends its body: the client has its answer before the
        // fetch sees the end.
        let open: Fetcher = Arc::new(|_, _, _| {
            Box::pin(async move {
                let mut headers = HeaderMap::new();
                headers.insert(header::ETAG, HeaderValue::from_static("\"v1\""));
                headers.insert(header::CONTENT_RANGE, HeaderValue::from_static("bytes 0-99/100"));
                let chunks =
                    [vec![1u8; 60], vec![2u8; 40], Vec::new()].map(|c| Ok::<_, BoxError>(Frame::data(Bytes::from(c))));
                let frames = futures_util::stream::iter(chunks).chain(futures_util::stream::pending());
                Ok(Fetched {
                    status: StatusCode::PARTIAL_CONTENT,
                    headers,
                    body: StreamBody::new(frames).boxed_unsync(),
                })
            })
        });
        let (meta, mut reader) = cold(&cache, &open, 0).await;
        let mut read = 0;
        while read < 100 {
            read += reader.next().await.unwrap().unwrap().len();
        }
        // Another request at this moment (from another thread, say) finds the slice, and
        // the empty frame after it replaced nothing.
        assert!(cache.holds(&key(), &meta, 0, 99));
        tokio::task::yield_now().await;
        assert_eq!(cache.held(&key(), &meta, 0, 99).unwrap().len(), 100);
    }

    #[tokio::test]
    async fn fetches_under_way_beyond_the_tiers_size_make_the_cache_step_aside_until_they_end() {
        let small = CacheSettings {
            memory: 32 << 10,
            ..settings()
        };
        let cache = ObjectCache::new(&small, Duration::from_millis(200), EdgeCacheMetrics::default(), None)
            .unwrap()
            .unwrap();
        // A bucket that sends 60 KiB of a 64 KiB slice, then nothing.
        let stalls: Fetcher = Arc::new(|first, last, _| {
            Box::pin(async move {
                let mut headers = HeaderMap::new();
                headers.insert(header::ETAG, HeaderValue::from_static("\"v1\""));
                let range = format!("bytes {first}-{last}/{}", last + 1);
                headers.insert(header::CONTENT_RANGE, HeaderValue::from_str(&range).unwrap());
                let chunk: Result<Frame<Bytes>, BoxError> = Ok(Frame::data(Bytes::from(vec![0u8; 60 << 10])));
                let frames = futures_util::stream::iter([chunk]).chain(futures_util::stream::pending());
                Ok(Fetched {
                    status: StatusCode::PARTIAL_CONTENT,
                    headers,
                    body: StreamBody::new(frames).boxed_unsync(),
                })
            })
        });
        let mut reader = cache.join(&key(), 0, None, None, &stalls);
        assert_eq!(reader.next().await.unwrap().unwrap().len(), 60 << 10);
        assert!(cache.busy());
        drop(reader);
        // The stalled fetch ends at the idle timeout, and its bytes stop counting.
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert!(!cache.busy());
    }

    #[test]
    fn an_entry_reads_back_from_its_disk_form_to_be_confirmed_once() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/tiff"));
        headers.append("x-amz-meta-a", HeaderValue::from_static("1"));
        headers.append("x-amz-meta-a", HeaderValue::from_static("2"));
        let meta = Meta {
            etag: HeaderValue::from_static("\"v1\""),
            size: 12_345,
            headers,
            no_cache: true,
            checked: Mutex::new(Some(Instant::now())),
            answer_headers: Default::default(),
            whole: None,
        };
        let back = Meta::decode(&meta.encode()).unwrap();
        assert_eq!((back.etag, back.size, back.no_cache), (meta.etag.clone(), 12_345, true));
        assert_eq!(back.headers, meta.headers);
        assert!(lock(&back.checked).is_none(), "the bucket confirms it first");
        assert!(Meta::decode(&meta.encode()[..10]).is_none());
        let slice = Bytes::from(encode_slice(&meta.etag, b"bytes"));
        assert_eq!(decode_slice(&slice), Some((meta.etag, Bytes::from_static(b"bytes"))));
    }

    #[test]
    fn what_the_bucket_says_about_storing() {
        let mut h = HeaderMap::new();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, No-Store"));
        assert_eq!(no_store_or_cache(&h), (true, false));
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache=\"x\", max-age=0"),
        );
        assert_eq!(no_store_or_cache(&h), (false, true));
        h.insert(header::ETAG, HeaderValue::from_static("W/\"1\""));
        assert!(strong_etag(&h).is_none());
        h.insert(header::ETAG, HeaderValue::from_static("\"1\""));
        assert!(strong_etag(&h).is_some());
    }

    #[test]
    fn a_purge_names_an_org_and_narrows_by_storage_bucket_and_prefix() {
        let k = key();
        let purge = |storage: Option<&str>, bucket: Option<&str>, prefix: Option<&str>| Purge {
            org: "acme".into(),
            storage: storage.map(Into::into),
            bucket: bucket.map(Into::into),
            prefix: prefix.map(Into::into),
        };
        assert!(purge(None, None, None).matches(&k));
        assert!(purge(Some("main"), Some("b"), Some("")).matches(&k));
        assert!(!purge(Some("other"), None, None).matches(&k));
        assert!(!purge(None, Some("c"), None).matches(&k));
        assert!(!purge(None, None, Some("kx")).matches(&k));
        assert!(!Purge {
            org: "globex".into(),
            ..Default::default()
        }
        .matches(&k));
    }
}
