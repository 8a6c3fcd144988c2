//! Names: getaddrinfo(3).

use std::io;
use std::ptr;

use super::BioAddr;

/// getaddrinfo(3) for the connect and accept BIOs: the addresses of `host`/`service` (either
/// may be None) for `family` (AF_UNSPEC, AF_INET, AF_INET6) and `socktype`, passive (for
/// bind) when `server`. Err carries getaddrinfo's message (gai_strerror, or the errno's
/// text for EAI_SYSTEM). An empty Ok list cannot happen: getaddrinfo fails instead.
pub fn resolve(
    host: Option<&std::ffi::CStr>,
    service: Option<&std::ffi::CStr>,
    server: bool,
    family: i32,
    socktype: i32,
) -> Result<Vec<BioAddr>, String> {
    // SAFETY: a zeroed addrinfo is a valid "no hints" value; the fields are set below.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_family = family;
    hints.ai_socktype = socktype;
    hints.ai_flags = if server { libc::AI_PASSIVE } else { 0 };
    let mut list: *mut libc::addrinfo = ptr::null_mut();
    // SAFETY: host/service are NUL-terminated or NULL; hints and list are live locals.
    let r = unsafe {
        libc::getaddrinfo(
            host.map_or(ptr::null(), |c| c.as_ptr()),
            service.map_or(ptr::null(), |c| c.as_ptr()),
            &hints,
            &mut list,
        )
    };
    if r != 0 {
        if r == libc::EAI_SYSTEM {
            return Err(io::Error::last_os_error().to_string());
        }
        // SAFETY: gai_strerror returns a pointer to a static NUL-terminated string.
        let msg = unsafe { std::ffi::CStr::from_ptr(libc::gai_strerror(r)) };
        return Err(msg.to_string_lossy().into_owned());
    }
    let mut out = Vec::new();
    let mut p = list;
    while !p.is_null() {
        // SAFETY: p walks the list getaddrinfo returned, which is live until freeaddrinfo.
        let ai = unsafe { &*p };
        // SAFETY: ai_addr/ai_addrlen describe a sockaddr getaddrinfo filled in.
        out.push(unsafe { BioAddr::from_raw(ai.ai_addr, ai.ai_addrlen) });
        p = ai.ai_next;
    }
    // SAFETY: frees the list getaddrinfo allocated, once; nothing points into it any more.
    unsafe { libc::freeaddrinfo(list) };
    Ok(out)
}
