//! Host crypto in Envoy: the core's backend ([`crate::jwt::host_crypto`]) over the
//! `verify_signature` foreign function, installed VM-wide.

use std::cell::RefCell;
use std::rc::Rc;

use super::host::{self, HostStatus, NOT_FOUND};
use crate::jwt::host_crypto::{self, VerifySignatureFn};

/// Envoy's `verify_signature` foreign function, called with our own raw host call.
#[derive(Debug, Clone, Copy)]
pub struct Envoy;

impl VerifySignatureFn for Envoy {
    type Status = HostStatus;

    fn call(&self, arguments: &[u8]) -> Result<Vec<u8>, HostStatus> {
        host::call_foreign_function("verify_signature", arguments)
    }

    fn is_not_found(status: HostStatus) -> bool {
        status == NOT_FOUND
    }
}

/// The signature backend in Envoy.
pub type HostCrypto = host_crypto::HostCrypto<Envoy>;
/// A host answer that is not a verdict.
pub type HostAnswer = host_crypto::HostAnswer<HostStatus>;

thread_local! {
    /// The VM's backend (a VM is one thread): pure Rust until the root context has asked the
    /// host at VM start, then whatever [`HostCrypto::detect`] found.
    static CURRENT: RefCell<Rc<HostCrypto>> = RefCell::new(Rc::new(HostCrypto::pure(Envoy)));
}

/// Makes `crypto` the VM's backend.
pub fn install(crypto: HostCrypto) {
    CURRENT.with(|c| {
        if let Ok(mut c) = c.try_borrow_mut() {
            *c = Rc::new(crypto);
        }
    });
}

/// The VM's backend, for one decision.
pub fn current() -> Rc<HostCrypto> {
    CURRENT.with(|c| match c.try_borrow() {
        Ok(c) => Rc::clone(&c),
        Err(_) => Rc::new(HostCrypto::pure(Envoy)),
    })
}
