//! `assetgate demo`: an embedded S3-compatible server on loopback holding sample assets,
//! registered as a MinIO-style storage with static keys, and the gateway in front of it on
//! the same signing and streaming path as real storages.

mod backend;
pub mod editor;
pub mod seed;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

pub use backend::{serve as serve_s3, Backend};

use crate::body::BoxError;
use crate::config::Config;
use crate::route::encode_key;
use crate::server::{self, ServeOptions};
use crate::{token, Gateway};

/// The demo's configuration, with `${DEMO_*}` filled in at start.
pub const DEMO_CONFIG: &str = include_str!("../../config/demo.toml");

/// The bucket the demo serves.
pub const BUCKET: &str = "demo-assets";

/// Lifetime of the tokens printed by the demo.
const TOKEN_TTL: Duration = Duration::from_secs(12 * 3600);

/// Sample assets: (key, content type, bytes). Keys show off characters that break naive
/// proxies.
pub const ASSETS: [(&str, &str, &[u8]); 3] = [
    ("images/sample.jpg", "image/jpeg", include_bytes!("assets/sample.jpg")),
    (
        "videos/sample clip (6s).mp4",
        "video/mp4",
        include_bytes!("assets/sample.mp4"),
    ),
    (
        "docs/notes+ünïcødé 📄.txt",
        "text/plain; charset=utf-8",
        "Served through assetgate: signed, streamed, CORS-correct.\n".as_bytes(),
    ),
];

/// A started demo: backend, config, and the bound listeners of the gateway and the editor.
pub struct Demo {
    pub backend: Backend,
    pub config: Config,
    pub listener: TcpListener,
    /// The demo editor page, on its own origin.
    pub editor: TcpListener,
    /// Keeps the backend's files until the demo ends.
    _root: tempfile::TempDir,
}

impl Demo {
    /// Starts the backend, seeds the sample assets, binds the gateway to `listen` and the
    /// editor page to `editor_listen`.
    pub async fn start(listen: SocketAddr, editor_listen: SocketAddr) -> Result<Demo, BoxError> {
        let editor = TcpListener::bind(editor_listen).await.map_err(|e| {
            format!("cannot listen on {editor_listen}: {e} (choose another address with --editor-listen)")
        })?;
        let editor_port = editor.local_addr()?.port();
        let root = tempfile::Builder::new().prefix("assetgate-demo-").tempdir()?;
        let backend = Backend::start(root.path()).await?;
        let writer = seed::S3Writer::new(backend.endpoint.clone(), backend.keys.clone(), "us-east-1");
        writer.create_bucket(BUCKET).await?;
        for (key, content_type, bytes) in ASSETS {
            writer.put(BUCKET, key, content_type, bytes).await?;
        }
        let token_key = crate::hex::encode(&crate::hex::random_bytes::<24>());
        let lookup = |name: &str| match name {
            "DEMO_LISTEN" => Some(listen.to_string()),
            "DEMO_ENDPOINT" => Some(backend.endpoint.to_string()),
            "DEMO_ACCESS_KEY" => Some(backend.keys.access_key_id.clone()),
            "DEMO_SECRET_KEY" => Some(backend.keys.secret_access_key.expose().to_string()),
            "DEMO_TOKEN_KEY" => Some(token_key.clone()),
            "DEMO_DATA_DIR" => Some(root.path().join("registry").display().to_string()),
            "DEMO_EDITOR_ORIGIN" => Some(format!("http://127.0.0.1:{editor_port}")),
            "DEMO_EDITOR_ORIGIN_LOCALHOST" => Some(format!("http://localhost:{editor_port}")),
            _ => None,
        };
        let config = Config::from_toml(DEMO_CONFIG, &lookup)?;
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e} (choose another address with --listen)"))?;
        Ok(Demo {
            backend,
            config,
            listener,
            editor,
            _root: root,
        })
    }

    /// The base URL of the gateway.
    pub fn base_url(&self) -> String {
        let addr = self.listener.local_addr().expect("a bound listener has an address");
        format!("http://{addr}")
    }

    /// The editor page's URL.
    pub fn editor_url(&self) -> String {
        let addr = self.editor.local_addr().expect("a bound listener has an address");
        format!("http://{addr}/")
    }

    /// A fresh labeler token for the demo org.
    pub fn token(&self) -> String {
        token::mint(&self.config.auth.keys[0], "demo", Some("local"), None, TOKEN_TTL)
    }

    /// The gateway URL of one asset, with the token as query parameter.
    pub fn asset_url(&self, key: &str, token: &str) -> String {
        format!(
            "{}/v1/orgs/demo/storages/local/objects/{BUCKET}/{}?token={token}",
            self.base_url(),
            encode_key(key)
        )
    }

    /// What the demo prints for a person to paste into a browser or curl.
    pub fn banner(&self) -> String {
        let token = self.token();
        let mut out = format!(
            "assetgate demo is running at {}\n  embedded S3 server: {} (bucket `{BUCKET}`, keys known only to the gateway)\n\n\
             Open the demo editor (a labeling page on another origin): {}\n\nOr open an asset directly, or fetch it with curl:\n",
            self.base_url(),
            self.backend.endpoint,
            self.editor_url()
        );
        for (key, content_type, _) in ASSETS {
            out.push_str(&format!("  {content_type:<26} {}\n", self.asset_url(key, &token)));
        }
        let (video, _, _) = ASSETS[1];
        out.push_str(&format!(
            "\nA ranged request, as a video player sends it:\n  curl -s -D - -o /dev/null -H 'Range: bytes=0-' '{}'\nThe same token as a header:\n  curl -s -D - -o /dev/null -H 'Authorization: Bearer {token}' '{}'\n\nTokens expire in {} hours. Stop with Ctrl+C.\n",
            self.asset_url(video, &token),
            self.asset_url(ASSETS[0].0, "").trim_end_matches("?token="),
            TOKEN_TTL.as_secs() / 3600,
        ));
        out
    }

    /// Serves the gateway and the editor page until `shutdown` completes.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) {
        let gateway = Arc::new(
            Gateway::open(&self.config)
                .await
                .expect("the demo config has no registry or CA file to fail on"),
        );
        let options = ServeOptions::from_config(&self.config.server);
        let editor_config = editor::EditorConfig {
            gateway: self.base_url(),
            key: self.config.auth.keys[0].clone(),
            assets: ASSETS
                .iter()
                .map(|(key, content_type, _)| {
                    let path = format!("/v1/orgs/demo/storages/local/objects/{BUCKET}/{}", encode_key(key));
                    (key.to_string(), content_type.to_string(), path)
                })
                .collect(),
        };
        let Demo {
            listener,
            editor: editor_listener,
            backend,
            _root,
            ..
        } = self;
        let (trigger, stop) = server::Stop::after(shutdown);
        tokio::join!(
            crate::service::serve_gateway(gateway, listener, None, options, stop.clone().wait()),
            editor::serve(editor_listener, editor_config, stop.clone().wait()),
            trigger
        );
        drop(backend);
    }
}
