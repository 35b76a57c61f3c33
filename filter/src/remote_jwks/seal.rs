//! Shared-data records that only a mesh-authn VM with the same configuration can name, write
//! or read as valid.
//!
//! Shared data is one namespace per `vm_id`, and Istio never sets `vm_id` for a `WasmPlugin`:
//! every plugin on a proxy can read and write every key. So a record's name and its MAC both
//! come from a key derived from what other plugins do not see: this plugin's root id and its
//! exact configuration bytes. A record whose MAC does not verify is read as absent (this VM
//! then fetches the keys itself); a record from another configuration lives under other
//! names and is never read at all.
//!
//! The key is not a secret from whoever knows the exact plugin configuration (the policies
//! pasted into it are often readable in the cluster); see the README's Security section.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// Domain separation for the key derivation (bump to change the format).
const KEY_CONTEXT: &[u8] = b"mesh-authn shared-data key 1\0";
/// Hex characters of the MAC at the start of a sealed record (the full 256 bits).
const MAC_HEX: usize = 64;
/// Hex characters of a record name's keyed part (128 bits: not guessable, not colliding).
const NAME_HEX: usize = 32;

/// The key of one configuration: names and MACs of its shared records. Computed once per
/// configuration (in `on_configure`), never per request.
#[derive(Clone)]
pub struct Seal {
    key: [u8; 32],
}

impl std::fmt::Debug for Seal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Seal(..)")
    }
}

impl Seal {
    /// The key for the plugin with `root_id` and configuration bytes `configuration`.
    pub fn new(root_id: &[u8], configuration: &[u8]) -> Seal {
        let mut h = Sha256::new();
        h.update(KEY_CONTEXT);
        // Length-prefixed, so no (root id, configuration) pair collides with another.
        h.update((root_id.len() as u64).to_be_bytes());
        h.update(root_id);
        h.update(configuration);
        Seal {
            key: h.finalize().into(),
        }
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes a key of any length: `new_from_slice` cannot fail here.
        match HmacSha256::new_from_slice(&self.key) {
            Ok(mac) => mac,
            Err(_) => HmacSha256::new(&Default::default()),
        }
    }

    /// The shared-data name of record `kind` (`state`, `body`) of the source named `source`:
    /// `mesh-authn.jwks.<kind>.<128 keyed bits in hex>`. Without the key it cannot be
    /// predicted, so another plugin cannot even address it.
    pub fn name(&self, kind: &str, source: &str) -> String {
        let mut mac = self.mac();
        mac.update(b"name\0");
        mac.update(kind.as_bytes());
        mac.update(b"\0");
        mac.update(source.as_bytes());
        let tag = mac.finalize().into_bytes();
        let mut name = format!("mesh-authn.jwks.{kind}.");
        push_hex(&mut name, tag.get(..NAME_HEX / 2).unwrap_or_default());
        name
    }

    /// `payload` sealed for the record `name`: `<hex HMAC(name, payload)>\n<payload>`. The name
    /// is under the MAC, so a record cannot be moved to another name (a body to a state, one
    /// source's record to another's).
    pub fn seal(&self, name: &str, payload: &[u8]) -> Vec<u8> {
        let mut mac = self.mac();
        Self::feed(&mut mac, name, payload);
        let mut out = String::with_capacity(MAC_HEX + 1 + payload.len());
        push_hex(&mut out, &mac.finalize().into_bytes());
        out.push('\n');
        let mut out = out.into_bytes();
        out.extend_from_slice(payload);
        out
    }

    /// The payload of a record read from `name`, if its MAC verifies (compared in constant
    /// time); `None` for anything else: garbage, truncated, another key's, another name's.
    pub fn open<'a>(&self, name: &str, record: &'a [u8]) -> Option<&'a [u8]> {
        let hex = record.get(..MAC_HEX)?;
        if record.get(MAC_HEX) != Some(&b'\n') {
            return None;
        }
        let payload = record.get(MAC_HEX + 1..)?;
        let mut tag = [0u8; MAC_HEX / 2];
        for (byte, pair) in tag.iter_mut().zip(hex.chunks_exact(2)) {
            let text = std::str::from_utf8(pair).ok()?;
            *byte = u8::from_str_radix(text, 16).ok()?;
        }
        let mut mac = self.mac();
        Self::feed(&mut mac, name, payload);
        mac.verify_slice(&tag).ok()?;
        Some(payload)
    }

    fn feed(mac: &mut HmacSha256, name: &str, payload: &[u8]) {
        mac.update(b"record\0");
        mac.update(&(name.len() as u64).to_be_bytes());
        mac.update(name.as_bytes());
        mac.update(payload);
    }
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        for nibble in [b >> 4, b & 0xf] {
            out.push(char::from(*HEX.get(usize::from(nibble)).unwrap_or(&b'0')));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote_jwks::cache::{decode_body, encode_body, Shared};

    fn seal() -> Seal {
        Seal::new(b"mesh-authn", b"policies: [a]")
    }

    #[test]
    fn names_are_keyed_and_stable() {
        let a = seal();
        let name = a.name("state", "jwks_uri http://idp/keys");
        assert_eq!(name, seal().name("state", "jwks_uri http://idp/keys"));
        assert!(name.starts_with("mesh-authn.jwks.state."), "{name}");
        assert_eq!(name.len(), "mesh-authn.jwks.state.".len() + NAME_HEX);
        assert!(!name.contains("idp"), "{name}");
        // Another kind, source, configuration or root id: another name.
        assert_ne!(name, a.name("body", "jwks_uri http://idp/keys"));
        assert_ne!(name, a.name("state", "jwks_uri http://idp/other"));
        assert_ne!(
            name,
            Seal::new(b"mesh-authn", b"policies: [b]").name("state", "jwks_uri http://idp/keys")
        );
        assert_ne!(
            name,
            Seal::new(b"other", b"policies: [a]").name("state", "jwks_uri http://idp/keys")
        );
        // The length prefix: moving bytes between root id and configuration changes the key.
        assert_ne!(
            Seal::new(b"ab", b"c").name("state", "s"),
            Seal::new(b"a", b"bc").name("state", "s")
        );
    }

    #[test]
    fn a_sealed_record_opens_only_with_its_key_and_name() {
        let a = seal();
        let name = a.name("state", "s");
        let payload = Shared {
            version: 2,
            fetched_at: 10,
            ..Shared::default()
        }
        .encode();
        let record = a.seal(&name, &payload);
        assert_eq!(a.open(&name, &record), Some(&payload[..]));
        // Another configuration's key (another mesh-authn plugin, or a guess).
        let other = Seal::new(b"mesh-authn", b"policies: [b]");
        assert_eq!(other.open(&name, &record), None);
        // Moved to another name.
        assert_eq!(a.open(&a.name("state", "t"), &record), None);
        assert_eq!(a.open(&a.name("body", "s"), &record), None);
    }

    #[test]
    fn forged_truncated_and_garbage_records_are_refused() {
        let a = seal();
        let name = a.name("state", "s");
        let forged = Shared {
            version: 1000,
            fetched_at: u64::MAX / 2,
            lease_until: u64::MAX,
            ..Shared::default()
        }
        .encode();
        let record = a.seal(&name, &forged);
        // A flipped payload byte, a flipped MAC digit, a MAC in upper case.
        for i in [0, MAC_HEX - 1, MAC_HEX + 1, record.len() - 1] {
            let mut bad = record.clone();
            bad[i] ^= 1;
            assert_eq!(a.open(&name, &bad), None, "byte {i} flipped");
        }
        let upper = record.to_ascii_uppercase();
        assert_eq!(a.open(&name, &upper), None);
        // Truncated anywhere.
        for cut in 0..record.len() {
            assert_eq!(a.open(&name, &record[..cut]), None, "cut at {cut}");
        }
        // What a plugin without the key can write: the payload alone, a zero MAC, garbage.
        assert_eq!(a.open(&name, &forged), None);
        let mut zero = vec![b'0'; MAC_HEX];
        zero.push(b'\n');
        zero.extend_from_slice(&forged);
        assert_eq!(a.open(&name, &zero), None);
        assert_eq!(a.open(&name, b""), None);
        assert_eq!(a.open(&name, &[0xff; 200]), None);
        // A MAC of the right shape but non-hex digits.
        let mut nonhex = record.clone();
        nonhex[0] = b'g';
        assert_eq!(a.open(&name, &nonhex), None);
    }

    #[test]
    fn a_replayed_older_body_does_not_match_a_newer_state() {
        // Bodies carry their version under the MAC; a VM installs a body only when its version
        // is the state's. A replayed older body (genuine, of version 1) opens, but names
        // version 1, so it is not taken for version 2's keys.
        let a = seal();
        let body_name = a.name("body", "s");
        let old = a.seal(&body_name, &encode_body(1, b"{\"keys\":[]}"));
        let opened = a.open(&body_name, &old).unwrap();
        assert_eq!(decode_body(opened).map(|(v, _)| v), Some(1));
        // Its version cannot be edited without breaking the MAC.
        let mut edited = old.clone();
        let at = MAC_HEX + 1;
        assert_eq!(edited[at], b'1');
        edited[at] = b'2';
        assert_eq!(a.open(&body_name, &edited), None);
    }
}
