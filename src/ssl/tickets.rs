//! Session tickets under keys the application (or a fleet secret) gives (issue 15): every
//! server holding the same keys resumes a session any of them issued.
//!
//! The keys arrive as OpenSSL's `SSL_CTX_set_tlsext_ticket_keys` takes them: 80 bytes each,
//! a 16-byte key name, a 32-byte HMAC secret and a 32-byte AES key. osslquic seals tickets
//! with AES-256-GCM (ring) under a key derived (HKDF-SHA256) from the 64 secret bytes, not
//! with OpenSSL's AES-CBC and HMAC: a ticket is opaque to its client, so only servers of the
//! fleet need to agree, and they all run osslquic.
//!
//! Rotation: the newest key (the first given) seals new tickets; the others still open the
//! tickets they sealed until they are dropped. A ticket is `name (16) || nonce (12) ||
//! sealed session || tag (16)`, the name authenticated as associated data.
//!
//! Or the application's key callback (`SSL_CTX_set_tlsext_ticket_key_evp_cb`) names the key
//! for each new ticket and finds the key of each ticket presented; it takes precedence over
//! keys, as in OpenSSL. The HMAC and AES keys it hands over make the AEAD key as a key given
//! with the same bytes would.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use parking_lot::RwLock;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// The size of one key, as OpenSSL counts it (name, HMAC secret, AES key).
pub const KEY_LEN: usize = 80;
/// How many keys a context holds: the newest and the previous ones still accepted.
pub const MAX_KEYS: usize = 4;
/// The size of a key's name.
pub const NAME_LEN: usize = 16;
const TAG_LEN: usize = 16;

/// What the application's key callback answered for one ticket.
pub enum CallbackKey {
    /// The key: its name, and its secrets (the HMAC key, then the AES key).
    Key([u8; NAME_LEN], Vec<u8>),
    /// No key: no ticket is issued, or the ticket presented is not resumed.
    None,
}

/// The application's key callback as the C boundary wraps it: given a name buffer (for the
/// callback to fill when sealing; the ticket's name when opening) and whether a ticket is
/// being sealed.
pub type KeyCallback = Arc<dyn Fn(&mut [u8; NAME_LEN], bool) -> CallbackKey + Send + Sync>;

/// The AEAD key made from a key's secret bytes. None only if ring refuses a 32-byte HKDF
/// output or AES-256 key, which it does not.
fn aead_key(secret: &[u8]) -> Option<LessSafeKey> {
    use aws_lc_rs::hkdf::{HKDF_SHA256, Salt};
    let mut k = [0u8; 32];
    let prk = Salt::new(HKDF_SHA256, b"osslquic ticket key v1").extract(secret);
    prk.expand(&[b"aes-256-gcm"], HKDF_SHA256)
        .ok()?
        .fill(&mut k)
        .ok()?;
    Some(LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &k).ok()?))
}

struct Key {
    raw: [u8; KEY_LEN],
    aead: LessSafeKey,
}

impl Key {
    fn new(raw: &[u8; KEY_LEN]) -> Option<Key> {
        Some(Key {
            raw: *raw,
            aead: aead_key(&raw[NAME_LEN..])?,
        })
    }
    fn name(&self) -> &[u8] {
        &self.raw[..NAME_LEN]
    }
}

/// A context's ticket keys (or key callback), shared by every server configuration made from
/// it: changing them reaches listeners and TLS servers already running.
pub struct Ticketer {
    keys: RwLock<Vec<Key>>,
    callback: RwLock<Option<KeyCallback>>,
    lifetime: AtomicU32,
    rng: SystemRandom,
}

impl std::fmt::Debug for Ticketer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticketer")
            .field("keys", &self.keys.read().len())
            .field("callback", &self.callback.read().is_some())
            .finish()
    }
}

impl Ticketer {
    /// A ticketer whose tickets announce `lifetime` seconds, holding no key yet.
    pub fn new(lifetime: u32) -> Ticketer {
        Ticketer {
            keys: RwLock::new(Vec::new()),
            callback: RwLock::new(None),
            lifetime: AtomicU32::new(lifetime),
            rng: SystemRandom::new(),
        }
    }

    /// Replaces the keys by `keys` (80 bytes each, newest first, at most `MAX_KEYS`).
    pub fn set(&self, keys: &[[u8; KEY_LEN]]) {
        *self.keys.write() = keys.iter().take(MAX_KEYS).filter_map(Key::new).collect();
    }

    /// Makes `key` the newest; the keys before it stay accepted (the oldest beyond
    /// `MAX_KEYS` are dropped). A key already held moves to the front.
    pub fn rotate(&self, key: &[u8; KEY_LEN]) {
        let Some(new) = Key::new(key) else { return };
        let mut keys = self.keys.write();
        keys.retain(|k| k.raw != *key);
        keys.insert(0, new);
        keys.truncate(MAX_KEYS);
    }

    /// The newest key, making a random one first if none is held (as OpenSSL's context
    /// always has one to report).
    pub fn newest(&self) -> Option<[u8; KEY_LEN]> {
        if let Some(k) = self.keys.read().first() {
            return Some(k.raw);
        }
        let mut raw = [0u8; KEY_LEN];
        self.rng.fill(&mut raw).ok()?;
        let new = Key::new(&raw)?;
        let mut keys = self.keys.write();
        if keys.is_empty() {
            keys.push(new);
        }
        keys.first().map(|k| k.raw)
    }

    /// SSL_CTX_set_tlsext_ticket_key_evp_cb: the callback (None: the keys again).
    pub fn set_callback(&self, cb: Option<KeyCallback>) {
        *self.callback.write() = cb;
    }

    pub fn set_lifetime(&self, secs: u32) {
        self.lifetime.store(secs, Ordering::Relaxed);
    }

    fn callback(&self) -> Option<KeyCallback> {
        self.callback.read().clone()
    }

    /// `name || nonce || seal(plain) || tag` under `aead`.
    fn seal(&self, name: &[u8], aead: &LessSafeKey, plain: &[u8]) -> Option<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).ok()?;
        let mut out = Vec::with_capacity(NAME_LEN + NONCE_LEN + plain.len() + TAG_LEN);
        out.extend_from_slice(name);
        out.extend_from_slice(&nonce);
        let mut body = plain.to_vec();
        aead.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(name),
            &mut body,
        )
        .ok()?;
        out.extend_from_slice(&body);
        Some(out)
    }
}

/// Opens `nonce || sealed || tag` (a ticket after its name) under `aead`.
fn open(name: &[u8], aead: &LessSafeKey, rest: &[u8]) -> Option<Vec<u8>> {
    let (nonce, sealed) = rest.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut body = sealed.to_vec();
    let plain = aead.open_in_place(nonce, Aad::from(name), &mut body).ok()?;
    Some(plain.to_vec())
}

impl rustls::server::ProducesTickets for Ticketer {
    fn enabled(&self) -> bool {
        self.callback.read().is_some() || !self.keys.read().is_empty()
    }

    fn lifetime(&self) -> u32 {
        self.lifetime.load(Ordering::Relaxed)
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        if let Some(cb) = self.callback() {
            let mut name = [0u8; NAME_LEN];
            let CallbackKey::Key(name, secret) = cb(&mut name, true) else {
                return None;
            };
            return self.seal(&name, &aead_key(&secret)?, plain);
        }
        let keys = self.keys.read();
        let key = keys.first()?;
        self.seal(key.name(), &key.aead, plain)
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        if cipher.len() < NAME_LEN + NONCE_LEN + TAG_LEN {
            return None;
        }
        let (name, rest) = cipher.split_at(NAME_LEN);
        if let Some(cb) = self.callback() {
            // The callback is given the ticket's name; the key it finds opens the ticket.
            let mut asked: [u8; NAME_LEN] = name.try_into().ok()?;
            let CallbackKey::Key(_, secret) = cb(&mut asked, false) else {
                return None;
            };
            return open(name, &aead_key(&secret)?, rest);
        }
        let keys = self.keys.read();
        let key = keys.iter().find(|k| k.name() == name)?;
        open(name, &key.aead, rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::server::ProducesTickets;

    fn key(b: u8) -> [u8; KEY_LEN] {
        let mut k = [b; KEY_LEN];
        k[0] = b.wrapping_add(1); // names differ from one key to the next
        k
    }

    #[test]
    fn tickets_open_under_the_same_keys_only() {
        let a = Ticketer::new(7200);
        assert!(!a.enabled());
        assert_eq!(a.encrypt(b"session"), None);
        a.set(&[key(1)]);
        let t = a.encrypt(b"session").unwrap();
        assert_eq!(t.len(), NAME_LEN + NONCE_LEN + 7 + TAG_LEN);
        assert_eq!(&t[..NAME_LEN], &key(1)[..NAME_LEN]);
        // Another server with the same key opens it; one with another key does not.
        let b = Ticketer::new(7200);
        b.set(&[key(1)]);
        assert_eq!(b.decrypt(&t).as_deref(), Some(&b"session"[..]));
        let c = Ticketer::new(7200);
        c.set(&[key(2)]);
        assert_eq!(c.decrypt(&t), None);
        // Same name, other secret bytes: refused by the tag.
        let mut forged = key(1);
        forged[40] ^= 1;
        c.set(&[forged]);
        assert_eq!(c.decrypt(&t), None);
        // Every single-bit change of the ticket is refused; truncations too.
        for i in 0..t.len() * 8 {
            let mut m = t.clone();
            m[i / 8] ^= 1 << (i % 8);
            assert_eq!(b.decrypt(&m), None, "bit {i}");
        }
        for n in 0..t.len() {
            assert_eq!(b.decrypt(&t[..n]), None, "{n} bytes");
        }
    }

    #[test]
    fn rotation_seals_under_the_newest_and_opens_under_the_previous() {
        let s = Ticketer::new(60);
        s.set(&[key(1)]);
        let old = s.encrypt(b"old").unwrap();
        s.rotate(&key(2));
        let new = s.encrypt(b"new").unwrap();
        assert_eq!(&new[..NAME_LEN], &key(2)[..NAME_LEN]);
        assert_eq!(s.decrypt(&old).as_deref(), Some(&b"old"[..]));
        assert_eq!(s.decrypt(&new).as_deref(), Some(&b"new"[..]));
        // Past MAX_KEYS rotations the first key is dropped, and its tickets with it.
        for b in 3..3 + MAX_KEYS as u8 - 1 {
            s.rotate(&key(b));
        }
        assert_eq!(s.decrypt(&old), None);
        assert_eq!(s.decrypt(&new).as_deref(), Some(&b"new"[..]));
        assert_eq!(s.newest(), Some(key(MAX_KEYS as u8 + 1)));
    }

    #[test]
    fn a_callback_takes_precedence_and_matches_keys_of_the_same_bytes() {
        let keyed = Ticketer::new(60);
        keyed.set(&[key(1)]);
        let cb = Ticketer::new(60);
        cb.set(&[key(2)]);
        // The callback knows key(1) by its name, and seals under it.
        cb.set_callback(Some(Arc::new(|name: &mut [u8; NAME_LEN], seal: bool| {
            let k = key(1);
            if seal {
                name.copy_from_slice(&k[..NAME_LEN]);
            } else if name[..] != k[..NAME_LEN] {
                return CallbackKey::None;
            }
            CallbackKey::Key(*name, k[NAME_LEN..].to_vec())
        })));
        let t = cb.encrypt(b"via callback").unwrap();
        assert_eq!(&t[..NAME_LEN], &key(1)[..NAME_LEN]);
        assert_eq!(keyed.decrypt(&t).as_deref(), Some(&b"via callback"[..]));
        let t = keyed.encrypt(b"via keys").unwrap();
        assert_eq!(cb.decrypt(&t).as_deref(), Some(&b"via keys"[..]));
        // A name the callback does not know: not opened, even if a key would.
        let other = Ticketer::new(60);
        other.set(&[key(2)]);
        assert_eq!(cb.decrypt(&other.encrypt(b"x").unwrap()), None);
        // No key from the callback: no ticket.
        cb.set_callback(Some(Arc::new(|_: &mut [u8; NAME_LEN], _| {
            CallbackKey::None
        })));
        assert!(cb.enabled());
        assert_eq!(cb.encrypt(b"x"), None);
        cb.set_callback(None);
        assert_eq!(
            cb.decrypt(&other.encrypt(b"y").unwrap()).as_deref(),
            Some(&b"y"[..])
        );
    }

    #[test]
    fn newest_makes_a_key_once() {
        let s = Ticketer::new(60);
        let k = s.newest().unwrap();
        assert_eq!(s.newest(), Some(k));
        assert!(s.enabled());
    }
}
