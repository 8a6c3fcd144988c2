//! `BIO_s_accept`: a BIO that binds and listens on a host:service, then accepts connections,
//! each becoming a `BIO_s_socket` (owning its fd) chained after the accept BIO, where
//! BIO_pop detaches it. Reads and writes go to that socket BIO.
//! Owns: the accept state machine (bss_acpt.c's states, return values and retry flags), the
//! listening socket and the numeric name caches BIO_get_accept_name/_port and
//! BIO_get_peer_name/_port point into. Must not touch: SSL.

use std::ffi::{CString, c_char};
use std::sync::{Arc, OnceLock, Weak};

use crate::sync::Mutex;

use super::addr::BioAddr;
use super::conn::{Failure, cstring, family_of, lookup_family, numeric_strings, parse_hostserv};
use super::consts::*;
use super::{Bio, BioMethod, METHOD_SOCKET};
use crate::error::*;
use crate::sys;

pub static METHOD_ACCEPT: BioMethod = BioMethod {
    type_id: BIO_TYPE_ACCEPT,
    name: "socket accept",
};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Before,
    GetAddr,
    CreateSocket,
    Listen,
    Accept,
    Ok,
}

struct State {
    phase: Phase,
    family: i32,
    /// BIO_SOCK_* options of the listening socket (BIO_set_bind_mode, BIO_set_nbio_accept).
    bind_mode: i32,
    /// BIO_SOCK_NONBLOCK for accepted sockets (BIO_set_nbio on the accept BIO).
    accepted_mode: i32,
    addr: Option<CString>,
    serv: Option<CString>,
    sock: i32,
    close: bool,
    init: bool,
    addrs: Vec<BioAddr>,
    iter: usize,
    acc_name: Option<CString>,
    acc_serv: Option<CString>,
    peer_name: Option<CString>,
    peer_serv: Option<CString>,
}

pub struct AcceptBio {
    st: Mutex<State>,
    /// The BIO this state belongs to, to chain accepted sockets after it.
    me: OnceLock<Weak<Bio>>,
}

impl Default for AcceptBio {
    fn default() -> Self {
        AcceptBio {
            st: Mutex::new(State {
                phase: Phase::Before,
                family: BIO_FAMILY_IPANY,
                bind_mode: 0,
                accepted_mode: 0,
                addr: None,
                serv: None,
                sock: -1,
                close: true,
                init: false,
                addrs: Vec::new(),
                iter: 0,
                acc_name: None,
                acc_serv: None,
                peer_name: None,
                peer_serv: None,
            }),
            me: OnceLock::new(),
        }
    }
}

/// Which cached string BIO_C_GET_ACCEPT asks for.
#[derive(Clone, Copy)]
pub enum Name {
    AcceptHost,
    AcceptPort,
    PeerHost,
    PeerPort,
}

fn sys_detail(e: &std::io::Error, what: &str) -> String {
    format!("calling {what}(): {e}")
}

impl AcceptBio {
    pub(crate) fn set_me(&self, me: Weak<Bio>) {
        let _ = self.me.set(me);
    }

    /// The listening fd (-1 before BIO_do_accept created it).
    pub fn fd(&self) -> i32 {
        self.st.lock().sock
    }
    pub fn init(&self) -> bool {
        self.st.lock().init
    }

    /// BIO_set_accept_name: `[host:]service`, a lone part being the service
    /// (BIO_PARSE_PRIO_SERV); the host is replaced whatever the string holds.
    pub fn set_name(&self, s: &str) -> Result<()> {
        let hs = parse_hostserv(s, false);
        let mut st = self.st.lock();
        st.addr = None;
        let hs = hs?;
        if let Some(h) = hs.host {
            st.addr = cstring(h)?;
        }
        if let Some(p) = hs.service {
            st.serv = cstring(p)?;
        }
        st.init = true;
        Ok(())
    }
    pub fn set_port(&self, s: &str) -> Result<()> {
        let mut st = self.st.lock();
        st.serv = cstring(Some(s.to_string()))?;
        st.init = true;
        Ok(())
    }
    /// BIO_set_nbio_accept: a non-blocking listening socket, so BIO_do_accept never waits.
    pub fn set_nbio_accept(&self, on: bool) {
        let mut st = self.st.lock();
        if on {
            st.bind_mode |= BIO_SOCK_NONBLOCK;
        } else {
            st.bind_mode &= !BIO_SOCK_NONBLOCK;
        }
    }
    /// BIO_set_nbio: accepted sockets are made non-blocking.
    pub fn set_nbio(&self, on: bool) {
        let mut st = self.st.lock();
        if on {
            st.accepted_mode |= BIO_SOCK_NONBLOCK;
        } else {
            st.accepted_mode &= !BIO_SOCK_NONBLOCK;
        }
    }
    pub fn set_tfo(&self, on: bool) {
        let mut st = self.st.lock();
        if on {
            st.bind_mode |= BIO_SOCK_TFO;
        } else {
            st.bind_mode &= !BIO_SOCK_TFO;
        }
    }
    pub fn set_family(&self, f: i32) {
        self.st.lock().family = f;
    }
    pub fn family(&self) -> i32 {
        let st = self.st.lock();
        family_of(st.addrs.get(st.iter), st.family)
    }
    /// BIO_set_bind_mode replaces all options, BIO_set_nbio_accept's too (as OpenSSL).
    pub fn set_bind_mode(&self, m: i32) {
        self.st.lock().bind_mode = m;
    }
    pub fn bind_mode(&self) -> i32 {
        self.st.lock().bind_mode
    }
    pub fn get_close(&self) -> bool {
        self.st.lock().close
    }
    pub fn set_close(&self, c: bool) {
        self.st.lock().close = c;
    }

    /// BIO_set_fd: adopt an already listening socket; the next BIO_do_accept accepts.
    pub fn set_fd(&self, fd: i32, close: bool) {
        let mut st = self.st.lock();
        st.sock = fd;
        st.phase = Phase::Accept;
        st.close = close;
        st.init = true;
    }

    /// A cached numeric string (NULL until known), valid until the next bind or accept.
    pub fn name_ptr(&self, which: Name) -> *const c_char {
        let st = self.st.lock();
        let c = match which {
            Name::AcceptHost => &st.acc_name,
            Name::AcceptPort => &st.acc_serv,
            Name::PeerHost => &st.peer_name,
            Name::PeerPort => &st.peer_serv,
        };
        c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr())
    }

    /// BIO_reset: closes the listening socket and starts over (OpenSSL returns 0).
    pub fn reset(&self, bio: &Bio) {
        let mut st = self.st.lock();
        close_listener(&mut st);
        st.phase = Phase::Before;
        st.addrs.clear();
        st.iter = 0;
        bio.clear_flags(!0);
    }

    /// Runs the state machine (bss_acpt.c `acpt_state`). The first call resolves, binds and
    /// listens (Ok(1)); later calls accept one connection and chain a socket BIO owning it
    /// after this BIO (Ok(1)), or return Ok(1) at once while one is still chained. A
    /// non-blocking listener with nothing waiting gives Ok(-1) with BIO_FLAGS_IO_SPECIAL |
    /// SHOULD_RETRY and retry reason BIO_RR_ACCEPT, nothing queued. Failures return -1.
    pub fn state(&self, bio: &Bio) -> std::result::Result<i32, Failure> {
        let fail = |e: Error| (-1, e);
        loop {
            let mut st = self.st.lock();
            match st.phase {
                Phase::Before => {
                    if st.addr.is_none() && st.serv.is_none() {
                        return Err(fail(
                            Error::bio(BIO_R_NO_ACCEPT_ADDR_OR_SERVICE_SPECIFIED)
                                .with("hostname=(null), service=(null)"),
                        ));
                    }
                    st.acc_name = None;
                    st.acc_serv = None;
                    st.peer_name = None;
                    st.peer_serv = None;
                    st.phase = Phase::GetAddr;
                }
                Phase::GetAddr => {
                    let fam = lookup_family(st.family).map_err(fail)?;
                    st.addrs = super::conn::resolve(st.addr.as_ref(), st.serv.as_ref(), true, fam)
                        .map_err(fail)?;
                    st.iter = 0;
                    st.phase = Phase::CreateSocket;
                }
                Phase::CreateSocket => {
                    match sys::socket(st.addrs[st.iter].family(), libc::SOCK_STREAM) {
                        Ok(fd) => {
                            st.sock = fd;
                            st.phase = Phase::Listen;
                        }
                        Err(_) if st.iter + 1 < st.addrs.len() => st.iter += 1,
                        Err(e) => {
                            return Err(fail(
                                Error::bio(BIO_R_UNABLE_TO_CREATE_SOCKET)
                                    .with(sys_detail(&e, "socket")),
                            ));
                        }
                    }
                }
                Phase::Listen => {
                    if let Err(e) = listen(st.sock, &st.addrs[st.iter], st.bind_mode) {
                        let _ = sys::close(st.sock);
                        st.sock = -1;
                        return Err(fail(e));
                    }
                    match sys::local_addr(st.sock) {
                        Ok(a) => {
                            let (h, s) = numeric_strings(&a).unzip();
                            st.acc_name = h;
                            st.acc_serv = s;
                        }
                        Err(e) => {
                            let _ = sys::close(st.sock);
                            st.sock = -1;
                            return Err(fail(Error::sys(e.raw_os_error().unwrap_or(libc::EIO))));
                        }
                    }
                    st.phase = Phase::Accept;
                    return Ok(1);
                }
                Phase::Accept => {
                    if bio.next_bio().is_some() {
                        st.phase = Phase::Ok;
                        continue;
                    }
                    bio.clear_retry();
                    bio.set_retry_reason(0);
                    st.peer_name = None;
                    st.peer_serv = None;
                    let (sock, nb) = (st.sock, st.accepted_mode & BIO_SOCK_NONBLOCK != 0);
                    // A blocking accept waits: not under this BIO's lock.
                    drop(st);
                    let got = sys::accept_peer(sock, nb);
                    let mut st = self.st.lock();
                    let (fd, peer) = match got {
                        Ok(Some(x)) => x,
                        Ok(None) => {
                            bio.set_flags(BIO_FLAGS_IO_SPECIAL | BIO_FLAGS_SHOULD_RETRY);
                            bio.set_retry_reason(BIO_RR_ACCEPT);
                            return Ok(-1);
                        }
                        Err(e) => {
                            return Err(fail(
                                Error::bio(BIO_R_ACCEPT_ERROR).with(sys_detail(&e, "accept")),
                            ));
                        }
                    };
                    let child = Bio::new(&METHOD_SOCKET);
                    if let Err(e) = child.sock().expect("socket kind").set_fd(fd, true) {
                        let _ = sys::close(fd);
                        return Err(fail(e));
                    }
                    let me =
                        self.me.get().and_then(Weak::upgrade).ok_or_else(|| {
                            fail(Error::internal("accept BIO without its handle"))
                        })?;
                    Bio::push(&me, &child);
                    // The child's one reference is the chain's, as in OpenSSL: BIO_pop hands
                    // it to the caller, BIO_free_all releases it.
                    let _ = Arc::into_raw(child);
                    let (h, s) = numeric_strings(&peer).unzip();
                    st.peer_name = h;
                    st.peer_serv = s;
                    st.phase = Phase::Ok;
                    return Ok(1);
                }
                Phase::Ok => {
                    if bio.next_bio().is_none() {
                        st.phase = Phase::Accept;
                        continue;
                    }
                    return Ok(1);
                }
            }
        }
    }
}

/// BIO_listen: blocking mode per BIO_SOCK_NONBLOCK, KEEPALIVE/NODELAY, IPV6_V6ONLY per
/// BIO_SOCK_V6_ONLY, SO_REUSEADDR per BIO_SOCK_REUSEADDR, then bind and listen.
fn listen(fd: i32, a: &BioAddr, mode: i32) -> Result<()> {
    let opt = |level, name, on: bool, reason| {
        sys::setsockopt_int(fd, level, name, on as i32)
            .map_err(|e| Error::bio(reason).with(sys_detail(&e, "setsockopt")))
    };
    sys::set_nonblocking(fd, mode & BIO_SOCK_NONBLOCK != 0)
        .map_err(|e| Error::bio(BIO_R_UNABLE_TO_LISTEN_SOCKET).with(sys_detail(&e, "fcntl")))?;
    if mode & BIO_SOCK_KEEPALIVE != 0 {
        opt(
            libc::SOL_SOCKET,
            libc::SO_KEEPALIVE,
            true,
            BIO_R_UNABLE_TO_KEEPALIVE,
        )?;
    }
    if mode & BIO_SOCK_NODELAY != 0 {
        opt(
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            true,
            BIO_R_UNABLE_TO_NODELAY,
        )?;
    }
    if a.family() == libc::AF_INET6 {
        let v6only = mode & BIO_SOCK_V6_ONLY != 0;
        opt(
            libc::IPPROTO_IPV6,
            libc::IPV6_V6ONLY,
            v6only,
            BIO_R_LISTEN_V6_ONLY,
        )?;
    }
    if mode & BIO_SOCK_REUSEADDR != 0 {
        opt(
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR,
            true,
            BIO_R_UNABLE_TO_REUSEADDR,
        )?;
    }
    sys::bind_listen(fd, a).map_err(|(bind, e)| {
        if bind {
            Error::bio(BIO_R_UNABLE_TO_BIND_SOCKET).with(sys_detail(&e, "bind"))
        } else {
            Error::bio(BIO_R_UNABLE_TO_LISTEN_SOCKET).with(sys_detail(&e, "listen"))
        }
    })
}

fn close_listener(st: &mut State) {
    if st.sock >= 0 {
        sys::shutdown_both(st.sock);
        let _ = sys::close(st.sock);
        st.sock = -1;
    }
}

impl Drop for AcceptBio {
    fn drop(&mut self) {
        let st = self.st.get_mut();
        if st.close {
            close_listener(st);
        }
    }
}
