//! The NEW_TOKEN tokens a client context keeps for its connections (quinn-proto's
//! `TokenStore`): a few per server name, the oldest used first, a bounded number of names
//! (those least recently given a token are forgotten first).
//!
//! Our own rather than quinn's `TokenMemoryCache`, which holds the same bounds behind
//! `std::sync::Mutex`: the connections of one context run on any thread, and the race
//! checkers see our locks (`crate::sync`), not std's uninstrumented ones.
//! Must not touch: connections, sockets.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;

use crate::sync::Mutex;

/// Server names kept.
const SERVERS: usize = 256;
/// Tokens kept per server name (quinn's servers send two after a handshake).
const PER_SERVER: usize = 2;

#[derive(Default)]
pub struct TokenStore {
    st: Mutex<State>,
}

#[derive(Default)]
struct State {
    tokens: HashMap<String, VecDeque<Bytes>>,
    /// Server names by when they were last given a token, oldest first.
    order: VecDeque<String>,
}

impl quinn_proto::TokenStore for TokenStore {
    fn insert(&self, server_name: &str, token: Bytes) {
        let mut st = self.st.lock();
        st.order.retain(|n| n != server_name);
        st.order.push_back(server_name.to_owned());
        let q = st.tokens.entry(server_name.to_owned()).or_default();
        q.push_back(token);
        if q.len() > PER_SERVER {
            q.pop_front();
        }
        while st.order.len() > SERVERS {
            if let Some(old) = st.order.pop_front() {
                st.tokens.remove(&old);
            }
        }
    }

    fn take(&self, server_name: &str) -> Option<Bytes> {
        let mut st = self.st.lock();
        let q = st.tokens.get_mut(server_name)?;
        let t = q.pop_front();
        if q.is_empty() {
            st.tokens.remove(server_name);
            st.order.retain(|n| n != server_name);
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quinn_proto::TokenStore as _;

    #[test]
    fn oldest_first_a_few_per_server_and_a_bounded_number_of_servers() {
        let s = TokenStore::default();
        assert_eq!(s.take("a"), None);
        for t in [&b"1"[..], b"2", b"3"] {
            s.insert("a", Bytes::from_static(t));
        }
        s.insert("b", Bytes::from_static(b"x"));
        assert_eq!(s.take("a").as_deref(), Some(&b"2"[..]));
        assert_eq!(s.take("a").as_deref(), Some(&b"3"[..]));
        assert_eq!(s.take("a"), None);
        assert_eq!(s.take("b").as_deref(), Some(&b"x"[..]));
        for i in 0..SERVERS + 10 {
            s.insert(&format!("s{i}"), Bytes::from_static(b"t"));
        }
        assert_eq!(s.take("s0"), None, "the oldest names are forgotten");
        assert!(s.take(&format!("s{}", SERVERS + 9)).is_some());
        assert_eq!(s.st.lock().tokens.len(), SERVERS - 1);
    }
}
