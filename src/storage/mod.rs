//! Storages and their providers. A [`Storage`] is what an org registered: a set of buckets
//! (Azure: containers) on one provider, with its credentials. It is built and checked by one
//! function for the configuration file and the admin API alike (`build`, reading a `draft`
//! under the `rules`); everything that differs between providers lives in one module per
//! provider (`providers`).

pub mod asset_url;
pub mod build;
pub mod draft;
pub mod providers;
pub mod request;
pub mod rules;
pub mod validation;

pub use build::{build, update};
pub use draft::{Context, Fields, Style};
pub use providers::{Backend, Kind, Provider};

use crate::upstream::Endpoint;

/// One registered bucket set with its credentials.
#[derive(Debug, Clone)]
pub struct Storage {
    pub id: String,
    pub name: String,
    /// The only buckets (Azure: containers) this storage may read.
    pub buckets: Vec<String>,
    /// Where requests go; `None` means the provider's public endpoint.
    pub endpoint: Option<Endpoint>,
    /// The provider, its settings and credentials.
    pub provider: Provider,
    /// Whether the edge cache may keep this storage's objects (`cache = false`: data that may
    /// not rest at the edge).
    pub cache: bool,
}

impl Storage {
    /// The provider's behaviour.
    pub fn backend(&self) -> &dyn Backend {
        self.provider.backend()
    }

    /// The endpoint requests go to: the storage's own, or the provider's public one.
    pub fn endpoint(&self) -> Endpoint {
        self.endpoint
            .clone()
            .unwrap_or_else(|| self.backend().default_endpoint())
    }
}
