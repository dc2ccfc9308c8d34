//! The fast S3 backend of the load benchmark: s3s with SigV4 checking, serving files in
//! 256 KiB reads (s3s-fs reads 4 KiB at a time, which caps it near 250 MB/s) with
//! TCP_NODELAY, plus `generated/{bytes}` objects made on the fly and never stored.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use bytes::Bytes;
use futures::stream;
use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result, S3};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

/// Read size of object files.
const CHUNK: usize = 256 * 1024;

pub struct FastBackend {
    pub root: PathBuf,
}

/// Deterministic bytes of generated object `len` at `offset` (cheap, not all zeros).
fn generated(offset: u64, len: u64) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + Sync {
    let block: Bytes = (0..CHUNK).map(|i| (i % 251) as u8).collect::<Vec<u8>>().into();
    stream::unfold(offset, move |pos| {
        let block = block.clone();
        async move {
            let end = offset + len;
            (pos < end).then(|| {
                let n = ((end - pos) as usize).min(CHUNK);
                (Ok(block.slice(..n)), pos + n as u64)
            })
        }
    })
}

impl FastBackend {
    async fn length(&self, bucket: &str, key: &str) -> S3Result<(u64, Option<PathBuf>)> {
        if let Some(size) = key.strip_prefix("generated/") {
            return Ok((size.parse().map_err(|_| s3_error!(NoSuchKey))?, None));
        }
        let path = self.root.join(bucket).join(key);
        let meta = tokio::fs::metadata(&path).await.map_err(|_| s3_error!(NoSuchKey))?;
        Ok((meta.len(), Some(path)))
    }
}

#[async_trait::async_trait]
impl S3 for FastBackend {
    async fn get_object(&self, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
        let input = req.input;
        let (full, path) = self.length(&input.bucket, &input.key).await?;
        let range = match &input.range {
            Some(r) => r.check(full).map_err(|_| s3_error!(InvalidRange))?,
            None => 0..full,
        };
        let len = range.end - range.start;
        let body = match path {
            None => StreamingBlob::wrap(generated(range.start, len)),
            Some(path) => {
                let mut file = tokio::fs::File::open(path).await.map_err(|_| s3_error!(NoSuchKey))?;
                file.seek(std::io::SeekFrom::Start(range.start))
                    .await
                    .map_err(|_| s3_error!(InternalError))?;
                StreamingBlob::wrap(ReaderStream::with_capacity(file.take(len), CHUNK))
            }
        };
        let content_range = input
            .range
            .map(|_| format!("bytes {}-{}/{full}", range.start, range.end.saturating_sub(1)));
        let output = GetObjectOutput {
            body: Some(body),
            content_length: Some(len as i64),
            content_range,
            content_type: Some("application/octet-stream".parse().unwrap()),
            e_tag: Some(ETag::Strong(format!("{full:x}"))),
            accept_ranges: Some("bytes".into()),
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }

    async fn head_object(&self, req: S3Request<HeadObjectInput>) -> S3Result<S3Response<HeadObjectOutput>> {
        let (full, _) = self.length(&req.input.bucket, &req.input.key).await?;
        Ok(S3Response::new(HeadObjectOutput {
            content_length: Some(full as i64),
            ..Default::default()
        }))
    }
}

/// Serves the backend on 127.0.0.1 with `keys`; prints `ready {port}` and runs forever.
pub async fn run(root: PathBuf, access_key: String, secret_key: String) {
    let mut builder = s3s::service::S3ServiceBuilder::new(FastBackend { root });
    builder.set_auth(s3s::auth::SimpleAuth::from_single(access_key, secret_key));
    let service = builder.build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("ready {}", listener.local_addr().unwrap().port());
    assetgate::demo::serve_s3(listener, service).await;
}

/// The environment variable that starts a benchmark's own binary as its backend.
const ROLE: &str = "ASSETGATE_BENCH_ROLE";

/// When this process was started as the backend (by [`spawn`]), serves until it is killed
/// and returns true; else returns false at once.
#[allow(
    clippy::disallowed_methods,
    reason = "the benchmark's own process tells its backend role by the environment"
)]
pub fn serve_if_asked() -> bool {
    if std::env::var(ROLE).as_deref() != Ok("backend") {
        return false;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(args[0].clone().into(), args[1].clone(), args[2].clone()));
    true
}

/// Starts this binary again as the backend serving the buckets under `root` to these keys;
/// returns the process and its port once it listens.
pub fn spawn(root: &Path, access_key: &str, secret_key: &str) -> (Child, u16) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(ROLE, "backend")
        .arg(root)
        .args([access_key, secret_key])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line.trim().strip_prefix("ready ").unwrap().parse().unwrap();
    (child, port)
}
