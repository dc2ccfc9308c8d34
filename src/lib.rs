//! assetgate: an object-access gateway for data-labeling platforms.
//!
//! A labeler's browser asks for an object; the gateway checks a short-lived token, signs a
//! request with the storage's credentials (S3, GCS or Azure), and streams the bytes back with the right
//! CORS headers. Modules follow the request's path:
//!
//! - [`server`]: listener, HTTP/1.1 and HTTP/2, connection limit, graceful shutdown
//! - [`route`]: request path -> route, percent-decoding exactly once
//! - [`cors`]: allowed origins, actual and preflight CORS headers
//! - [`token`]: labeler JWTs: verification, scope, minting
//! - [`registry`]: orgs and storages, embedded or shared in PostgreSQL
//! - [`storage`]: what a storage is, its rules, and one module per provider (S3, GCS, Azure)
//! - [`credentials`]: what a storage signs with
//! - [`proof`]: buckets of delegated API storages show they belong to their org
//! - [`range`]: the `Range` header we forward
//! - [`conditional`]: `If-Match`, `If-None-Match`, dates and `If-Range`, judged by the gateway
//! - [`upstream`]: pooled client, endpoint guard, fetching an object, response header policy
//! - [`proxy`]: the pipeline tying the above together
//! - [`body`]: streamed response bodies (backpressure, abort on failure, idle timeout)
//! - [`limits`]: per-org and per-labeler rates and concurrent streams (429)
//! - [`audit`]: one JSON line per object request, written off the request path
//! - [`usage`]: requests and bytes per org, storage and day, flushed to the registry
//! - [`error`]: the one error enum -> status, code, JSON body
//! - [`telemetry`]: request ids and the access log
//! - [`config`]: TOML file -> typed, validated configuration
//! - [`secret`]: a string that never prints
//! - `demo`: the embedded S3-compatible backend of `assetgate demo`

#![forbid(unsafe_code)]

pub mod admin;
pub mod audit;
pub mod body;
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
