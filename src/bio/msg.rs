//! The C-layout structs of the datagram API (`BIO_MSG`, `BIO_POLL_DESCRIPTOR`) and a checked
//! view of a caller's `BIO_MSG` array walked by stride.

use std::ffi::{c_int, c_void};

use super::RxDst;
use super::addr::BioAddr;
use crate::error::{Error, Result};
use crate::sys::TxDesc;

/// The opaque C type behind `BIO_ADDR *` (the Rust object is a [`BioAddr`]).
#[allow(non_camel_case_types)]
pub struct bio_addr_st {
    _opaque: [u8; 0],
}
pub type BIO_ADDR = bio_addr_st;

/// One datagram of a BIO_sendmmsg/BIO_recvmmsg batch (OpenSSL's layout, 40 bytes on LP64).
#[allow(non_camel_case_types)]
#[repr(C)]
pub struct bio_msg_st {
    pub data: *mut c_void,
    pub data_len: usize,
    pub peer: *mut BIO_ADDR,
    pub local: *mut BIO_ADDR,
    pub flags: u64,
}
pub type BIO_MSG = bio_msg_st;

/// The value part of a poll descriptor.
#[repr(C)]
#[derive(Clone, Copy)]
pub union BIO_POLL_DESCRIPTOR_VALUE {
    pub fd: c_int,
    pub custom: *mut c_void,
    pub custom_ui: usize,
    pub ssl: *mut c_void,
}

/// What to poll for readiness of a BIO or SSL object (OpenSSL's layout, 16 bytes on LP64).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy)]
pub struct bio_poll_descriptor_st {
    pub r#type: u32,
    pub value: BIO_POLL_DESCRIPTOR_VALUE,
}
pub type BIO_POLL_DESCRIPTOR = bio_poll_descriptor_st;

pub const BIO_POLL_DESCRIPTOR_TYPE_NONE: u32 = 0;
pub const BIO_POLL_DESCRIPTOR_TYPE_SOCK_FD: u32 = 1;
pub const BIO_POLL_DESCRIPTOR_TYPE_SSL: u32 = 2;
pub const BIO_POLL_DESCRIPTOR_CUSTOM_START: u32 = 8192;

impl BIO_POLL_DESCRIPTOR {
    pub fn none() -> Self {
        BIO_POLL_DESCRIPTOR {
            r#type: BIO_POLL_DESCRIPTOR_TYPE_NONE,
            value: BIO_POLL_DESCRIPTOR_VALUE { custom_ui: 0 },
        }
    }
    pub fn fd(fd: i32) -> Self {
        let mut d = Self::none();
        d.r#type = BIO_POLL_DESCRIPTOR_TYPE_SOCK_FD;
        d.value.fd = fd;
        d
    }
    /// The file descriptor, when this describes one.
    pub fn sock_fd(&self) -> Option<i32> {
        // `fd` is the member written for (and only read for) SOCK_FD descriptors; every
        // member is plain data, so any bit pattern is a valid c_int anyway.
        if self.r#type != BIO_POLL_DESCRIPTOR_TYPE_SOCK_FD {
            return None;
        }
        // SAFETY: a SOCK_FD descriptor holds `fd`; all members are plain data.
        Some(unsafe { self.value.fd })
    }
}

/// A caller's BIO_MSG array: `len` items, item i at `base + i * stride`.
pub struct MsgArray {
    base: *mut u8,
    stride: usize,
    len: usize,
}

impl MsgArray {
    /// # Safety
    /// `base` must point at `len` items of at least `size_of::<BIO_MSG>()` bytes spaced
    /// `stride` apart, whose data/peer/local pointers are valid as the BIO_sendmmsg(3)
    /// contract requires, all live and unaliased for the lifetime of the array: no two items
    /// share a data buffer or a BIO_ADDR that a receive writes, and none overlaps the array.
    pub unsafe fn new(base: *mut BIO_MSG, stride: usize, len: usize) -> Result<MsgArray> {
        if len > 0 && base.is_null() {
            return Err(Error::null("msg"));
        }
        if stride < size_of::<BIO_MSG>() {
            return Err(Error::invalid(format!(
                "stride {stride} is less than sizeof(BIO_MSG) = {}",
                size_of::<BIO_MSG>()
            )));
        }
        if !(base as usize).is_multiple_of(align_of::<BIO_MSG>())
            || !stride.is_multiple_of(align_of::<BIO_MSG>())
        {
            return Err(Error::invalid("BIO_MSG array is misaligned"));
        }
        Ok(MsgArray {
            base: base.cast(),
            stride,
            len,
        })
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    fn item(&self, i: usize) -> *mut BIO_MSG {
        assert!(i < self.len);
        // SAFETY: i < len, and the constructor's contract makes base + i*stride an item.
        unsafe { self.base.add(i * self.stride).cast() }
    }
    pub fn data(&self, i: usize) -> (*mut u8, usize) {
        // SAFETY: item() is in bounds and points at a BIO_MSG.
        let m = unsafe { &*self.item(i) };
        (m.data.cast(), m.data_len)
    }
    pub fn peer(&self, i: usize) -> *mut BioAddr {
        // SAFETY: as in data().
        unsafe { (*self.item(i)).peer.cast() }
    }
    pub fn local(&self, i: usize) -> *mut BioAddr {
        // SAFETY: as in data().
        unsafe { (*self.item(i)).local.cast() }
    }
    pub fn flags(&self, i: usize) -> u64 {
        // SAFETY: as in data().
        unsafe { (*self.item(i)).flags }
    }
    /// Records a completed item: bytes moved, flags cleared (BIO_sendmmsg(3)).
    pub fn complete(&self, i: usize, len: usize) {
        // SAFETY: as in data(); the array is exclusively ours for the call.
        unsafe {
            let m = &mut *self.item(i);
            m.data_len = len;
            m.flags = 0;
        }
    }
    pub fn data_slice(&self, i: usize) -> &[u8] {
        let (p, n) = self.data(i);
        if n == 0 || p.is_null() {
            return &[];
        }
        // SAFETY: the caller promised data_len readable bytes at data.
        unsafe { std::slice::from_raw_parts(p, n) }
    }
    fn peer_ref(&self, i: usize) -> Option<&BioAddr> {
        // SAFETY: peer is NULL or a caller-owned BIO_ADDR (a BioAddr) live for the call.
        unsafe { self.peer(i).as_ref() }
    }
    fn local_ref(&self, i: usize) -> Option<&BioAddr> {
        // SAFETY: as in peer_ref().
        unsafe { self.local(i).as_ref() }
    }
    /// Item `i` as a send descriptor borrowing the caller's data and addresses (the
    /// constructor's contract keeps them live and unchanged while the array is).
    pub fn tx_desc(&self, i: usize) -> TxDesc<'_> {
        TxDesc {
            data: self.data_slice(i),
            dst: self.peer_ref(i),
            src: self.local_ref(i),
            // BIO_MSG has no ECN field (OpenSSL's layout): Not-ECT.
            ecn: 0,
        }
    }
    /// Item `i` as a receive destination: its data buffer, and its peer and local addresses
    /// to be filled in.
    ///
    /// # Safety
    /// While the result lives, nothing else may read or write item `i`'s buffer or
    /// addresses: call this at most once per item for destinations that live at the same
    /// time, and make no other view of that item meanwhile (the C caller's part, buffers
    /// and addresses not shared between items, is in [`MsgArray::new`]'s contract).
    pub unsafe fn rx_dst(&self, i: usize) -> RxDst<'_> {
        let (p, n) = self.data(i);
        let buf = if n == 0 || p.is_null() {
            &mut [][..]
        } else {
            // SAFETY: data_len writable bytes at data (constructor), ours alone (above).
            unsafe { std::slice::from_raw_parts_mut(p, n) }
        };
        // SAFETY: NULL or caller-owned BIO_ADDRs (BioAddrs) live for the call, ours alone.
        let (src, local) = unsafe { (self.peer(i).as_mut(), self.local(i).as_mut()) };
        RxDst::new(buf, src, local)
    }
}
