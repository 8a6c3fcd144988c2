//! Events and polling: SSL_handle_events, timeouts, poll descriptors, what the network
//! wants, blocking mode, SSL_poll.

use std::ffi::c_int;
use std::sync::Arc;
use std::time::Duration;

use crate::bio::msg::BIO_POLL_DESCRIPTOR;
use crate::error::*;
use crate::ffi::{SSL, ffi_entry, guard_with, mut_arg, put, ssl_arg};
use crate::ssl::poll::*;
use crate::ssl::*;

/// Processes network input, timers and output for the object's whole domain. NULL is
/// accepted (returns 1), as OpenSSL's. See SSL_handle_events(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_handle_events(ssl: *mut SSL) -> c_int {
    if ssl.is_null() {
        return 1;
    }
    ffi_entry!(SSL_handle_events, {
        ssl_arg(ssl)?.handle_events();
        Ok(1)
    })
}

/// When SSL_handle_events must next be called: `*is_infinite` = 1 when no timer is armed,
/// else `*tv` = time left ({0,0} = now). NULL `s` gives infinite. See SSL_get_event_timeout(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get_event_timeout(
    ssl: *mut SSL,
    tv: *mut libc::timeval,
    is_infinite: *mut c_int,
) -> c_int {
    ffi_entry!(SSL_get_event_timeout, {
        let out = mut_arg(tv, "tv")?;
        let d = if ssl.is_null() {
            None
        } else {
            ssl_arg(ssl)?.event_timeout()
        };
        put(is_infinite, d.is_none() as c_int);
        let d = d.unwrap_or(Duration::ZERO);
        *out = libc::timeval {
            tv_sec: d.as_secs() as libc::time_t,
            tv_usec: d.subsec_micros() as libc::suseconds_t,
        };
        Ok(1)
    })
}

/// The read BIO's poll descriptor. See SSL_get_rpoll_descriptor(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get_rpoll_descriptor(ssl: *mut SSL, desc: *mut BIO_POLL_DESCRIPTOR) -> c_int {
    ffi_entry!(SSL_get_rpoll_descriptor, {
        let b = ssl_arg(ssl)?
            .rbio()
            .ok_or_else(|| Error::ssl(SSL_R_BIO_NOT_SET))?;
        *mut_arg(desc, "desc")? = b.rpoll()?;
        Ok(1)
    })
}

/// The write BIO's poll descriptor. See SSL_get_wpoll_descriptor(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get_wpoll_descriptor(ssl: *mut SSL, desc: *mut BIO_POLL_DESCRIPTOR) -> c_int {
    ffi_entry!(SSL_get_wpoll_descriptor, {
        let b = ssl_arg(ssl)?
            .wbio()
            .ok_or_else(|| Error::ssl(SSL_R_BIO_NOT_SET))?;
        *mut_arg(desc, "desc")? = b.wpoll()?;
        Ok(1)
    })
}

/// 1: a QUIC object always wants to hear from the network. NULL gives 0.
/// See SSL_net_read_desired(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_net_read_desired(ssl: *mut SSL) -> c_int {
    if ssl.is_null() {
        return 0;
    }
    ffi_entry!(SSL_net_read_desired, {
        ssl_arg(ssl)?;
        Ok(1)
    })
}

/// 1 while output waits for the network to accept it (poll the write descriptor, then call
/// SSL_handle_events). NULL gives 0. See SSL_net_write_desired(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_net_write_desired(ssl: *mut SSL) -> c_int {
    if ssl.is_null() {
        return 0;
    }
    ffi_entry!(SSL_net_write_desired, {
        Ok(ssl_arg(ssl)?.net_write_desired() as c_int)
    })
}

/// Blocking (1) or non-blocking (0) calls on this object; objects made from it inherit the
/// mode. Blocking needs network BIOs with poll descriptors (a UDP socket, a pollable
/// datagram pair): otherwise 0 and an error. See SSL_set_blocking_mode(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_set_blocking_mode(ssl: *mut SSL, blocking: c_int) -> c_int {
    ffi_entry!(SSL_set_blocking_mode, {
        ssl_arg(ssl)?.set_blocking(blocking != 0)?;
        Ok(1)
    })
}

/// 1 when calls on this object block (asked for, and possible with its BIOs), 0 when not,
/// -1 on a NULL argument. See SSL_get_blocking_mode(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get_blocking_mode(ssl: *mut SSL) -> c_int {
    guard_with("SSL_get_blocking_mode", -1, || {
        Ok(ssl_arg(ssl)?.is_blocking() as c_int)
    })
}

pub const SSL_POLL_EVENT_I: u64 = SSL_POLL_EVENT_IC | SSL_POLL_EVENT_ISB | SSL_POLL_EVENT_ISU;

pub const SSL_POLL_EVENT_OS: u64 = SSL_POLL_EVENT_OSB | SSL_POLL_EVENT_OSU;

pub const SSL_POLL_EVENT_RE: u64 = SSL_POLL_EVENT_R | SSL_POLL_EVENT_ER;

pub const SSL_POLL_EVENT_WE: u64 = SSL_POLL_EVENT_W | SSL_POLL_EVENT_EW;

pub const SSL_POLL_EVENT_RW: u64 = SSL_POLL_EVENT_R | SSL_POLL_EVENT_W;

pub const SSL_POLL_EVENT_RWE: u64 = SSL_POLL_EVENT_RE | SSL_POLL_EVENT_WE;

/// One object to poll and the events wanted / seen (OpenSSL's layout, 32 bytes).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SSL_POLL_ITEM {
    pub desc: BIO_POLL_DESCRIPTOR,
    pub events: u64,
    pub revents: u64,
}

/// A poll descriptor naming an SSL object, for SSL_POLL_ITEM. See SSL_as_poll_descriptor(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_as_poll_descriptor(ssl: *mut SSL) -> BIO_POLL_DESCRIPTOR {
    let mut d = BIO_POLL_DESCRIPTOR::none();
    d.r#type = crate::bio::msg::BIO_POLL_DESCRIPTOR_TYPE_SSL;
    d.value.ssl = ssl.cast();
    d
}

thread_local! {
    /// This thread's last SSL_poll answer, given again while it holds (`ssl::poll::unchanged`).
    static LAST_POLL: std::cell::RefCell<Option<crate::ssl::poll::Snapshot<std::sync::Weak<Ssl>>>> =
        const { std::cell::RefCell::new(None) };
}

/// Reports which of the requested events each item's QUIC listener, connection or stream
/// has, waiting up to `timeout` ({0,0}: not at all; NULL: until something happens) for at
/// least one. Items lie `stride` bytes apart. Returns 1 on success (`*result_count` items
/// have events); 0 when an item cannot be polled (its revents is SSL_POLL_EVENT_F, later
/// items are zeroed, an error is queued) or an argument is bad. See SSL_poll(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_poll(
    items: *mut SSL_POLL_ITEM,
    num_items: usize,
    stride: usize,
    timeout: *const libc::timeval,
    flags: u64,
    result_count: *mut usize,
) -> c_int {
    put(result_count, 0);
    ffi_entry!(SSL_poll, {
        if num_items > 0 && items.is_null() {
            return Err(Error::ssl(ERR_R_PASSED_NULL_PARAMETER).with("argument `items` is NULL"));
        }
        if num_items > 0 && stride < size_of::<SSL_POLL_ITEM>() {
            return Err(Error::invalid("stride is smaller than SSL_POLL_ITEM"));
        }
        // SAFETY: the caller passes NULL or a valid timeval.
        let deadline = match unsafe { timeout.as_ref() } {
            None => None,
            Some(t) if t.tv_sec < 0 || t.tv_usec < 0 => {
                return Err(Error::invalid("negative timeout"));
            }
            Some(t) => Some(
                std::time::Instant::now()
                    + Duration::new(t.tv_sec as u64, 0)
                    + Duration::from_micros(t.tv_usec as u64),
            ),
        };
        let base = items.cast::<u8>();
        let item = |i: usize| base.wrapping_add(i * stride).cast::<SSL_POLL_ITEM>();
        let zero_timeout = deadline.is_some_and(|d| d <= std::time::Instant::now());
        // The same array as this thread's last call, nothing changed in its domains: the
        // same answer, without touching the objects. The array is compared first (a busy
        // loop whose array changes pays no second event handling), the answer written as
        // it goes (the slow path writes every item again if it does not hold). Taken out
        // while events are handled (callbacks run then), put back if it still holds.
        let mut last = if num_items > 0 {
            LAST_POLL.with(|l| l.borrow_mut().take())
        } else {
            None
        };
        if let Some(s) =
            last.take_if(|s| {
                s.keys.len() == num_items
                    && s.keys.iter().zip(&s.revents).enumerate().all(
                        |(i, (&(ssl, events), &rev))| {
                            // SAFETY: item i lies within the caller's array of num_items items,
                            // stride apart; an SSL descriptor's union member is `ssl`; only the
                            // revents field is written.
                            unsafe {
                                let it = item(i).read_unaligned();
                                let same = it.desc.r#type
                                    == crate::bio::msg::BIO_POLL_DESCRIPTOR_TYPE_SSL
                                    && it.desc.value.ssl as usize == ssl
                                    && it.events == events;
                                if same {
                                    std::ptr::addr_of_mut!((*item(i)).revents).write_unaligned(rev);
                                }
                                same
                            }
                        },
                    )
                    && crate::ssl::poll::unchanged(s, flags, zero_timeout)
            })
        {
            put(result_count, s.count);
            LAST_POLL.with(|l| *l.borrow_mut() = Some(s));
            return Ok(1);
        }
        let mut keys = Vec::with_capacity(num_items);
        for i in 0..num_items {
            // SAFETY: item i lies within the caller's array of num_items items, stride apart.
            let it = unsafe { item(i).read_unaligned() };
            if it.desc.r#type != crate::bio::msg::BIO_POLL_DESCRIPTOR_TYPE_SSL {
                keys.clear();
                break;
            }
            // SAFETY: an SSL descriptor's union member is `ssl`.
            keys.push((unsafe { it.desc.value.ssl } as usize, it.events));
        }
        let fast = keys.len() == num_items && num_items > 0;
        // The caller keeps its objects alive for the call, as with any SSL function.
        let mut reqs: Vec<crate::ssl::poll::Item<'_>> = Vec::with_capacity(num_items);
        for i in 0..num_items {
            // SAFETY: item i lies within the caller's array of num_items items, stride apart.
            let it = unsafe { item(i).read_unaligned() };
            let target = if it.desc.r#type == crate::bio::msg::BIO_POLL_DESCRIPTOR_TYPE_SSL {
                // SAFETY: an SSL descriptor's union member is `ssl`.
                let p = unsafe { it.desc.value.ssl }.cast::<SSL>();
                if p.is_null() {
                    crate::ssl::poll::Target::Skip
                } else {
                    match ssl_arg(p)? {
                        s if matches!(s.kind, Kind::Tls(_) | Kind::TlsListener(_)) => {
                            crate::ssl::poll::Target::Tls(s)
                        }
                        s => crate::ssl::poll::Target::Obj(s),
                    }
                }
            } else {
                crate::ssl::poll::Target::Unsupported
            };
            reqs.push(crate::ssl::poll::Item {
                target,
                events: it.events,
                revents: 0,
            });
        }
        let mut seen = Vec::new();
        let r = crate::ssl::poll::poll(&mut reqs, deadline, flags, &mut seen);
        for (i, rq) in reqs.iter().enumerate() {
            // SAFETY: as above; only the revents field is written.
            unsafe { std::ptr::addr_of_mut!((*item(i)).revents).write_unaligned(rq.revents) };
        }
        let snap = r.as_ref().ok().copied().filter(|_| fast).and_then(|n| {
            // The same array as last time: its pins hold already (an atomic operation per
            // item saved on every call of a busy poll loop).
            let pins = match last.take() {
                Some(prev) if prev.keys == keys => prev.pins,
                _ => keys
                    .iter()
                    .filter(|k| k.0 != 0)
                    .map(|k| {
                        let p = k.0 as *const Ssl;
                        // SAFETY: a live SSL* from the caller (it came from Arc::into_raw); one
                        // more strong count for the moment the weak one is made.
                        unsafe {
                            Arc::increment_strong_count(p);
                            let a = Arc::from_raw(p);
                            Arc::downgrade(&a)
                        }
                    })
                    .collect(),
            };
            crate::ssl::poll::snapshot(&reqs, std::mem::take(&mut keys), pins, seen, n)
        });
        LAST_POLL.with(|l| *l.borrow_mut() = snap);
        match r {
            Ok(n) => {
                put(result_count, n);
                Ok(1)
            }
            Err((n, e)) => {
                put(result_count, n);
                Err(e)
            }
        }
    })
}
