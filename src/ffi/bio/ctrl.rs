//! BIO_ctrl and the calls made of it (BIO_int_ctrl, BIO_ptr_ctrl, BIO_ctrl_pending, ...),
//! BIO_callback_ctrl, the poll descriptors.

use std::ffi::{c_char, c_int, c_long, c_void};

use super::*;
use crate::bio::Bio;
use crate::bio::acpt::Name;
use crate::bio::addr::BioAddr;
use crate::bio::bpair::BytePair;
use crate::bio::consts::*;
use crate::bio::msg::{BIO_ADDR, BIO_POLL_DESCRIPTOR};
use crate::bio::pair::PairEnd;
use crate::error::*;
use crate::ffi::{BIO, bio_arg, ffi_entry, guard_with, mut_arg, put, ref_arg};

/// BIO_ctrl with a `char **` out-argument: the pointer it stored, or NULL when the ctrl
/// returned <= 0 (BIO_get_conn_hostname, BIO_get_accept_port, ...). See BIO_ctrl(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_ptr_ctrl(bp: *mut BIO, cmd: c_int, larg: c_long) -> *mut c_void {
    let mut p: *mut c_char = std::ptr::null_mut();
    if BIO_ctrl(bp, cmd, larg, (&mut p as *mut *mut c_char).cast()) <= 0 {
        return std::ptr::null_mut();
    }
    p.cast()
}

/// How many bytes the other half of a BIO pair last failed to read (capped at the buffer
/// size), 0 once anything was written or read since. See BIO_ctrl_get_read_request(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_ctrl_get_read_request(b: *mut BIO) -> usize {
    ffi_entry!(BIO_ctrl_get_read_request, {
        Ok(BIO_ctrl(b, BIO_C_GET_READ_REQUEST, 0, std::ptr::null_mut()).max(0) as usize)
    })
}

/// Clears the read request BIO_ctrl_get_read_request reports. Returns 1, or 0 on a BIO that
/// is not a BIO pair half. See BIO_ctrl_reset_read_request(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_ctrl_reset_read_request(b: *mut BIO) -> c_int {
    ffi_entry!(BIO_ctrl_reset_read_request, {
        Ok((BIO_ctrl(b, BIO_C_RESET_READ_REQUEST, 0, std::ptr::null_mut()) != 0) as c_int)
    })
}

/// Bytes of the next datagram waiting to be read (0 if none). See BIO_ctrl_pending(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_ctrl_pending(b: *mut BIO) -> usize {
    ffi_entry!(BIO_ctrl_pending, {
        Ok(BIO_ctrl(b, BIO_CTRL_PENDING, 0, std::ptr::null_mut()).max(0) as usize)
    })
}

/// Bytes written but not yet sent (always 0 here: writes leave at once). See BIO_ctrl_wpending(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_ctrl_wpending(b: *mut BIO) -> usize {
    ffi_entry!(BIO_ctrl_wpending, {
        Ok(BIO_ctrl(b, BIO_CTRL_WPENDING, 0, std::ptr::null_mut()).max(0) as usize)
    })
}

/// Largest datagram a pair half can accept now (0 if under the MTU). See
/// BIO_ctrl_get_write_guarantee(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_ctrl_get_write_guarantee(b: *mut BIO) -> usize {
    ffi_entry!(BIO_ctrl_get_write_guarantee, {
        Ok(BIO_ctrl(b, BIO_C_GET_WRITE_GUARANTEE, 0, std::ptr::null_mut()).max(0) as usize)
    })
}

/// BIO_ctrl with an int argument passed by address. See BIO_int_ctrl(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_int_ctrl(b: *mut BIO, cmd: c_int, larg: c_long, iarg: c_int) -> c_long {
    let mut i = iarg;
    BIO_ctrl(b, cmd, larg, (&mut i as *mut c_int).cast())
}

/// The control call behind most BIO macros. Unknown or unsupported commands return 0 with an
/// error queued. On a custom BIO every command goes to the method's ctrl and its result is
/// returned as is (-2 and an error if it has none). See BIO_ctrl(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_ctrl(b: *mut BIO, cmd: c_int, larg: c_long, parg: *mut c_void) -> c_long {
    // OpenSSL returns -1 for a NULL BIO, and for BIO_get_fd without a descriptor.
    let fail = if cmd == BIO_C_GET_FD || b.is_null() {
        -1
    } else {
        0
    };
    guard_with("BIO_ctrl", fail, || {
        let bio = bio_arg(b)?;
        if let Some(c) = bio.custom() {
            // SAFETY: b is this BIO's handle; cmd, larg and parg are the caller's, for the
            // method's ctrl to interpret (BIO_ctrl(3)).
            return Ok(custom_ret(
                unsafe { c.ctrl(b, cmd, larg, parg) },
                "BIO_ctrl",
            ));
        }
        builtin_ctrl(bio, cmd, larg, parg)
    })
}

pub(super) fn builtin_ctrl(
    bio: &Bio,
    cmd: c_int,
    larg: c_long,
    parg: *mut c_void,
) -> Result<c_long> {
    let unsupported = || {
        Err(Error::unsupported(format!(
            "BIO_ctrl {cmd} is not supported on a {} BIO",
            bio.name()
        )))
    };
    if bio.filter().is_some() {
        return crate::ffi::sslbio::filter_ctrl(bio, cmd, larg, parg);
    }
    if bio.conn().is_some() {
        // Stream or datagram mode: the connect BIO's own commands first.
        return conn_ctrl(bio, cmd, larg, parg);
    }
    if bio.is_stream() {
        return stream_ctrl(bio, cmd, larg, parg);
    }
    match cmd {
        BIO_CTRL_FLUSH => return Ok(bio.flush()? as c_long),
        BIO_CTRL_GET_RPOLL_DESCRIPTOR | BIO_CTRL_GET_WPOLL_DESCRIPTOR => {
            let out = mut_arg(parg as *mut BIO_POLL_DESCRIPTOR, "desc")?;
            *out = if cmd == BIO_CTRL_GET_RPOLL_DESCRIPTOR {
                bio.rpoll()?
            } else {
                bio.wpoll()?
            };
            return Ok(1);
        }
        BIO_CTRL_WPENDING => return Ok(bio.queued_writes() as c_long),
        _ => {}
    }
    if let Ok(d) = bio.dgram() {
        return dgram_ctrl(bio, d, cmd, larg, parg);
    }
    let p = bio.pair()?;
    Ok(match cmd {
        BIO_CTRL_PENDING => p.pending() as c_long,
        BIO_CTRL_EOF => p.eof() as c_long,
        BIO_CTRL_RESET => {
            p.reset();
            1
        }
        BIO_CTRL_GET_CLOSE | BIO_CTRL_SET_CLOSE => 1,
        BIO_C_SET_WRITE_BUF_SIZE => {
            if larg < 0 {
                return Err(Error::invalid("negative buffer size"));
            }
            p.set_write_buf_size(larg as usize)?;
            1
        }
        BIO_C_GET_WRITE_BUF_SIZE => p.write_buf_size() as c_long,
        BIO_C_GET_WRITE_GUARANTEE => p.write_guarantee() as c_long,
        BIO_C_MAKE_BIO_PAIR => {
            let other = bio_arg(parg as *mut BIO)?;
            PairEnd::make_pair(p, other.pair()?)?;
            1
        }
        BIO_C_DESTROY_BIO_PAIR => {
            p.destroy_pair();
            1
        }
        BIO_CTRL_DGRAM_GET_MTU => p.mtu() as c_long,
        BIO_CTRL_DGRAM_SET_MTU => {
            if larg <= 0 {
                return Err(Error::invalid("MTU must be positive"));
            }
            p.set_mtu(larg as usize)?;
            1
        }
        BIO_CTRL_DGRAM_GET_CAPS => p.caps() as c_long,
        BIO_CTRL_DGRAM_SET_CAPS => {
            p.set_caps(larg as u32);
            1
        }
        BIO_CTRL_DGRAM_GET_EFFECTIVE_CAPS => p.effective_caps() as c_long,
        BIO_CTRL_DGRAM_GET_NO_TRUNC => p.no_trunc() as c_long,
        BIO_CTRL_DGRAM_SET_NO_TRUNC => {
            p.set_no_trunc(larg != 0);
            1
        }
        BIO_CTRL_DGRAM_GET_LOCAL_ADDR_CAP => p.local_addr_cap() as c_long,
        BIO_CTRL_DGRAM_GET_LOCAL_ADDR_ENABLE => {
            *mut_arg(parg as *mut c_int, "parg")? = p.local_enabled() as c_int;
            1
        }
        BIO_CTRL_DGRAM_SET_LOCAL_ADDR_ENABLE => {
            p.set_local_addr_enable(larg != 0)?;
            1
        }
        BIO_CTRL_DGRAM_SET0_LOCAL_ADDR => {
            let a = parg as *mut BIO_ADDR;
            p.set_default_src(opt_addr(a));
            // Ownership passes to us (BIO_dgram_set0_local_addr): the copy is kept, free it.
            crate::ffi::addr::BIO_ADDR_free(a);
            1
        }
        BIO_CTRL_DGRAM_DETECT_PEER_ADDR | BIO_CTRL_DGRAM_GET_PEER => 0,
        _ => return unsupported(),
    })
}

/// BIO_ctrl on the byte-stream kinds, with OpenSSL's results (bss_sock.c, bss_mem.c,
/// bss_bio.c): commands a kind does not know return 0 with nothing queued, as there.
fn stream_ctrl(bio: &Bio, cmd: c_int, larg: c_long, parg: *mut c_void) -> Result<c_long> {
    let poll_out = |d: Result<BIO_POLL_DESCRIPTOR>| -> Result<c_long> {
        let out = mut_arg(parg as *mut BIO_POLL_DESCRIPTOR, "desc")?;
        *out = d?;
        Ok(1)
    };
    if bio.file().is_some() {
        return super::file::file_ctrl(bio, cmd, larg, parg);
    }
    if bio.conn().is_some() {
        return conn_ctrl(bio, cmd, larg, parg);
    }
    if bio.acceptor().is_some() {
        return acpt_ctrl(bio, cmd, larg, parg);
    }
    if let Some(s) = bio.sock() {
        return Ok(match cmd {
            BIO_C_SET_FD => {
                let fd = *ref_arg(parg as *const c_int, "fd")?;
                s.set_fd(fd, larg != 0)?;
                bio.clear_flags(!0);
                1
            }
            BIO_C_GET_FD => {
                let fd = s.fd();
                if fd >= 0 {
                    put(parg as *mut c_int, fd);
                }
                fd as c_long
            }
            BIO_CTRL_GET_CLOSE => s.get_close() as c_long,
            BIO_CTRL_SET_CLOSE => {
                s.set_close(larg != 0);
                1
            }
            BIO_CTRL_DUP | BIO_CTRL_FLUSH => 1,
            BIO_CTRL_EOF => (bio.flags() & BIO_FLAGS_IN_EOF != 0) as c_long,
            BIO_CTRL_GET_RPOLL_DESCRIPTOR | BIO_CTRL_GET_WPOLL_DESCRIPTOR => {
                return poll_out(bio.rpoll());
            }
            // OpenSSL's socket BIO has no BIO_C_SET_NBIO: BIO_set_nbio returns 0 and leaves
            // the fd as it is (use BIO_socket_nbio on the fd).
            _ => 0,
        });
    }
    if let Some(m) = bio.mem() {
        return Ok(match cmd {
            BIO_CTRL_RESET => {
                m.reset();
                1
            }
            BIO_CTRL_EOF => (m.pending() == 0) as c_long,
            BIO_C_SET_BUF_MEM_EOF_RETURN => {
                m.set_eof_return(larg as c_int);
                1
            }
            BIO_CTRL_INFO => {
                let (p, n) = m.data();
                put(parg as *mut *const u8, p);
                n as c_long
            }
            BIO_CTRL_GET_CLOSE => m.get_close() as c_long,
            BIO_CTRL_SET_CLOSE => {
                m.set_close(larg != 0);
                1
            }
            BIO_CTRL_PENDING => m.pending() as c_long,
            BIO_CTRL_WPENDING => 0,
            BIO_CTRL_DUP | BIO_CTRL_FLUSH => 1,
            _ => 0,
        });
    }
    if let Some(p) = bio.byte_pair() {
        return Ok(match cmd {
            BIO_C_SET_WRITE_BUF_SIZE => {
                if larg < 0 {
                    return Err(Error::invalid("negative buffer size"));
                }
                p.set_write_buf_size(larg as usize)?;
                1
            }
            BIO_C_GET_WRITE_BUF_SIZE => p.write_buf_size() as c_long,
            BIO_C_MAKE_BIO_PAIR => {
                let other = bio_arg(parg as *mut BIO)?;
                let o = other.byte_pair().ok_or_else(|| {
                    Error::invalid(format!(
                        "cannot pair a BIO pair half with a {} BIO",
                        other.name()
                    ))
                })?;
                BytePair::make_pair(p, o)?;
                1
            }
            BIO_C_DESTROY_BIO_PAIR => {
                p.destroy();
                1
            }
            BIO_C_GET_WRITE_GUARANTEE => p.write_guarantee() as c_long,
            BIO_C_GET_READ_REQUEST => p.read_request() as c_long,
            BIO_C_RESET_READ_REQUEST => {
                p.reset_read_request();
                1
            }
            BIO_C_SHUTDOWN_WR => {
                p.shutdown_wr();
                1
            }
            // bss_bio.c clears this half's buffer and returns 0.
            BIO_CTRL_RESET => {
                p.reset();
                0
            }
            BIO_CTRL_GET_CLOSE | BIO_CTRL_SET_CLOSE => 1,
            BIO_CTRL_PENDING => p.pending() as c_long,
            BIO_CTRL_WPENDING => p.wpending() as c_long,
            BIO_CTRL_FLUSH => 1,
            BIO_CTRL_EOF => p.eof() as c_long,
            _ => 0,
        });
    }
    // BIO_f_buffer: nothing is buffered here, so its own sizes are accepted and ignored;
    // everything else is the next BIO's answer (0 without one).
    match cmd {
        BIO_C_SET_BUFF_SIZE | BIO_CTRL_PUSH | BIO_CTRL_POP => return Ok(1),
        BIO_C_GET_BUFF_NUM_LINES => return Ok(0),
        _ => {}
    }
    match bio.next_bio() {
        Some(n) => {
            let r = BIO_ctrl(n.handle(), cmd, larg, parg);
            bio.clear_retry();
            bio.set_flags(n.flags() & (BIO_FLAGS_RWS | BIO_FLAGS_SHOULD_RETRY));
            Ok(r)
        }
        None => Ok(0),
    }
}

/// A state machine's outcome as BIO_do_connect/BIO_do_accept return it: the failure's value
/// (0 or -1, as OpenSSL's step) with the error queued.
fn step_result(r: std::result::Result<i32, (i32, Error)>) -> c_long {
    match r {
        Ok(v) => v as c_long,
        Err((v, e)) => {
            e.queue("BIO_do_handshake");
            v as c_long
        }
    }
}

/// A C string argument of a BIO_C_SET_CONNECT/BIO_C_SET_ACCEPT ctrl.
fn ctrl_str<'a>(parg: *mut c_void) -> Result<&'a str> {
    crate::ffi::cstr_arg(parg as *const c_char, "parg")
}

/// BIO_ctrl on a connect BIO, following bss_conn.c `conn_ctrl` (unknown commands: 0).
fn conn_ctrl(bio: &Bio, cmd: c_int, larg: c_long, parg: *mut c_void) -> Result<c_long> {
    let c = bio.conn().expect("connect kind");
    Ok(match cmd {
        BIO_CTRL_RESET => {
            c.reset(bio);
            0
        }
        BIO_C_DO_STATE_MACHINE => step_result(c.state(bio)),
        // bss_conn.c answers only with a non-NULL out-pointer (so BIO_get_conn_ip_family
        // and BIO_get_conn_mode, which pass NULL, return 0 there).
        BIO_C_GET_CONNECT if parg.is_null() => 0,
        BIO_C_GET_CONNECT => match larg {
            0..=2 => {
                let p = match larg {
                    0 => c.hostname_ptr(),
                    1 => c.port_ptr(),
                    _ => c.address_ptr().cast(),
                };
                put(parg as *mut *const c_char, p);
                1
            }
            3 => c.family() as c_long,
            4 => c.mode() as c_long,
            _ => 0,
        },
        BIO_C_SET_CONNECT if parg.is_null() => 1,
        BIO_C_SET_CONNECT => match larg {
            0 => {
                c.set_hostname(ctrl_str(parg)?)?;
                1
            }
            1 => {
                c.set_port(ctrl_str(parg)?)?;
                1
            }
            2 => {
                c.set_address(ref_arg(parg as *const BioAddr, "addr")?)?;
                1
            }
            3 => {
                c.set_family(*ref_arg(parg as *const c_int, "family")?);
                1
            }
            _ => 0,
        },
        BIO_C_SET_SOCK_TYPE => {
            c.set_sock_type(larg as c_int)?;
            1
        }
        BIO_C_GET_SOCK_TYPE => c.sock_type() as c_long,
        BIO_C_GET_DGRAM_BIO => {
            return Err(Error::unsupported(
                "BIO_get0_dgram_bio: a datagram connect BIO here is itself the datagram BIO",
            ));
        }
        BIO_C_SET_NBIO => {
            c.set_nbio(larg != 0);
            1
        }
        BIO_C_SET_CONNECT_MODE => {
            c.set_mode(larg as c_int);
            1
        }
        BIO_C_GET_FD => {
            if !c.init() {
                return Ok(-1);
            }
            put(parg as *mut c_int, c.fd());
            c.fd() as c_long
        }
        BIO_CTRL_GET_CLOSE => c.io().get_close() as c_long,
        BIO_CTRL_SET_CLOSE => {
            c.io().set_close(larg != 0);
            1
        }
        BIO_CTRL_PENDING | BIO_CTRL_WPENDING => 0,
        BIO_CTRL_FLUSH | BIO_CTRL_DUP => 1,
        BIO_CTRL_EOF => (bio.flags() & BIO_FLAGS_IN_EOF != 0) as c_long,
        BIO_CTRL_GET_RPOLL_DESCRIPTOR | BIO_CTRL_GET_WPOLL_DESCRIPTOR => {
            let out = mut_arg(parg as *mut BIO_POLL_DESCRIPTOR, "desc")?;
            match bio.rpoll() {
                Ok(d) => {
                    *out = d;
                    1
                }
                Err(_) => 0,
            }
        }
        // Datagram mode, connected: the datagram socket's commands (peer, MTU, caps...).
        _ => match c.dgram_if_connected() {
            Some(d) => return dgram_ctrl(bio, d, cmd, larg, parg),
            None => 0,
        },
    })
}

/// BIO_ctrl on a datagram socket: a `BIO_s_datagram`, or a connect BIO in datagram mode once
/// connected.
fn dgram_ctrl(
    bio: &Bio,
    d: &crate::bio::dgram::DgramSock,
    cmd: c_int,
    larg: c_long,
    parg: *mut c_void,
) -> Result<c_long> {
    let unsupported = || {
        Err(Error::unsupported(format!(
            "BIO_ctrl {cmd} is not supported on a {} BIO",
            bio.name()
        )))
    };
    let out_addr = |a: Option<BioAddr>| -> Result<c_long> {
        let out = mut_arg(parg as *mut BioAddr, "parg")?;
        match a {
            Some(a) => {
                *out = a;
                Ok(a.sockaddr_len().max(1) as c_long)
            }
            None => Ok(0),
        }
    };
    let int_out = |v: c_int| {
        put(parg as *mut c_int, v);
    };
    Ok(match cmd {
        BIO_C_SET_FD => {
            let fd = *ref_arg(parg as *const c_int, "fd")?;
            d.set_fd(fd, larg != 0)?;
            1
        }
        BIO_C_GET_FD => {
            let fd = d.fd();
            int_out(fd);
            fd as c_long
        }
        BIO_CTRL_GET_CLOSE => d.get_close() as c_long,
        BIO_CTRL_SET_CLOSE => {
            d.set_close(larg != 0);
            1
        }
        BIO_C_SET_NBIO => {
            d.set_nbio(larg != 0)?;
            1
        }
        BIO_CTRL_PENDING => d.pending() as c_long,
        BIO_CTRL_EOF | BIO_CTRL_INFO | BIO_CTRL_RESET => 0,
        BIO_CTRL_DGRAM_CONNECT | BIO_CTRL_DGRAM_SET_PEER => {
            d.set_peer(opt_addr(parg as *const BIO_ADDR));
            1
        }
        BIO_CTRL_DGRAM_SET_CONNECTED => {
            d.set_connected(opt_addr(parg as *const BIO_ADDR));
            1
        }
        BIO_CTRL_DGRAM_GET_PEER => {
            // As OpenSSL: the (possibly cleared) peer is always copied out.
            let a = d.peer();
            mut_arg(parg as *mut BioAddr, "parg")?.clear();
            out_addr(a)?
        }
        BIO_CTRL_DGRAM_DETECT_PEER_ADDR => out_addr(d.detect_peer())?,
        BIO_CTRL_DGRAM_GET_MTU => d.mtu() as c_long,
        BIO_CTRL_DGRAM_SET_MTU => {
            if larg < 0 {
                return Err(Error::invalid("negative MTU"));
            }
            d.set_mtu(larg as usize);
            larg
        }
        BIO_CTRL_DGRAM_QUERY_MTU => d.query_mtu() as c_long,
        BIO_CTRL_DGRAM_MTU_EXCEEDED => d.mtu_exceeded() as c_long,
        BIO_CTRL_DGRAM_GET_FALLBACK_MTU => d.fallback_mtu() as c_long,
        BIO_CTRL_DGRAM_GET_MTU_OVERHEAD => d.mtu_overhead() as c_long,
        BIO_CTRL_DGRAM_SET_DONT_FRAG => {
            d.set_dont_frag(larg != 0)?;
            1
        }
        BIO_CTRL_DGRAM_MTU_DISCOVER => {
            d.set_dont_frag(true)?;
            1
        }
        BIO_CTRL_DGRAM_SET_RECV_TIMEOUT | BIO_CTRL_DGRAM_SET_SEND_TIMEOUT => {
            let tv = *ref_arg(parg as *const libc::timeval, "parg")?;
            d.set_timeout(cmd == BIO_CTRL_DGRAM_SET_SEND_TIMEOUT, tv)?;
            1
        }
        BIO_CTRL_DGRAM_GET_RECV_TIMEOUT | BIO_CTRL_DGRAM_GET_SEND_TIMEOUT => {
            let out = mut_arg(parg as *mut libc::timeval, "parg")?;
            *out = d.get_timeout(cmd == BIO_CTRL_DGRAM_GET_SEND_TIMEOUT)?;
            size_of::<libc::timeval>() as c_long
        }
        BIO_CTRL_DGRAM_GET_RECV_TIMER_EXP | BIO_CTRL_DGRAM_GET_SEND_TIMER_EXP => 0,
        BIO_CTRL_DGRAM_GET_LOCAL_ADDR_CAP => d.local_addr_cap() as c_long,
        BIO_CTRL_DGRAM_GET_LOCAL_ADDR_ENABLE => {
            *mut_arg(parg as *mut c_int, "parg")? = d.local_enabled() as c_int;
            1
        }
        BIO_CTRL_DGRAM_SET_LOCAL_ADDR_ENABLE => {
            d.set_local_addr_enable(larg != 0)?;
            1
        }
        BIO_CTRL_DGRAM_GET_EFFECTIVE_CAPS | BIO_CTRL_DGRAM_GET_CAPS => {
            (BIO_DGRAM_CAP_HANDLES_SRC_ADDR
                | BIO_DGRAM_CAP_HANDLES_DST_ADDR
                | BIO_DGRAM_CAP_PROVIDES_SRC_ADDR
                | BIO_DGRAM_CAP_PROVIDES_DST_ADDR) as c_long
        }
        BIO_CTRL_DGRAM_GET_NO_TRUNC => 0,
        _ => return unsupported(),
    })
}

/// BIO_ctrl on an accept BIO, following bss_acpt.c `acpt_ctrl` (unknown commands: 0).
fn acpt_ctrl(bio: &Bio, cmd: c_int, larg: c_long, parg: *mut c_void) -> Result<c_long> {
    let a = bio.acceptor().expect("accept kind");
    Ok(match cmd {
        BIO_CTRL_RESET => {
            a.reset(bio);
            0
        }
        BIO_C_DO_STATE_MACHINE => step_result(a.state(bio)),
        BIO_C_SET_ACCEPT if parg.is_null() => {
            match larg {
                2 => a.set_nbio_accept(false),
                5 => a.set_tfo(false),
                _ => {}
            }
            1
        }
        BIO_C_SET_ACCEPT => match larg {
            0 => {
                a.set_name(ctrl_str(parg)?)?;
                1
            }
            1 => {
                a.set_port(ctrl_str(parg)?)?;
                1
            }
            2 => {
                a.set_nbio_accept(true);
                1
            }
            3 => {
                return Err(Error::unsupported(
                    "BIO_set_accept_bios is not supported: push a filter on each accepted BIO",
                ));
            }
            4 => {
                a.set_family(*ref_arg(parg as *const c_int, "family")?);
                1
            }
            5 => {
                a.set_tfo(true);
                1
            }
            _ => 1,
        },
        BIO_C_SET_NBIO => {
            a.set_nbio(larg != 0);
            1
        }
        BIO_C_SET_FD => {
            let fd = *ref_arg(parg as *const c_int, "fd")?;
            a.set_fd(fd, larg != 0);
            1
        }
        BIO_C_GET_FD => {
            if !a.init() {
                return Ok(-1);
            }
            put(parg as *mut c_int, a.fd());
            a.fd() as c_long
        }
        BIO_C_GET_ACCEPT if !a.init() => -1,
        BIO_C_GET_ACCEPT => match larg {
            0..=3 if !parg.is_null() => {
                let which = [
                    Name::AcceptHost,
                    Name::AcceptPort,
                    Name::PeerHost,
                    Name::PeerPort,
                ][larg as usize];
                put(parg as *mut *const c_char, a.name_ptr(which));
                1
            }
            4 => a.family() as c_long,
            _ => -1,
        },
        BIO_CTRL_GET_CLOSE => a.get_close() as c_long,
        BIO_CTRL_SET_CLOSE => {
            a.set_close(larg != 0);
            1
        }
        BIO_CTRL_PENDING | BIO_CTRL_WPENDING => 0,
        BIO_CTRL_FLUSH | BIO_CTRL_DUP => 1,
        BIO_C_SET_BIND_MODE => {
            a.set_bind_mode(larg as c_int);
            1
        }
        BIO_C_GET_BIND_MODE => a.bind_mode() as c_long,
        BIO_CTRL_EOF => match bio.next_bio() {
            Some(n) => BIO_ctrl(n.handle(), cmd, larg, parg),
            None => 0,
        },
        _ => 0,
    })
}

/// What to poll to learn the BIO is readable. Returns 1, or 0 when it has none. On a custom
/// BIO, the method's ctrl (BIO_CTRL_GET_RPOLL_DESCRIPTOR) answers. See
/// BIO_get_rpoll_descriptor(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_get_rpoll_descriptor(b: *mut BIO, desc: *mut BIO_POLL_DESCRIPTOR) -> c_int {
    ffi_entry!(BIO_get_rpoll_descriptor, {
        let bio = bio_arg(b)?;
        let out = mut_arg(desc, "desc")?;
        if let Some(c) = bio.custom() {
            let out = (out as *mut BIO_POLL_DESCRIPTOR).cast();
            // SAFETY: b is this BIO's handle; the command takes a BIO_POLL_DESCRIPTOR *, checked.
            let r = unsafe { c.ctrl(b, BIO_CTRL_GET_RPOLL_DESCRIPTOR, 0, out) };
            return Ok(custom_ret(r, "BIO_get_rpoll_descriptor") as c_int);
        }
        *out = bio.rpoll()?;
        Ok(1)
    })
}

/// What to poll to learn the BIO is writable. Returns 1, or 0 when it has none. On a custom
/// BIO, the method's ctrl (BIO_CTRL_GET_WPOLL_DESCRIPTOR) answers. See
/// BIO_get_wpoll_descriptor(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_get_wpoll_descriptor(b: *mut BIO, desc: *mut BIO_POLL_DESCRIPTOR) -> c_int {
    ffi_entry!(BIO_get_wpoll_descriptor, {
        let bio = bio_arg(b)?;
        let out = mut_arg(desc, "desc")?;
        if let Some(c) = bio.custom() {
            let out = (out as *mut BIO_POLL_DESCRIPTOR).cast();
            // SAFETY: b is this BIO's handle; the command takes a BIO_POLL_DESCRIPTOR *, checked.
            let r = unsafe { c.ctrl(b, BIO_CTRL_GET_WPOLL_DESCRIPTOR, 0, out) };
            return Ok(custom_ret(r, "BIO_get_wpoll_descriptor") as c_int);
        }
        *out = bio.wpoll()?;
        Ok(1)
    })
}

/// Passes a callback to a custom method's callback_ctrl; only BIO_CTRL_SET_CALLBACK is
/// accepted. -2 (and an error) otherwise, for the built-in BIOs and for NULL.
/// See BIO_callback_ctrl(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_callback_ctrl(
    b: *mut BIO,
    cmd: c_int,
    fp: Option<unsafe extern "C" fn(*mut BIO, c_int, c_int) -> c_int>,
) -> c_long {
    ffi_entry!(BIO_callback_ctrl, -2, {
        let bio = bio_arg(b)?;
        let r = match bio.custom() {
            // SAFETY: b is this BIO's handle; fp is the caller's callback, passed on.
            Some(c) => unsafe { c.callback_ctrl(b, cmd, fp) },
            None => Err(Error::unsupported(format!(
                "BIO_callback_ctrl is not supported on a {} BIO",
                bio.name()
            ))),
        };
        Ok(custom_ret(r, "BIO_callback_ctrl"))
    })
}
