//! End-to-end tests of the gateway against real S3, Azure and GCS servers started on loopback (see
//! `shared/TESTING.md` and `support/`).

mod support;

mod admin;
mod azure;
mod cache;
mod cache_disk;
mod chaos;
mod chaos_issuers;
mod conditionals;
mod connections;
mod content;
mod contract;
mod cors;
mod delegation;
mod demo;
mod errors;
mod gcs;
mod identity;
mod jwks;
mod keys;
mod logs;
mod objects;
mod ops;
mod ranges;
mod registry;
mod registry_trust;
mod replicas;
mod resolve;
mod streaming;
mod tenants;
mod tokens;
