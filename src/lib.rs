//! sprayvault: back up the state of kubespray-built Kubernetes nodes into an
//! age-encrypted git vault, and restore it onto fresh machines.
//!
//! The library never prints: operations take a [`progress::Progress`] handle and
//! return report values that the `sprayvault` binary renders.
//!
//! Its only user is that binary: what it does not reach is `pub(crate)`, and
//! the module documentation links to those parts too (read it with
//! `cargo doc --document-private-items`).
#![allow(rustdoc::private_intra_doc_links)]

pub mod backup;
pub mod certs;
pub mod control;
pub mod error;
pub mod etcd;
pub mod export;
pub mod facts;
pub mod history;
pub mod inventory;
pub mod metrics;
pub mod paths;
pub mod preflight;
pub mod progress;
pub mod replace;
pub mod restore;
pub mod source;
pub mod term;
pub mod vault;
pub mod verify;
