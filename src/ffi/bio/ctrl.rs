//! BIO_ctrl and the calls made of it (BIO_int_ctrl, BIO_ptr_ctrl, BIO_ctrl_pending, ...),
//! BIO_callback_ctrl, the poll descriptors.

use std::ffi::{c_char, c_int, c_long, c_void};

use super::{custom_ret, opt_addr};
use crate::bio::addr::BioAddr;
use crate::bio::consts::*;
use crate::bio::ctrl::{BioCtrl, CtrlAnswer, CtrlArg, CtrlOut};
use crate::bio::file::{BIO_C_FILE_SEEK, BIO_C_FILE_TELL, BIO_C_SET_FILENAME};
use crate::bio::msg::{BIO_ADDR, BIO_POLL_DESCRIPTOR};
use crate::error::*;
use crate::ffi::{BIO, bio_arg, cstr_arg, ffi_entry, guard_with, mut_arg, put};

/// BIO_ctrl with a `char **` out-argument: the pointer it stored, or NULL when the ctrl
/// returned <= 0 (BIO_get_conn_hostname, BIO_get_accept_port, ...). See BIO_ctrl(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_ptr_ctrl(bp: *mut BIO, cmd: c_int, larg: c_long) -> *mut c_void {
    guard_with("BIO_ptr_ctrl", std::ptr::null_mut(), || {
        let mut p: *mut c_char = std::ptr::null_mut();
        if ctrl_or_fail(bp, cmd, larg, (&mut p as *mut *mut c_char).cast()) <= 0 {
            return Ok(std::ptr::null_mut());
        }
        Ok(p.cast())
    })
}

/// How many bytes the other half of a BIO pair last failed to read (capped at the buffer
/// size), 0 once anything was written or read since. See BIO_ctrl_get_read_request(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_ctrl_get_read_request(b: *mut BIO) -> usize {
    ffi_entry!(BIO_ctrl_get_read_request, {
        Ok(ctrl_or_fail(b, BIO_C_GET_READ_REQUEST, 0, std::ptr::null_mut()).max(0) as usize)
    })
}

/// Clears the read request BIO_ctrl_get_read_request reports. Returns 1, or 0 on a BIO that
/// is not a BIO pair half. See BIO_ctrl_reset_read_request(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_ctrl_reset_read_request(b: *mut BIO) -> c_int {
    ffi_entry!(BIO_ctrl_reset_read_request, {
        Ok((ctrl_or_fail(b, BIO_C_RESET_READ_REQUEST, 0, std::ptr::null_mut()) != 0) as c_int)
    })
}

/// Bytes of the next datagram waiting to be read (0 if none). See BIO_ctrl_pending(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_ctrl_pending(b: *mut BIO) -> usize {
    ffi_entry!(BIO_ctrl_pending, {
        Ok(ctrl_or_fail(b, BIO_CTRL_PENDING, 0, std::ptr::null_mut()).max(0) as usize)
    })
}

/// Bytes written but not yet sent (always 0 here: writes leave at once). See BIO_ctrl_wpending(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_ctrl_wpending(b: *mut BIO) -> usize {
    ffi_entry!(BIO_ctrl_wpending, {
        Ok(ctrl_or_fail(b, BIO_CTRL_WPENDING, 0, std::ptr::null_mut()).max(0) as usize)
    })
}

/// Largest datagram a pair half can accept now (0 if under the MTU). See
/// BIO_ctrl_get_write_guarantee(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_ctrl_get_write_guarantee(b: *mut BIO) -> usize {
    ffi_entry!(BIO_ctrl_get_write_guarantee, {
        Ok(ctrl_or_fail(b, BIO_C_GET_WRITE_GUARANTEE, 0, std::ptr::null_mut()).max(0) as usize)
    })
}

/// BIO_ctrl with an int argument passed by address. See BIO_int_ctrl(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_int_ctrl(b: *mut BIO, cmd: c_int, larg: c_long, iarg: c_int) -> c_long {
    let mut i = iarg;
    guard_with("BIO_ctrl", ctrl_fail(b, cmd), || {
        ctrl(b, cmd, larg, (&mut i as *mut c_int).cast())
    })
}

/// The control call behind most BIO macros. Unknown or unsupported commands return 0 with an
/// error queued. On a custom BIO every command goes to the method's ctrl and its result is
/// returned as is (-2 and an error if it has none). See BIO_ctrl(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_ctrl(b: *mut BIO, cmd: c_int, larg: c_long, parg: *mut c_void) -> c_long {
    guard_with("BIO_ctrl", ctrl_fail(b, cmd), || ctrl(b, cmd, larg, parg))
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

// ---- the ctrl underneath BIO_ctrl and the calls made of it

/// What BIO_ctrl returns on failure: OpenSSL returns -1 for a NULL BIO, and for BIO_get_fd
/// without a descriptor; 0 otherwise.
fn ctrl_fail(b: *mut BIO, cmd: c_int) -> c_long {
    if cmd == BIO_C_GET_FD || b.is_null() {
        -1
    } else {
        0
    }
}

/// BIO_ctrl's result for the calls made of it: a failure is queued (as BIO_ctrl's) and
/// gives BIO_ctrl's failure value.
fn ctrl_or_fail(b: *mut BIO, cmd: c_int, larg: c_long, parg: *mut c_void) -> c_long {
    ctrl(b, cmd, larg, parg).unwrap_or_else(|e| {
        e.queue("BIO_ctrl");
        ctrl_fail(b, cmd)
    })
}

/// One BIO_ctrl: a custom BIO's method gets the raw arguments; for a built-in BIO the
/// command is parsed once ([`parse`]), the BIO's kind answers it (`Bio::ctrl`), and what the
/// answer says is written through `parg` here. A command the kind passes on to another BIO
/// (a filter's next BIO) is asked of that one the same way.
pub(super) fn ctrl(b: *mut BIO, cmd: c_int, larg: c_long, parg: *mut c_void) -> Result<c_long> {
    let bio = bio_arg(b)?;
    if let Some(c) = bio.custom() {
        // SAFETY: b is this BIO's handle; cmd, larg and parg are the caller's, for the
        // method's ctrl to interpret (BIO_ctrl(3)).
        return Ok(custom_ret(
            unsafe { c.ctrl(b, cmd, larg, parg) },
            "BIO_ctrl",
        ));
    }
    if cmd == BIO_C_SET_SSL && bio.filter().is_some() {
        // The SSL is above the BIO layer: attached here (BIO_set_ssl).
        return crate::ffi::sslbio::set_ssl(bio, parg.cast(), larg != 0);
    }
    Ok(match bio.ctrl(parse(b, cmd, larg, parg))? {
        CtrlAnswer::Ret(v) => v,
        CtrlAnswer::Out(v, out) => {
            write_out(parg, out);
            v
        }
        CtrlAnswer::Forward { to, copy_retry } => {
            let r = ctrl_or_fail(to.handle(), cmd, larg, parg);
            copy_retry.apply(bio, &to);
            r
        }
        CtrlAnswer::Unsupported => {
            return Err(Error::unsupported(format!(
                "BIO_ctrl {cmd} is not supported on a {} BIO",
                bio.name()
            )));
        }
    })
}

/// Parses `(cmd, larg, parg)`: the meaning of each argument is the command's (and for
/// BIO_C_SET_CONNECT / BIO_C_SET_ACCEPT, `larg`'s), as OpenSSL's headers define it. Inputs
/// behind `parg` are read here (NULL is `None`, refused by the kinds that need them);
/// out-parameters are only noted as present.
fn parse<'a>(b: *mut BIO, cmd: c_int, larg: c_long, parg: *mut c_void) -> BioCtrl<'a> {
    let out = !parg.is_null();
    let int_in = || {
        // SAFETY: a non-NULL parg of these commands points at an int (BIO_set_fd and the
        // family setters).
        unsafe { (parg as *const c_int).as_ref() }.copied()
    };
    let str_in = || cstr_arg(parg as *const c_char, "parg");
    match cmd {
        BIO_CTRL_RESET => BioCtrl::Reset,
        BIO_CTRL_EOF => BioCtrl::Eof,
        BIO_CTRL_INFO => BioCtrl::Info,
        BIO_CTRL_SET_CLOSE => BioCtrl::SetClose(larg != 0),
        BIO_CTRL_GET_CLOSE => BioCtrl::GetClose,
        BIO_CTRL_PENDING => BioCtrl::Pending,
        BIO_CTRL_WPENDING => BioCtrl::WPending,
        BIO_CTRL_FLUSH => BioCtrl::Flush,
        BIO_CTRL_DUP => BioCtrl::Dup,
        BIO_CTRL_PUSH => BioCtrl::Push,
        BIO_CTRL_POP => BioCtrl::Pop {
            of_self: parg == b.cast(),
        },
        BIO_CTRL_GET_RPOLL_DESCRIPTOR => BioCtrl::PollDescriptor { write: false, out },
        BIO_CTRL_GET_WPOLL_DESCRIPTOR => BioCtrl::PollDescriptor { write: true, out },
        BIO_C_SET_NBIO => BioCtrl::SetNbio(larg != 0),
        BIO_C_SET_FD => BioCtrl::SetFd {
            fd: int_in(),
            close: larg != 0,
        },
        BIO_C_GET_FD => BioCtrl::GetFd,
        BIO_C_DO_STATE_MACHINE => BioCtrl::DoStateMachine,
        BIO_C_SET_BUF_MEM_EOF_RETURN => BioCtrl::SetMemEofReturn(larg as c_int),
        BIO_C_SET_WRITE_BUF_SIZE => BioCtrl::SetWriteBufSize(larg),
        BIO_C_GET_WRITE_BUF_SIZE => BioCtrl::GetWriteBufSize,
        BIO_C_GET_WRITE_GUARANTEE => BioCtrl::GetWriteGuarantee,
        BIO_C_GET_READ_REQUEST => BioCtrl::GetReadRequest,
        BIO_C_RESET_READ_REQUEST => BioCtrl::ResetReadRequest,
        BIO_C_SHUTDOWN_WR => BioCtrl::ShutdownWr,
        BIO_C_MAKE_BIO_PAIR => BioCtrl::MakePair(bio_arg(parg.cast()).ok()),
        BIO_C_DESTROY_BIO_PAIR => BioCtrl::DestroyPair,
        BIO_C_SET_BUFF_SIZE => BioCtrl::SetBuffSize,
        BIO_C_GET_BUFF_NUM_LINES => BioCtrl::GetBuffNumLines,
        BIO_CTRL_DGRAM_CONNECT | BIO_CTRL_DGRAM_SET_PEER => {
            BioCtrl::SetPeer(opt_addr(parg as *const BIO_ADDR))
        }
        BIO_CTRL_DGRAM_SET_CONNECTED => BioCtrl::SetConnected(opt_addr(parg as *const BIO_ADDR)),
        BIO_CTRL_DGRAM_GET_PEER => BioCtrl::GetPeer { out },
        BIO_CTRL_DGRAM_DETECT_PEER_ADDR => BioCtrl::DetectPeer { out },
        BIO_CTRL_DGRAM_GET_MTU => BioCtrl::GetMtu,
        BIO_CTRL_DGRAM_SET_MTU => BioCtrl::SetMtu(larg),
        BIO_CTRL_DGRAM_QUERY_MTU => BioCtrl::QueryMtu,
        BIO_CTRL_DGRAM_MTU_EXCEEDED => BioCtrl::MtuExceeded,
        BIO_CTRL_DGRAM_GET_FALLBACK_MTU => BioCtrl::FallbackMtu,
        BIO_CTRL_DGRAM_GET_MTU_OVERHEAD => BioCtrl::MtuOverhead,
        BIO_CTRL_DGRAM_SET_DONT_FRAG => BioCtrl::SetDontFrag(larg != 0),
        BIO_CTRL_DGRAM_MTU_DISCOVER => BioCtrl::MtuDiscover,
        BIO_CTRL_DGRAM_SET_RECV_TIMEOUT | BIO_CTRL_DGRAM_SET_SEND_TIMEOUT => BioCtrl::SetTimeout {
            send: cmd == BIO_CTRL_DGRAM_SET_SEND_TIMEOUT,
            // SAFETY: a non-NULL parg of these commands points at a struct timeval.
            tv: unsafe { (parg as *const libc::timeval).as_ref() }.copied(),
        },
        BIO_CTRL_DGRAM_GET_RECV_TIMEOUT | BIO_CTRL_DGRAM_GET_SEND_TIMEOUT => BioCtrl::GetTimeout {
            send: cmd == BIO_CTRL_DGRAM_GET_SEND_TIMEOUT,
            out,
        },
        BIO_CTRL_DGRAM_GET_RECV_TIMER_EXP | BIO_CTRL_DGRAM_GET_SEND_TIMER_EXP => BioCtrl::TimerExp,
        BIO_CTRL_DGRAM_GET_LOCAL_ADDR_CAP => BioCtrl::LocalAddrCap,
        BIO_CTRL_DGRAM_GET_LOCAL_ADDR_ENABLE => BioCtrl::GetLocalAddrEnable { out },
        BIO_CTRL_DGRAM_SET_LOCAL_ADDR_ENABLE => BioCtrl::SetLocalAddrEnable(larg != 0),
        BIO_CTRL_DGRAM_GET_CAPS => BioCtrl::GetCaps,
        BIO_CTRL_DGRAM_SET_CAPS => BioCtrl::SetCaps(larg as u32),
        BIO_CTRL_DGRAM_GET_EFFECTIVE_CAPS => BioCtrl::EffectiveCaps,
        BIO_CTRL_DGRAM_GET_NO_TRUNC => BioCtrl::GetNoTrunc,
        BIO_CTRL_DGRAM_SET_NO_TRUNC => BioCtrl::SetNoTrunc(larg != 0),
        BIO_CTRL_DGRAM_SET0_LOCAL_ADDR => BioCtrl::Set0LocalAddr(opt_addr(parg as *const BIO_ADDR)),
        BIO_C_GET_CONNECT => BioCtrl::GetConnect { which: larg, out },
        BIO_C_SET_CONNECT => BioCtrl::SetConnect {
            which: larg,
            arg: match larg {
                _ if !out => CtrlArg::Null,
                0 | 1 => CtrlArg::Str(str_in()),
                // SAFETY: with larg 2, a non-NULL parg is a BIO_ADDR (BIO_set_conn_address).
                2 => CtrlArg::Addr(unsafe { *(parg as *const BioAddr) }),
                3 => CtrlArg::Int(int_in().unwrap_or_default()),
                _ => CtrlArg::Unread,
            },
        },
        BIO_C_SET_SOCK_TYPE => BioCtrl::SetSockType(larg as c_int),
        BIO_C_GET_SOCK_TYPE => BioCtrl::GetSockType,
        BIO_C_GET_DGRAM_BIO => BioCtrl::GetDgramBio,
        BIO_C_SET_CONNECT_MODE => BioCtrl::SetConnectMode(larg as c_int),
        BIO_C_GET_ACCEPT => BioCtrl::GetAccept { which: larg, out },
        BIO_C_SET_ACCEPT => BioCtrl::SetAccept {
            which: larg,
            arg: match larg {
                _ if !out => CtrlArg::Null,
                0 | 1 => CtrlArg::Str(str_in()),
                4 => CtrlArg::Int(int_in().unwrap_or_default()),
                _ => CtrlArg::Unread,
            },
        },
        BIO_C_SET_BIND_MODE => BioCtrl::SetBindMode(larg as c_int),
        BIO_C_GET_BIND_MODE => BioCtrl::GetBindMode,
        BIO_C_SET_FILENAME => BioCtrl::SetFilename {
            flags: larg,
            path: cstr_arg(parg as *const c_char, "filename"),
        },
        BIO_C_FILE_SEEK => BioCtrl::FileSeek(larg),
        BIO_C_FILE_TELL => BioCtrl::FileTell,
        BIO_C_SET_SSL_RENEGOTIATE_BYTES
        | BIO_C_SET_SSL_RENEGOTIATE_TIMEOUT
        | BIO_C_GET_SSL_NUM_RENEGOTIATES => BioCtrl::Renegotiate,
        BIO_C_SSL_MODE => BioCtrl::SslMode(larg != 0),
        BIO_C_GET_SSL => BioCtrl::GetSsl { out },
        _ => BioCtrl::Other(cmd),
    }
}

/// Writes a kind's answer through `parg` (nothing for NULL).
fn write_out(parg: *mut c_void, out: CtrlOut) {
    match out {
        CtrlOut::Int(v) => put(parg as *mut c_int, v),
        CtrlOut::Ptr(p) => put(parg as *mut *const c_char, p),
        CtrlOut::Bytes(p) => put(parg as *mut *const u8, p),
        CtrlOut::Addr(a) => put(parg as *mut BioAddr, a),
        CtrlOut::Poll(d) => put(parg as *mut BIO_POLL_DESCRIPTOR, d),
        CtrlOut::Timeval(tv) => put(parg as *mut libc::timeval, tv),
        CtrlOut::Handle(h) => put(parg as *mut *mut c_void, h as *mut c_void),
        CtrlOut::Consumed => {
            if !parg.is_null() {
                // SAFETY: BIO_dgram_set0_local_addr hands over a BIO_ADDR from BIO_ADDR_new
                // (a Box<BioAddr>); the BIO kept a copy, so it is freed here, once.
                drop(unsafe { Box::from_raw(parg as *mut BioAddr) });
            }
        }
    }
}
