//! assetgate: an object-access gateway for data-labeling platforms.
//!
//! A labeler's browser asks for an object; the gateway checks a short-lived token, signs a
//! request with the storage's credentials (S3, GCS or Azure), and streams the bytes back with the right
//! CORS headers.
//!
//! The modules stand on floors, and a module names only modules of its own floor or below
//! (kept by `tests/layers.rs`; README, "Layout"). From the ground up:
//!
//! Leaves, which know no other module of the crate:
//! - [`error`]: the data plane's one error enum -> status, code, side, JSON body
//! - [`range`]: the `Range` header we forward
//! - [`conditional`]: `If-Match`, `If-None-Match`, dates and `If-Range`, judged by the gateway
//! - [`cors`]: allowed origins, actual and preflight CORS headers
//! - [`route`]: request path -> route, percent-decoding exactly once
//! - [`hex`]: lowercase hex, random ids and bytes
//! - [`secret`]: a string that never prints
//! - [`sealed`]: secrets at rest, AEAD-sealed under the master key, and record MACs
//! - [`xml`]: the few XML answers of S3 and Azure, read without a DOM
//! - [`body`]: streamed response bodies (backpressure, abort on failure, idle timeout)
//! - [`tls`]: the listener's certificate and key, reloaded when they change
//! - [`lane`]: which serving thread the caller is on
//!
//! Telemetry, and the outbound HTTP:
//! - [`telemetry`]: metric handles, request ids, the access log and the line writer
//! - [`upstream`]: pooled client, endpoint type and guard, response header policy
//!
//! Subsystems, each with its own settings:
//! - [`token`]: labeler JWTs: verification, scope, minting, key sets
//! - [`credentials`]: what a storage signs with (static keys, STS, Entra, Google), cached
//! - [`limits`]: per-org and per-labeler rates and concurrent streams (429)
//! - [`audit`]: one JSON line per object request, written off the request path
//! - [`cache`]: the edge cache: object slices in memory (and sealed on disk), each fetched
//!   once for many readers
//!
//! The storage model, then the file and the registry that hold storages:
//! - [`storage`]: what a storage is, its rules, one module per provider (S3, GCS, Azure), the
//!   signed object request and the validation checks
//! - [`config`]: TOML file -> typed, validated configuration
//! - [`registry`]: orgs and storages, embedded or shared in PostgreSQL
//!
//! The request's end, the gateway's state, and the two planes on top:
//! - [`usage`]: requests and bytes per org, storage and day, flushed to the registry
//! - [`proof`]: buckets of delegated API storages show they belong to their org
//! - [`gateway`]: the shared state one process serves with
//! - [`proxy`]: the data plane's pipeline, from admission to the streamed answer
//! - [`admin`]: the admin API
//! - [`server`]: listener, HTTP/1.1 and HTTP/2, connection limits and timeouts, shutdown
//!
//! The composition root:
//! - [`service`]: builds a gateway from a config and serves it
//! - [`cli`]: the command line (`serve`, `check`, `token`, `registry`, `demo`)
//! - `demo`: the embedded S3-compatible backend of `assetgate demo` (feature `demo`)

#![forbid(unsafe_code)]

pub mod admin;
pub mod audit;
pub mod body;
pub mod cache;
pub mod cli;
pub mod conditional;
pub mod config;
pub mod cors;
pub mod credentials;
#[cfg(feature = "demo")]
pub mod demo;
pub mod error;
pub mod gateway;
pub mod hex;
pub mod lane;
pub mod limits;
pub mod proof;
pub mod proxy;
pub mod range;
pub mod registry;
pub mod route;
pub mod sealed;
pub mod secret;
pub mod server;
pub mod service;
pub mod storage;
pub mod telemetry;
pub mod tls;
pub mod token;
pub mod upstream;
pub mod usage;
pub mod xml;

pub use config::Config;
pub use gateway::Gateway;
