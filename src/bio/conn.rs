//! `BIO_s_connect`: a socket BIO that resolves a host and service, creates its own TCP
//! socket and connects it, blocking or not, then reads and writes like `BIO_s_socket`. With
//! `BIO_set_sock_type(b, SOCK_DGRAM)` (what BIO_new_ssl_connect does for a QUIC context) it
//! makes a connected UDP socket instead and then behaves as a `BIO_s_datagram` over it.
//! Owns: the connect state machine (bss_conn.c's states, return values and retry flags), the
//! parameters and resolved addresses, and host:service parsing shared with the accept BIO.
//! Must not touch: SSL. Name resolution is getaddrinfo (sys::resolve).

use std::ffi::CString;

use crate::sync::Mutex;

use std::sync::atomic::Ordering::Relaxed;

use super::addr::BioAddr;
use super::consts::*;
use super::dgram::DgramSock;
use super::sock::SockBio;
use super::{Bio, BioMethod};
use crate::error::*;
use crate::sys;

pub static METHOD_CONNECT: BioMethod = BioMethod {
    type_id: BIO_TYPE_CONNECT,
    name: "socket connect",
};

/// A failed step: what the C call returns (OpenSSL's value for that step) and the error.
pub type Failure = (i32, Error);

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Phase {
    Before,
    GetAddr,
    CreateSocket,
    Connect,
    Blocked,
    ConnectError,
    Ok,
}

struct State {
    phase: Phase,
    family: i32,
    host: Option<CString>,
    service: Option<CString>,
    /// BIO_SOCK_* options for BIO_connect: NONBLOCK from BIO_set_nbio, KEEPALIVE added.
    mode: i32,
    addrs: Vec<BioAddr>,
    iter: usize,
    /// OpenSSL's `init`: a host or port was set (BIO_get_fd answers -1 before).
    init: bool,
}

pub struct ConnectBio {
    st: Mutex<State>,
    /// The socket once created; its close flag is the BIO's (BIO_CLOSE by default).
    io: SockBio,
    /// SOCK_STREAM, or SOCK_DGRAM (BIO_set_sock_type, before connecting).
    sock_type: std::sync::atomic::AtomicI32,
    /// Datagram mode: the connected UDP socket, moved here from `io` once connected.
    dgram: DgramSock,
    /// Datagram mode: turn GSO/GRO on once connected (a QUIC port attached it before).
    offload_on_connect: std::sync::atomic::AtomicBool,
}

impl Default for ConnectBio {
    fn default() -> Self {
        let io = SockBio::default();
        io.set_close(true);
        ConnectBio {
            st: Mutex::new(State {
                phase: Phase::Before,
                family: BIO_FAMILY_IPANY,
                host: None,
                service: None,
                mode: 0,
                addrs: Vec::new(),
                iter: 0,
                init: false,
            }),
            io,
            sock_type: std::sync::atomic::AtomicI32::new(libc::SOCK_STREAM),
            dgram: DgramSock::new(),
            offload_on_connect: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

/// What BIO_parse_hostserv found: `Some(v)` for a part present in the string (v None for
/// an empty or `*` part), `None` for a part absent.
pub struct HostServ {
    pub host: Option<Option<String>>,
    pub service: Option<Option<String>>,
}

/// BIO_parse_hostserv: `host:service`, `[v6]:service`, or one part alone, which is the host
/// when `prio_host` (BIO_PARSE_PRIO_HOST) and the service otherwise. More than one colon
/// outside brackets is ambiguous (BIO_R_AMBIGUOUS_HOST_OR_SERVICE).
pub fn parse_hostserv(s: &str, prio_host: bool) -> Result<HostServ> {
    let malformed =
        || Error::bio(BIO_R_MALFORMED_HOST_OR_SERVICE).with(format!("host:service `{s}`"));
    let (h, p): (Option<&str>, Option<&str>) = if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']').ok_or_else(malformed)?;
        let after = &rest[end + 1..];
        let p = match after {
            "" => None,
            a if a.starts_with(':') => Some(&a[1..]),
            _ => return Err(malformed()),
        };
        (Some(&rest[..end]), p)
    } else {
        match (s.find(':'), s.rfind(':')) {
            (Some(a), Some(b)) if a != b => {
                return Err(
                    Error::bio(BIO_R_AMBIGUOUS_HOST_OR_SERVICE).with(format!("host:service `{s}`"))
                );
            }
            (Some(a), _) => (Some(&s[..a]), Some(&s[a + 1..])),
            _ if prio_host => (Some(s), None),
            _ => (None, Some(s)),
        }
    };
    if p.is_some_and(|p| p.contains(':')) {
        return Err(malformed());
    }
    let part = |x: &str| (!x.is_empty() && x != "*").then(|| x.to_string());
    Ok(HostServ {
        host: h.map(part),
        service: p.map(part),
    })
}

pub(crate) fn cstring(s: Option<String>) -> Result<Option<CString>> {
    s.map(CString::new)
        .transpose()
        .map_err(|_| Error::invalid("host or service contains NUL"))
}

/// The address family for getaddrinfo from a BIO_FAMILY_* value.
pub(crate) fn lookup_family(f: i32) -> Result<i32> {
    match f {
        BIO_FAMILY_IPV4 => Ok(libc::AF_INET),
        BIO_FAMILY_IPV6 => Ok(libc::AF_INET6),
        BIO_FAMILY_IPANY => Ok(libc::AF_UNSPEC),
        _ => Err(Error::bio(BIO_R_UNSUPPORTED_IP_FAMILY).with(format!("family {f}"))),
    }
}

/// The BIO_FAMILY_* value of a resolved address (BIO_get_conn_ip_family and friends).
pub(crate) fn family_of(a: Option<&BioAddr>, configured: i32) -> i32 {
    match a.map(|a| a.family()) {
        Some(libc::AF_INET6) => BIO_FAMILY_IPV6,
        Some(libc::AF_INET) => BIO_FAMILY_IPV4,
        None | Some(0) => configured,
        _ => -1,
    }
}

/// getaddrinfo's failure as BIO_lookup_ex queues it (ERR_LIB_BIO, ERR_R_SYS_LIB + message).
pub(crate) fn resolve(
    host: Option<&CString>,
    service: Option<&CString>,
    server: bool,
    family: i32,
) -> Result<Vec<BioAddr>> {
    resolve_type(host, service, server, family, libc::SOCK_STREAM)
}

fn resolve_type(
    host: Option<&CString>,
    service: Option<&CString>,
    server: bool,
    family: i32,
    socktype: i32,
) -> Result<Vec<BioAddr>> {
    let name = |c: Option<&CString>| {
        c.map_or_else(
            || "(none)".to_string(),
            |c| c.to_string_lossy().into_owned(),
        )
    };
    sys::resolve(
        host.map(|c| c.as_c_str()),
        service.map(|c| c.as_c_str()),
        server,
        family,
        socktype,
    )
    .map_err(|m| {
        Error::bio(ERR_R_SYS_LIB).with(format!(
            "{m} (host {}, service {})",
            name(host),
            name(service)
        ))
    })
}

/// Numeric host and service strings of an address (BIO_ADDR_hostname_string(a, 1) and
/// BIO_ADDR_service_string(a, 1)).
pub(crate) fn numeric_strings(a: &BioAddr) -> Option<(CString, CString)> {
    let sa = a.to_socket_addr()?;
    let host = CString::new(sa.ip().to_string()).ok()?;
    let serv = CString::new(sa.port().to_string()).ok()?;
    Some((host, serv))
}

fn os_detail(e: &std::io::Error, what: &str, st: &State) -> String {
    let name = |c: &Option<CString>| {
        c.as_ref()
            .map_or("(none)".into(), |c| c.to_string_lossy().into_owned())
    };
    format!(
        "calling {what}({}, {}): {e}",
        name(&st.host),
        name(&st.service)
    )
}

impl ConnectBio {
    /// The socket's fd, -1 before one is created.
    pub fn fd(&self) -> i32 {
        match self.dgram.fd() {
            -1 => self.io.fd(),
            fd => fd,
        }
    }

    /// BIO_set_sock_type: SOCK_STREAM or SOCK_DGRAM, before a socket exists.
    pub fn set_sock_type(&self, t: i32) -> Result<()> {
        if t != libc::SOCK_STREAM && t != libc::SOCK_DGRAM {
            return Err(Error::bio(BIO_R_UNSUPPORTED_PROTOCOL_FAMILY)
                .with(format!("socket type {t}: SOCK_STREAM or SOCK_DGRAM")));
        }
        if self.st.lock().phase > Phase::GetAddr {
            return Err(Error::bio(BIO_R_UNSUPPORTED_METHOD)
                .with("BIO_set_sock_type after the socket was made"));
        }
        self.sock_type.store(t, Relaxed);
        Ok(())
    }
    pub fn sock_type(&self) -> i32 {
        self.sock_type.load(Relaxed)
    }
    pub fn is_dgram(&self) -> bool {
        self.sock_type() == libc::SOCK_DGRAM
    }

    /// Datagram mode: the connected UDP socket, connecting first if need be (a UDP connect
    /// does not wait). Fails in stream mode, or as connecting fails.
    pub fn dgram_sock(&self, bio: &Bio) -> Result<&DgramSock> {
        if !self.is_dgram() {
            return Err(Error::unsupported(
                "a stream connect BIO has no datagram socket (BIO_set_sock_type(b, SOCK_DGRAM))",
            ));
        }
        if self.dgram.fd() < 0 {
            match self.state(bio) {
                Ok(1) => {}
                Ok(_) => return Err(Error::would_block()),
                Err((_, e)) => return Err(e),
            }
        }
        Ok(&self.dgram)
    }
    /// A QUIC port takes this BIO: its datagram socket is to be non-blocking with GSO/GRO,
    /// now if connected, else as it connects (the host is often set after BIO_push).
    pub fn prepare_for_port(&self) {
        self.set_nbio(true);
        if let Some(d) = self.dgram_if_connected() {
            let _ = d.set_nbio(true);
            d.set_offload(true, true);
            d.want_ecn();
        } else {
            self.offload_on_connect.store(true, Relaxed);
        }
    }

    /// Datagram mode, once connected: the socket (no connecting).
    pub fn dgram_if_connected(&self) -> Option<&DgramSock> {
        (self.is_dgram() && self.dgram.fd() >= 0).then_some(&self.dgram)
    }
    pub fn io(&self) -> &SockBio {
        &self.io
    }
    pub fn connected(&self) -> bool {
        self.st.lock().phase == Phase::Ok
    }

    /// BIO_C_SET_CONNECT: 0 hostname (host:service parsed, host priority), 1 port, 2 a
    /// BIO_ADDR (numeric strings of it), 3 the BIO_FAMILY_* at `*ptr`. Ok(0) for others.
    pub fn set_hostname(&self, s: &str) -> Result<()> {
        let hs = parse_hostserv(s, true);
        let mut st = self.st.lock();
        st.init = true;
        // bss_conn.c drops the hostname before parsing, whatever the outcome.
        st.host = None;
        let hs = hs?;
        if let Some(h) = hs.host {
            st.host = cstring(h)?;
        }
        if let Some(p) = hs.service {
            st.service = cstring(p)?;
        }
        Ok(())
    }
    pub fn set_port(&self, s: &str) -> Result<()> {
        let mut st = self.st.lock();
        st.init = true;
        st.service = cstring(Some(s.to_string()))?;
        Ok(())
    }
    pub fn set_address(&self, a: &BioAddr) -> Result<()> {
        let mut st = self.st.lock();
        st.init = true;
        let (h, s) = numeric_strings(a).ok_or_else(|| {
            Error::bio(BIO_R_UNSUPPORTED_IP_FAMILY).with("BIO_set_conn_address: not an IP address")
        })?;
        st.host = Some(h);
        st.service = Some(s);
        st.addrs.clear();
        st.iter = 0;
        Ok(())
    }
    pub fn set_family(&self, f: i32) {
        let mut st = self.st.lock();
        st.init = true;
        st.family = f;
    }
    pub fn set_nbio(&self, on: bool) {
        let mut st = self.st.lock();
        if on {
            st.mode |= BIO_SOCK_NONBLOCK;
        } else {
            st.mode &= !BIO_SOCK_NONBLOCK;
        }
    }
    pub fn set_mode(&self, m: i32) {
        self.st.lock().mode = m;
    }
    pub fn mode(&self) -> i32 {
        self.st.lock().mode
    }
    pub fn init(&self) -> bool {
        self.st.lock().init
    }
    /// BIO_get_conn_hostname / _port: pointers into the BIO, valid until the next change.
    pub fn hostname_ptr(&self) -> *const std::ffi::c_char {
        self.st
            .lock()
            .host
            .as_ref()
            .map_or(std::ptr::null(), |c| c.as_ptr())
    }
    pub fn port_ptr(&self) -> *const std::ffi::c_char {
        self.st
            .lock()
            .service
            .as_ref()
            .map_or(std::ptr::null(), |c| c.as_ptr())
    }
    /// BIO_get_conn_address: the address being (or last) tried, inside the BIO.
    pub fn address_ptr(&self) -> *const BioAddr {
        let st = self.st.lock();
        st.addrs
            .get(st.iter)
            .map_or(std::ptr::null(), |a| a as *const BioAddr)
    }
    pub fn family(&self) -> i32 {
        let st = self.st.lock();
        family_of(st.addrs.get(st.iter), st.family)
    }

    /// BIO_reset: back to the start, socket closed, addresses forgotten. OpenSSL returns 0.
    pub fn reset(&self, bio: &Bio) {
        let mut st = self.st.lock();
        self.close_socket(&st);
        st.phase = Phase::Before;
        st.addrs.clear();
        st.iter = 0;
        bio.clear_flags(!0);
    }

    fn close_socket(&self, st: &State) {
        self.dgram.release_fd();
        let fd = self.io.fd();
        if fd >= 0 && self.io.get_close() {
            if st.phase == Phase::Ok {
                sys::shutdown_both(fd);
            }
            let _ = sys::close(self.io.take_fd());
        }
    }

    /// Runs the state machine (bss_conn.c `conn_state`) as far as it goes now. Ok(1)
    /// connected; Ok(0) with BIO_FLAGS_IO_SPECIAL | SHOULD_RETRY and retry reason
    /// BIO_RR_CONNECT while a non-blocking connect is in progress; Err((ret, error)) with
    /// OpenSSL's return value: -1 before a socket exists, 0 when connecting failed.
    pub fn state(&self, bio: &Bio) -> std::result::Result<i32, Failure> {
        let mut st = self.st.lock();
        loop {
            match st.phase {
                Phase::Before => {
                    if st.host.is_none() && st.service.is_none() {
                        return Err((
                            -1,
                            Error::bio(BIO_R_NO_HOSTNAME_OR_SERVICE_SPECIFIED)
                                .with("hostname=(null) service=(null)"),
                        ));
                    }
                    st.phase = Phase::GetAddr;
                }
                Phase::GetAddr => {
                    let fam = lookup_family(st.family).map_err(|e| (-1, e))?;
                    st.addrs = resolve_type(
                        st.host.as_ref(),
                        st.service.as_ref(),
                        false,
                        fam,
                        self.sock_type(),
                    )
                    .map_err(|e| (-1, e))?;
                    st.iter = 0;
                    st.phase = Phase::CreateSocket;
                }
                Phase::CreateSocket => {
                    let fam = st.addrs[st.iter].family();
                    match sys::socket(fam, self.sock_type()) {
                        Ok(fd) => {
                            let close = self.io.get_close();
                            self.io.set_fd(fd, close).map_err(|e| (-1, e))?;
                            st.phase = Phase::Connect;
                        }
                        Err(e) => {
                            return Err((
                                -1,
                                Error::bio(BIO_R_UNABLE_TO_CREATE_SOCKET)
                                    .with(os_detail(&e, "socket", &st)),
                            ));
                        }
                    }
                }
                Phase::Connect => {
                    bio.clear_retry();
                    bio.set_retry_reason(0);
                    let fd = self.io.fd();
                    let dgram = self.is_dgram();
                    let r = sys::set_nonblocking(fd, st.mode & BIO_SOCK_NONBLOCK != 0)
                        .and_then(|_| {
                            if dgram {
                                return Ok(());
                            }
                            sys::setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1)
                        })
                        .and_then(|_| {
                            if st.mode & BIO_SOCK_NODELAY != 0 && !dgram {
                                sys::setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1)
                            } else {
                                Ok(())
                            }
                        })
                        .and_then(|_| sys::connect(fd, &st.addrs[st.iter]));
                    match r {
                        Ok(()) if dgram => {
                            // From here on a datagram socket BIO over the connected socket.
                            let close = self.io.get_close();
                            let fd = self.io.take_fd();
                            if let Err(e) = self.dgram.set_fd(fd, close) {
                                st.phase = Phase::ConnectError;
                                return Err((0, e));
                            }
                            if self.offload_on_connect.load(Relaxed) {
                                self.dgram.set_offload(true, true);
                                self.dgram.want_ecn();
                            }
                            st.phase = Phase::Ok;
                        }
                        Ok(()) => st.phase = Phase::Ok,
                        Err(e) if is_retry(&e) => {
                            bio.set_flags(BIO_FLAGS_IO_SPECIAL | BIO_FLAGS_SHOULD_RETRY);
                            bio.set_retry_reason(BIO_RR_CONNECT);
                            st.phase = Phase::Blocked;
                            return Ok(0);
                        }
                        Err(e) => {
                            if st.iter + 1 < st.addrs.len() {
                                st.iter += 1;
                                let _ = sys::close(self.io.take_fd());
                                st.phase = Phase::CreateSocket;
                                continue;
                            }
                            st.phase = Phase::ConnectError;
                            return Err((
                                0,
                                Error::bio(BIO_R_CONNECT_ERROR).with(os_detail(&e, "connect", &st)),
                            ));
                        }
                    }
                }
                Phase::Blocked => {
                    // OpenSSL polls without waiting and loops until the socket is writable;
                    // here a connect still in progress is another retry (never a busy loop).
                    let fd = self.io.fd();
                    if !sys::writable_now(fd).unwrap_or(true) {
                        bio.set_flags(BIO_FLAGS_IO_SPECIAL | BIO_FLAGS_SHOULD_RETRY);
                        bio.set_retry_reason(BIO_RR_CONNECT);
                        return Ok(0);
                    }
                    let err = sys::getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_ERROR)
                        .unwrap_or_else(|e| e.raw_os_error().unwrap_or(libc::EIO));
                    if err != 0 {
                        bio.clear_retry();
                        if st.iter + 1 < st.addrs.len() {
                            st.iter += 1;
                            let _ = sys::close(self.io.take_fd());
                            st.phase = Phase::CreateSocket;
                            continue;
                        }
                        let e = std::io::Error::from_raw_os_error(err);
                        return Err((
                            0,
                            Error::bio(BIO_R_NBIO_CONNECT_ERROR)
                                .with(os_detail(&e, "connect", &st)),
                        ));
                    }
                    bio.clear_retry();
                    st.phase = Phase::Ok;
                }
                Phase::ConnectError => {
                    return Err((0, Error::bio(BIO_R_CONNECT_ERROR)));
                }
                Phase::Ok => return Ok(1),
            }
        }
    }
}

fn is_retry(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINPROGRESS | libc::EALREADY | libc::EAGAIN | libc::EINTR)
    )
}

impl Drop for ConnectBio {
    fn drop(&mut self) {
        let st = self.st.lock();
        self.close_socket(&st);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hs(s: &str, prio_host: bool) -> (Option<Option<String>>, Option<Option<String>>) {
        let r = parse_hostserv(s, prio_host).expect("parses");
        (r.host, r.service)
    }

    #[test]
    fn parse_hostserv_as_openssl() {
        let some = |s: &str| Some(Some(s.to_string()));
        assert_eq!(hs("a:443", true), (some("a"), some("443")));
        assert_eq!(hs("a", true), (some("a"), None));
        assert_eq!(hs("443", false), (None, some("443")));
        assert_eq!(hs("*:443", false), (Some(None), some("443")));
        assert_eq!(hs("[::1]:443", true), (some("::1"), some("443")));
        assert_eq!(hs("[::1]", true), (some("::1"), None));
        let reason = |s: &str| parse_hostserv(s, true).err().map(|e| e.reason());
        assert_eq!(reason("a:b:c"), Some(BIO_R_AMBIGUOUS_HOST_OR_SERVICE));
        assert_eq!(reason("[::1"), Some(BIO_R_MALFORMED_HOST_OR_SERVICE));
        assert_eq!(reason("[::1]x"), Some(BIO_R_MALFORMED_HOST_OR_SERVICE));
    }
}
