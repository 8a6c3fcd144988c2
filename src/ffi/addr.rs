//! BIO_ADDR_*, BIO_lookup_ex / BIO_ADDRINFO_* and the plain socket helpers (BIO_socket etc.).

use std::ffi::{CString, c_char, c_int, c_void};

use super::crypto::c_string;
use super::{ffi_entry, guard_with, mut_arg, opt_cstr, put, ref_arg};
use crate::bio::addr::BioAddr;
use crate::bio::consts::*;
use crate::bio::msg::BIO_ADDR;
use crate::error::*;
use crate::sys;

fn addr<'a>(p: *const BIO_ADDR, name: &str) -> Result<&'a BioAddr> {
    ref_arg(p as *const BioAddr, name)
}
fn addr_mut<'a>(p: *mut BIO_ADDR, name: &str) -> Result<&'a mut BioAddr> {
    mut_arg(p as *mut BioAddr, name)
}

/// Allocates a cleared address (AF_UNSPEC). Free with BIO_ADDR_free. See BIO_ADDR_new(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_ADDR_new() -> *mut BIO_ADDR {
    ffi_entry!(BIO_ADDR_new, {
        Ok(Box::into_raw(Box::new(BioAddr::default())) as *mut BIO_ADDR)
    })
}

/// Frees an address. NULL is a no-op. See BIO_ADDR_free(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_ADDR_free(ap: *mut BIO_ADDR) {
    if !ap.is_null() {
        // SAFETY: non-NULL addresses come from BIO_ADDR_new/dup (Box<BioAddr>).
        drop(unsafe { Box::from_raw(ap as *mut BioAddr) });
    }
}

/// Resets an address to AF_UNSPEC. NULL is a no-op. See BIO_ADDR_clear(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_ADDR_clear(ap: *mut BIO_ADDR) {
    if let Ok(a) = addr_mut(ap, "ap") {
        a.clear();
    }
}

/// Copies `src` into `dst`. Returns 1, or 0 on NULL. See BIO_ADDR_copy(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_ADDR_copy(dst: *mut BIO_ADDR, src: *const BIO_ADDR) -> c_int {
    ffi_entry!(BIO_ADDR_copy, {
        let s = *addr(src, "src")?;
        *addr_mut(dst, "dst")? = s;
        Ok(1)
    })
}

/// A new copy of `ap` (free with BIO_ADDR_free), or NULL. See BIO_ADDR_dup(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_ADDR_dup(ap: *const BIO_ADDR) -> *mut BIO_ADDR {
    ffi_entry!(BIO_ADDR_dup, {
        Ok(Box::into_raw(Box::new(*addr(ap, "ap")?)) as *mut BIO_ADDR)
    })
}

/// Fills `ap` from a raw address: `where_` is an in_addr, in6_addr (network order) or a Unix
/// path; `port` is in network order. Returns 1, or 0. See BIO_ADDR_rawmake(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_ADDR_rawmake(
    ap: *mut BIO_ADDR,
    family: c_int,
    where_: *const c_void,
    wherelen: usize,
    port: u16,
) -> c_int {
    ffi_entry!(BIO_ADDR_rawmake, {
        let a = addr_mut(ap, "ap")?;
        let w = super::slice_arg(where_, wherelen, "where")?;
        *a = BioAddr::rawmake(family, w, port)?;
        Ok(1)
    })
}

/// The address family (AF_INET, AF_INET6, AF_UNIX) or AF_UNSPEC. See BIO_ADDR_family(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_ADDR_family(ap: *const BIO_ADDR) -> c_int {
    ffi_entry!(BIO_ADDR_family, { Ok(addr(ap, "ap")?.family()) })
}

/// Copies the raw address into `p` (if non-NULL) and its length into `*l` (if non-NULL).
/// Returns 1, or 0 for an unset address. See BIO_ADDR_rawaddress(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_ADDR_rawaddress(ap: *const BIO_ADDR, p: *mut c_void, l: *mut usize) -> c_int {
    ffi_entry!(BIO_ADDR_rawaddress, {
        let raw = addr(ap, "ap")?
            .raw_address()
            .ok_or_else(|| Error::bio(BIO_R_UNSUPPORTED_IP_FAMILY).with("address is unset"))?;
        if !p.is_null() {
            // SAFETY: the caller provides room for the address (size first asked with p = NULL).
            unsafe { std::ptr::copy_nonoverlapping(raw.as_ptr(), p.cast::<u8>(), raw.len()) };
        }
        put(l, raw.len());
        Ok(1)
    })
}

/// The port in network byte order (0 if none). See BIO_ADDR_rawport(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_ADDR_rawport(ap: *const BIO_ADDR) -> u16 {
    ffi_entry!(BIO_ADDR_rawport, { Ok(addr(ap, "ap")?.raw_port()) })
}

fn name_info(a: &BioAddr, numeric: bool, want_host: bool) -> Result<String> {
    if a.is_unix() {
        return Ok(String::from_utf8_lossy(&a.raw_address().unwrap_or_default()).into_owned());
    }
    if a.is_unspec() {
        return Err(Error::bio(BIO_R_UNSUPPORTED_IP_FAMILY).with("address is unset"));
    }
    let (host, serv) = sys::name_info(a, numeric)
        .map_err(|msg| Error::sys(libc::EINVAL).with(format!("getnameinfo: {msg}")))?;
    Ok(if want_host { host } else { serv })
}

/// The host part as text (numeric if `numeric` != 0); free with OPENSSL_free. NULL on
/// failure. See BIO_ADDR_hostname_string(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_ADDR_hostname_string(ap: *const BIO_ADDR, numeric: c_int) -> *mut c_char {
    ffi_entry!(BIO_ADDR_hostname_string, {
        Ok(c_string(&name_info(addr(ap, "ap")?, numeric != 0, true)?))
    })
}

/// The port (service) as text; free with OPENSSL_free. See BIO_ADDR_service_string(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_ADDR_service_string(ap: *const BIO_ADDR, numeric: c_int) -> *mut c_char {
    ffi_entry!(BIO_ADDR_service_string, {
        Ok(c_string(&name_info(addr(ap, "ap")?, numeric != 0, false)?))
    })
}

/// The path of a Unix address; free with OPENSSL_free. NULL for other families.
/// See BIO_ADDR_path_string(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_ADDR_path_string(ap: *const BIO_ADDR) -> *mut c_char {
    ffi_entry!(BIO_ADDR_path_string, {
        let a = addr(ap, "ap")?;
        if a.family() != libc::AF_UNIX {
            return Err(Error::bio(BIO_R_UNSUPPORTED_IP_FAMILY).with("not a Unix address"));
        }
        Ok(c_string(&name_info(a, true, true)?))
    })
}

// ---- name lookup

/// One result of BIO_lookup_ex; the C `BIO_ADDRINFO *` points at one of these.
pub struct AddrInfo {
    family: c_int,
    socktype: c_int,
    protocol: c_int,
    addr: BioAddr,
    next: Option<Box<AddrInfo>>,
}

/// The opaque C type behind `BIO_ADDRINFO *`.
#[allow(non_camel_case_types)]
pub struct bio_addrinfo_st {
    _opaque: [u8; 0],
}
pub type BIO_ADDRINFO = bio_addrinfo_st;

fn info<'a>(p: *const BIO_ADDRINFO) -> Result<&'a AddrInfo> {
    ref_arg(p as *const AddrInfo, "bai")
}

/// Resolves `host`/`service` (either may be NULL) into a list of addresses. `lookup_type` is
/// BIO_LOOKUP_CLIENT or BIO_LOOKUP_SERVER (passive). Returns 1 with `*res` set (free with
/// BIO_ADDRINFO_free), or 0. See BIO_lookup_ex(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_lookup_ex(
    host: *const c_char,
    service: *const c_char,
    lookup_type: c_int,
    family: c_int,
    socktype: c_int,
    protocol: c_int,
    res: *mut *mut BIO_ADDRINFO,
) -> c_int {
    ffi_entry!(BIO_lookup_ex, {
        lookup(host, service, lookup_type, family, socktype, protocol, res)
    })
}

/// BIO_lookup_ex with protocol 0. See BIO_lookup(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_lookup(
    host: *const c_char,
    service: *const c_char,
    lookup_type: c_int,
    family: c_int,
    socktype: c_int,
    res: *mut *mut BIO_ADDRINFO,
) -> c_int {
    ffi_entry!(BIO_lookup, {
        lookup(host, service, lookup_type, family, socktype, 0, res)
    })
}

/// The body of BIO_lookup_ex and BIO_lookup.
fn lookup(
    host: *const c_char,
    service: *const c_char,
    lookup_type: c_int,
    family: c_int,
    socktype: c_int,
    protocol: c_int,
    res: *mut *mut BIO_ADDRINFO,
) -> Result<c_int> {
    let out = mut_arg(res, "res")?;
    *out = std::ptr::null_mut();
    let host = opt_cstr(host, "host")?;
    let service = opt_cstr(service, "service")?;
    if !matches!(
        family,
        libc::AF_UNSPEC | libc::AF_INET | libc::AF_INET6 | libc::AF_UNIX
    ) {
        return Err(Error::bio(BIO_R_UNSUPPORTED_IP_FAMILY).with(format!("family {family}")));
    }
    if family == libc::AF_UNIX {
        let path = host.ok_or_else(|| Error::null("host"))?;
        let a = BioAddr::rawmake(libc::AF_UNIX, path.as_bytes(), 0)?;
        let ai = AddrInfo {
            family,
            socktype,
            protocol: 0,
            addr: a,
            next: None,
        };
        *out = Box::into_raw(Box::new(ai)) as *mut BIO_ADDRINFO;
        return Ok(1);
    }
    let chost = host
        .map(CString::new)
        .transpose()
        .map_err(|_| Error::invalid("host contains NUL"))?;
    let cserv = service
        .map(CString::new)
        .transpose()
        .map_err(|_| Error::invalid("service contains NUL"))?;
    let found = sys::lookup(
        chost.as_deref(),
        cserv.as_deref(),
        lookup_type == BIO_LOOKUP_SERVER,
        family,
        socktype,
        protocol,
    )
    .map_err(|msg| {
        Error::bio(BIO_R_LOOKUP_RETURNED_NOTHING).with(format!(
            "{}:{}: {msg}",
            host.unwrap_or(""),
            service.unwrap_or("")
        ))
    })?;
    let items = found.into_iter().map(|i| AddrInfo {
        family: i.family,
        socktype: i.socktype,
        protocol: i.protocol,
        addr: i.addr,
        next: None,
    });
    let mut head: Option<Box<AddrInfo>> = None;
    for mut it in items.into_iter().rev() {
        it.next = head.take();
        head = Some(Box::new(it));
    }
    let head = head.ok_or_else(|| Error::bio(BIO_R_LOOKUP_RETURNED_NOTHING))?;
    *out = Box::into_raw(head) as *mut BIO_ADDRINFO;
    Ok(1)
}

/// The next entry, or NULL at the end (or for NULL). See BIO_ADDRINFO_next(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_ADDRINFO_next(bai: *const BIO_ADDRINFO) -> *const BIO_ADDRINFO {
    ffi_entry!(BIO_ADDRINFO_next, {
        Ok(info(bai)?.next.as_deref().map_or(std::ptr::null(), |n| {
            n as *const AddrInfo as *const BIO_ADDRINFO
        }))
    })
}

/// See BIO_ADDRINFO_family(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_ADDRINFO_family(bai: *const BIO_ADDRINFO) -> c_int {
    ffi_entry!(BIO_ADDRINFO_family, { Ok(info(bai)?.family) })
}

/// See BIO_ADDRINFO_socktype(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_ADDRINFO_socktype(bai: *const BIO_ADDRINFO) -> c_int {
    ffi_entry!(BIO_ADDRINFO_socktype, { Ok(info(bai)?.socktype) })
}

/// See BIO_ADDRINFO_protocol(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_ADDRINFO_protocol(bai: *const BIO_ADDRINFO) -> c_int {
    ffi_entry!(BIO_ADDRINFO_protocol, {
        let i = info(bai)?;
        Ok(if i.protocol != 0 {
            i.protocol
        } else {
            match i.socktype {
                libc::SOCK_STREAM if i.family != libc::AF_UNIX => libc::IPPROTO_TCP,
                libc::SOCK_DGRAM if i.family != libc::AF_UNIX => libc::IPPROTO_UDP,
                _ => 0,
            }
        })
    })
}

/// The entry's address (owned by the list). See BIO_ADDRINFO_address(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_ADDRINFO_address(bai: *const BIO_ADDRINFO) -> *const BIO_ADDR {
    ffi_entry!(BIO_ADDRINFO_address, {
        Ok(&info(bai)?.addr as *const BioAddr as *const BIO_ADDR)
    })
}

/// Frees the whole list. NULL is a no-op. See BIO_ADDRINFO_free(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_ADDRINFO_free(bai: *mut BIO_ADDRINFO) {
    if !bai.is_null() {
        // SAFETY: the head came from Box::into_raw in BIO_lookup_ex.
        drop(unsafe { Box::from_raw(bai as *mut AddrInfo) });
    }
}

// ---- socket helpers

fn sys_err(reason: u32, e: std::io::Error) -> Error {
    Error::bio(reason).with(e.to_string())
}

/// Nothing to initialise on POSIX. Returns 1. See BIO_sock_init(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_sock_init() -> c_int {
    1
}

/// Creates a socket (close-on-exec). Returns the fd, or -1 with an error. `options` is
/// unused, as in OpenSSL. See BIO_socket(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_socket(
    domain: c_int,
    socktype: c_int,
    protocol: c_int,
    _options: c_int,
) -> c_int {
    guard_with("BIO_socket", -1, || {
        sys::socket_with(domain, socktype, protocol)
            .map_err(|e| sys_err(BIO_R_UNABLE_TO_CREATE_SOCKET, e))
    })
}

fn apply_options(sock: c_int, options: c_int) -> Result<()> {
    if options & BIO_SOCK_KEEPALIVE != 0 {
        sys::set_keepalive(sock, true).map_err(|e| sys_err(BIO_R_UNABLE_TO_KEEPALIVE, e))?;
    }
    if options & BIO_SOCK_NODELAY != 0 {
        sys::set_nodelay(sock, true).map_err(|e| sys_err(BIO_R_UNABLE_TO_NODELAY, e))?;
    }
    Ok(())
}

/// Connects `sock` to `addr`, applying NONBLOCK/KEEPALIVE/NODELAY options first. Returns 1;
/// 0 with no error when a non-blocking connect is in progress; 0 with an error otherwise.
/// See BIO_connect(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_connect(sock: c_int, addr_: *const BIO_ADDR, options: c_int) -> c_int {
    ffi_entry!(BIO_connect, {
        let a = addr(addr_, "addr")?;
        if options & BIO_SOCK_NONBLOCK != 0 {
            sys::set_nonblocking(sock, true).map_err(|e| sys_err(BIO_R_CONNECT_ERROR, e))?;
        }
        apply_options(sock, options)?;
        if let Err(e) = sys::connect(sock, a) {
            if matches!(
                e.raw_os_error(),
                Some(libc::EINPROGRESS | libc::EALREADY | libc::EINTR | libc::EAGAIN)
            ) {
                return Err(Error::would_block());
            }
            return Err(sys_err(BIO_R_CONNECT_ERROR, e));
        }
        Ok(1)
    })
}

/// Binds `sock` to `addr` (SO_REUSEADDR with BIO_SOCK_REUSEADDR). Returns 1 or 0.
/// See BIO_bind(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_bind(sock: c_int, addr_: *const BIO_ADDR, options: c_int) -> c_int {
    ffi_entry!(BIO_bind, {
        let a = addr(addr_, "addr")?;
        bind(sock, a, options)?;
        Ok(1)
    })
}

fn bind(sock: c_int, a: &BioAddr, options: c_int) -> Result<()> {
    if options & BIO_SOCK_REUSEADDR != 0 {
        sys::set_reuseaddr(sock, true).map_err(|e| sys_err(BIO_R_UNABLE_TO_REUSEADDR, e))?;
    }
    sys::bind(sock, a).map_err(|e| sys_err(BIO_R_UNABLE_TO_BIND_SOCKET, e))
}

/// Prepares a server socket: blocking mode from BIO_SOCK_NONBLOCK, KEEPALIVE, NODELAY,
/// IPV6_V6ONLY per BIO_SOCK_V6_ONLY, REUSEADDR, bind, and listen() unless it is a datagram
/// socket. Returns 1 or 0. See BIO_listen(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_listen(sock: c_int, addr_: *const BIO_ADDR, options: c_int) -> c_int {
    ffi_entry!(BIO_listen, {
        let a = addr(addr_, "addr")?;
        let socktype =
            sys::sock_type(sock).map_err(|e| sys_err(BIO_R_UNABLE_TO_LISTEN_SOCKET, e))?;
        sys::set_nonblocking(sock, options & BIO_SOCK_NONBLOCK != 0)
            .map_err(|e| sys_err(BIO_R_UNABLE_TO_LISTEN_SOCKET, e))?;
        if socktype != libc::SOCK_DGRAM {
            apply_options(sock, options)?;
        }
        if a.family() == libc::AF_INET6 {
            sys::set_v6only(sock, options & BIO_SOCK_V6_ONLY != 0)
                .map_err(|e| sys_err(BIO_R_LISTEN_V6_ONLY, e))?;
        }
        bind(sock, a, options)?;
        if socktype != libc::SOCK_DGRAM {
            sys::listen(sock).map_err(|e| sys_err(BIO_R_UNABLE_TO_LISTEN_SOCKET, e))?;
        }
        Ok(1)
    })
}

/// Accepts a connection; the peer goes into `addr` if non-NULL. Returns the fd, or -1 (no
/// error queued when it would block). See BIO_accept_ex(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_accept_ex(accept_sock: c_int, addr_: *mut BIO_ADDR, options: c_int) -> c_int {
    guard_with("BIO_accept_ex", -1, || {
        let (fd, a) = match sys::accept_peer(accept_sock, options & BIO_SOCK_NONBLOCK != 0) {
            Ok(Some(x)) => x,
            Ok(None) => return Err(Error::would_block()),
            Err(e) => return Err(sys_err(BIO_R_ACCEPT_ERROR, e)),
        };
        if let Err(e) = apply_options(fd, options) {
            let _ = sys::close(fd);
            return Err(e);
        }
        if let Ok(out) = addr_mut(addr_, "addr") {
            *out = a;
        }
        Ok(fd)
    })
}

/// Closes a socket. Returns 1, or 0 with an error. See BIO_closesocket(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_closesocket(sock: c_int) -> c_int {
    ffi_entry!(BIO_closesocket, {
        if sock < 0 {
            return Err(Error::invalid(format!("bad socket {sock}")));
        }
        sys::close(sock).map_err(|e| Error::sys(e.raw_os_error().unwrap_or(libc::EIO)))?;
        Ok(1)
    })
}

/// Sets (mode != 0) or clears non-blocking mode. Returns 1 or 0. See BIO_socket_nbio(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_socket_nbio(fd: c_int, mode: c_int) -> c_int {
    ffi_entry!(BIO_socket_nbio, {
        sys::set_nonblocking(fd, mode != 0)
            .map_err(|e| Error::sys(e.raw_os_error().unwrap_or(libc::EIO)))?;
        Ok(1)
    })
}

/// The pending socket error (SO_ERROR), or the getsockopt errno. See BIO_sock_error(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_sock_error(sock: c_int) -> c_int {
    match sys::take_error(sock) {
        Ok(v) => v,
        Err(e) => e.raw_os_error().unwrap_or(libc::EIO),
    }
}

/// Turns TCP_NODELAY on or off. Returns 1 or 0. See BIO_set_tcp_ndelay(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_set_tcp_ndelay(sock: c_int, turn_on: c_int) -> c_int {
    ffi_entry!(BIO_set_tcp_ndelay, {
        sys::set_nodelay(sock, turn_on != 0).map_err(|e| sys_err(BIO_R_UNABLE_TO_NODELAY, e))?;
        Ok(1)
    })
}

/// The argument of BIO_sock_info: with BIO_SOCK_INFO_ADDRESS, where the address goes.
#[repr(C)]
pub union BIO_sock_info_u {
    pub addr: *mut BIO_ADDR,
}

/// With BIO_SOCK_INFO_ADDRESS, the socket's local address into `info->addr`. Returns 1 or 0.
/// See BIO_sock_info(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_sock_info(sock: c_int, r#type: c_int, info: *mut BIO_sock_info_u) -> c_int {
    ffi_entry!(BIO_sock_info, {
        let i = mut_arg(info, "info")?;
        if r#type != BIO_SOCK_INFO_ADDRESS {
            return Err(Error::unsupported(
                format!("BIO_sock_info type {type}", type = r#type),
            ));
        }
        // SAFETY: the only union member.
        let out = addr_mut(unsafe { i.addr }, "info->addr")?;
        *out =
            sys::local_addr(sock).map_err(|e| Error::sys(e.raw_os_error().unwrap_or(libc::EIO)))?;
        Ok(1)
    })
}
