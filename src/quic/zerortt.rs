//! 0-RTT on a client connection: what the application wrote before the handshake (in 0-RTT
//! packets), kept until the server's answer. Accepted: forgotten. Rejected: quinn has dropped
//! every stream opened in 0-RTT and restarts its stream numbering, so the same streams are
//! opened again in the same order and their data (and FIN, or reset) written again, as 1-RTT
//! data; the application's stream objects keep their IDs and see nothing of it.
//! Owns: the log and the replay. Must not touch: the application's stream state (`stream`),
//! the engine.
#![deny(unsafe_code)]

use std::collections::BTreeMap;

use quinn_proto::{Connection, StreamId, VarInt, WriteError};

pub use crate::consts::{
    SSL_EARLY_DATA_ACCEPTED, SSL_EARLY_DATA_NOT_SENT, SSL_EARLY_DATA_REJECTED,
};

/// One stream opened before the handshake.
#[derive(Default)]
pub struct Early {
    data: Vec<u8>,
    /// How much of `data` the replay has written again.
    written: usize,
    fin: bool,
    reset: Option<VarInt>,
    /// The replay has opened the stream again.
    reopened: bool,
}

/// A client connection's 0-RTT, from the application's first early write.
#[derive(Default)]
pub enum ZeroRtt {
    /// No early data was written (or the connection is a server's).
    #[default]
    Off,
    /// Early data written; the server has not answered yet. The log holds every stream opened
    /// since (in ID order, which is opening order for each direction).
    Pending(BTreeMap<StreamId, Early>),
    Accepted,
    /// Rejected: what is still to be written again (empty once all of it is).
    Rejected(BTreeMap<StreamId, Early>),
}

impl ZeroRtt {
    /// The application starts writing early data (quinn has 0-RTT keys).
    pub fn start(&mut self) {
        if matches!(self, ZeroRtt::Off) {
            *self = ZeroRtt::Pending(BTreeMap::new());
        }
    }

    /// No early data was written.
    pub fn is_off(&self) -> bool {
        matches!(self, ZeroRtt::Off)
    }

    /// Early data is being written and the server has not answered.
    pub fn pending(&self) -> bool {
        matches!(self, ZeroRtt::Pending(_))
    }

    /// SSL_get_early_data_status for a client: as OpenSSL, "rejected" until the server
    /// accepts.
    pub fn status(&self) -> i32 {
        match self {
            ZeroRtt::Off => SSL_EARLY_DATA_NOT_SENT,
            ZeroRtt::Accepted => SSL_EARLY_DATA_ACCEPTED,
            ZeroRtt::Pending(_) | ZeroRtt::Rejected(_) => SSL_EARLY_DATA_REJECTED,
        }
    }

    fn log(&mut self) -> Option<&mut BTreeMap<StreamId, Early>> {
        match self {
            ZeroRtt::Pending(l) => Some(l),
            _ => None,
        }
    }

    /// A local stream was opened in 0-RTT.
    pub fn opened(&mut self, id: StreamId) {
        if let Some(l) = self.log() {
            l.entry(id).or_default();
        }
    }

    /// `data` was taken by quinn for stream `id` in 0-RTT.
    pub fn wrote(&mut self, id: StreamId, data: &[u8]) {
        if let Some(e) = self.log().and_then(|l| l.get_mut(&id)) {
            e.data.extend_from_slice(data);
        }
    }

    /// The logged stream `id`, before the answer or while it is written again.
    fn entry(&mut self, id: StreamId) -> Option<&mut Early> {
        match self {
            ZeroRtt::Pending(l) | ZeroRtt::Rejected(l) => l.get_mut(&id),
            _ => None,
        }
    }

    /// Stream `id` was concluded: FIN follows its early data (again, if rejected).
    pub fn finished(&mut self, id: StreamId) {
        if let Some(e) = self.entry(id) {
            e.fin = true;
        }
    }

    /// Stream `id` was reset: what was not written again is dropped.
    pub fn reset(&mut self, id: StreamId, code: VarInt) {
        if let Some(e) = self.entry(id) {
            e.reset = Some(code);
            if e.reopened {
                e.data.truncate(e.written);
            } else {
                e.data.clear();
            }
        }
    }

    /// Rejected early data is still being written again.
    pub fn replaying(&self) -> bool {
        matches!(self, ZeroRtt::Rejected(l) if !l.is_empty())
    }

    /// The handshake is complete: the server's answer is known.
    pub fn settle(&mut self, accepted: bool) {
        if let ZeroRtt::Pending(l) = self {
            *self = if accepted {
                ZeroRtt::Accepted
            } else {
                ZeroRtt::Rejected(std::mem::take(l))
            };
        }
    }

    /// Stream `id` still has data to be written again: new writes wait behind it.
    pub fn holds(&self, id: StreamId) -> bool {
        matches!(self, ZeroRtt::Rejected(l) if l.contains_key(&id))
    }

    /// Writes again what the rejected 0-RTT carried, as far as stream and flow-control credit
    /// allow now; the rest on a later call. Returns the streams finished with (to wake their
    /// writers) and whether anything was written.
    pub fn replay(&mut self, q: &mut Connection, done: &mut Vec<StreamId>) -> bool {
        let ZeroRtt::Rejected(l) = self else {
            return false;
        };
        let mut wrote = false;
        // Streams reopen in order within each direction: a direction stops at its first
        // stream without credit.
        let mut stuck = [false; 2];
        for (&id, e) in l.iter_mut() {
            let d = id.dir() as usize;
            if stuck[d] {
                continue;
            }
            if !e.reopened {
                match q.streams().open(id.dir()) {
                    Some(got) if got == id => e.reopened = true,
                    Some(got) => {
                        // quinn numbers streams from 0 again after a rejection, so this
                        // cannot happen; the stream is left unused rather than misused.
                        debug_assert_eq!(got, id, "0-RTT replay reopened another stream");
                        stuck[d] = true;
                        continue;
                    }
                    None => {
                        stuck[d] = true;
                        continue;
                    }
                }
                wrote = true;
            }
            let mut s = q.send_stream(id);
            while e.written < e.data.len() {
                match s.write(&e.data[e.written..]) {
                    Ok(n) => {
                        e.written += n;
                        wrote = true;
                    }
                    Err(WriteError::Blocked) => break,
                    // Stopped or closed by the peer already: nothing more to send.
                    Err(_) => {
                        e.written = e.data.len();
                        e.fin = false;
                    }
                }
            }
            if e.written < e.data.len() {
                continue;
            }
            if let Some(code) = e.reset {
                let _ = s.reset(code);
            } else if e.fin {
                let _ = s.finish();
            }
            wrote = true;
            done.push(id);
        }
        for id in done.iter() {
            l.remove(id);
        }
        if l.is_empty() {
            *self = ZeroRtt::Rejected(BTreeMap::new());
        }
        wrote
    }

    /// The direction's streams in the log (for tests).
    #[cfg(test)]
    fn count(&self, dir: quinn_proto::Dir) -> usize {
        match self {
            ZeroRtt::Pending(l) | ZeroRtt::Rejected(l) => {
                l.keys().filter(|id| id.dir() == dir).count()
            }
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quinn_proto::{Dir, Side};

    #[test]
    fn log_follows_the_state() {
        let mut z = ZeroRtt::default();
        let a = StreamId::new(Side::Client, Dir::Bi, 0);
        z.opened(a);
        assert_eq!(
            z.count(Dir::Bi),
            0,
            "nothing is logged before the first early write"
        );
        assert_eq!(z.status(), SSL_EARLY_DATA_NOT_SENT);
        z.start();
        z.opened(a);
        z.wrote(a, b"abc");
        z.finished(a);
        assert_eq!((z.count(Dir::Bi), z.status()), (1, SSL_EARLY_DATA_REJECTED));
        let mut acc = std::mem::take(&mut z);
        acc.settle(true);
        assert_eq!(acc.status(), SSL_EARLY_DATA_ACCEPTED);
        assert!(!acc.holds(a));
        let mut rej = ZeroRtt::default();
        rej.start();
        rej.opened(a);
        rej.wrote(a, b"abc");
        rej.settle(false);
        assert!(rej.holds(a));
        assert_eq!(rej.status(), SSL_EARLY_DATA_REJECTED);
        // After the answer nothing more is logged.
        let b = StreamId::new(Side::Client, Dir::Uni, 0);
        rej.opened(b);
        assert_eq!(rej.count(Dir::Uni), 0);
    }
}
