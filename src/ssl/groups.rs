//! Key-exchange groups as OpenSSL 3.5 names them: the list syntax of SSL_CTX_set1_groups_list
//! (ssl/t1_lib.c, `tls1_set_groups_list`), the NIDs of SSL_CTX_set1_groups and
//! SSL_get_negotiated_group, and the names of SSL_group_to_name, mapped to the aws-lc-rs
//! provider's rustls groups. Owns nothing else: the context keeps the chosen list (`ctx.rs`).
#![deny(unsafe_code)]

use std::ffi::CStr;

use rustls::NamedGroup;
use rustls::crypto::SupportedKxGroup;

use crate::consts::*;
use crate::error::*;

/// A group list in order of preference, as the rustls provider takes it.
pub type Groups = Vec<&'static dyn SupportedKxGroup>;

/// OpenSSL's marker for a group without a NID: SSL_get_negotiated_group returns the TLS group
/// id ORed with it (`tls1_group_id2nid(id, 1)`).
pub(crate) const TLSEXT_NID_UNKNOWN: i32 = 0x100_0000;

/// At most this many `*` (key share) prefixes in a list (OpenSSL's
/// OPENSSL_CLIENT_MAX_KEY_SHARES).
const MAX_KEY_SHARES: usize = 4;

/// OpenSSL 3.5's default list (TLS_DEFAULT_GROUP_LIST). With the groups aws-lc-rs has, it
/// comes to X25519MLKEM768, X25519, secp256r1, secp384r1: rustls's own default order.
pub const DEFAULT_LIST: &str =
    "?*X25519MLKEM768 / ?*X25519:?secp256r1 / ?X448:?secp384r1:?secp521r1 / ?ffdhe2048:?ffdhe3072";
const SUITE_B_LIST: &str = "?secp256r1:?secp384r1";

/// A group OpenSSL 3.5's default provider knows: TLS id, NID (0: none), OpenSSL's TLS name
/// (what SSL_group_to_name returns) and the other names its lists accept.
struct Known {
    id: u16,
    nid: i32,
    name: &'static CStr,
    aliases: &'static [&'static str],
}

const fn k(id: u16, nid: i32, name: &'static CStr, aliases: &'static [&'static str]) -> Known {
    Known {
        id,
        nid,
        name,
        aliases,
    }
}

/// providers/common/capabilities.c (names, aliases: the "realname" OpenSSL matches too) and
/// ssl/t1_lib.c's `nid_to_group` (NIDs). Groups aws-lc-rs lacks (X448, secp521r1, FFDHE,
/// MLKEM512, SecP384r1MLKEM1024) are listed so that their names and NIDs are recognised:
/// a list naming one fails as OpenSSL's does when no provider has a group (skipped with `?`).
static KNOWN: &[Known] = &[
    k(0x11ec, 0, c"X25519MLKEM768", &[]),
    k(0x11eb, 0, c"SecP256r1MLKEM768", &[]),
    k(0x11ed, 0, c"SecP384r1MLKEM1024", &[]),
    k(0x0200, 0, c"MLKEM512", &[]),
    k(0x0201, 0, c"MLKEM768", &[]),
    k(0x0202, 0, c"MLKEM1024", &[]),
    k(0x001d, 1034, c"x25519", &[]),
    k(0x001e, 1035, c"x448", &[]),
    k(0x0017, 415, c"secp256r1", &["P-256", "prime256v1"]),
    k(0x0018, 715, c"secp384r1", &["P-384"]),
    k(0x0019, 716, c"secp521r1", &["P-521"]),
    k(0x0100, 1126, c"ffdhe2048", &[]),
    k(0x0101, 1127, c"ffdhe3072", &[]),
    k(0x0102, 1128, c"ffdhe4096", &[]),
    k(0x0103, 1129, c"ffdhe6144", &[]),
    k(0x0104, 1130, c"ffdhe8192", &[]),
];

/// The provider's group of TLS id `id`, if it has one.
fn provided(id: u16) -> Option<&'static dyn SupportedKxGroup> {
    rustls::crypto::aws_lc_rs::ALL_KX_GROUPS
        .iter()
        .copied()
        .find(|g| u16::from(g.name()) == id)
}

/// The groups a context offers and accepts unless told otherwise: OpenSSL 3.5's default list.
pub fn default_groups() -> Groups {
    // The default list parses; a failure here would be a bug in this file (tested below).
    parse_list(DEFAULT_LIST)
        .unwrap_or_else(|_| rustls::crypto::aws_lc_rs::DEFAULT_KX_GROUPS.to_vec())
}

fn syntax(list: &str) -> Error {
    Error::new(ERR_LIB_SSL, ERR_R_PASSED_INVALID_ARGUMENT).with(format!("Syntax error in '{list}'"))
}

/// Parses a group list as OpenSSL 3.5's SSL_CTX_set1_groups_list does: groups separated by
/// `:`, tuples by `/` (read as one ordered list: rustls has no tuples, and its server takes
/// the client's first group that its list has), names case-insensitive with OpenSSL's aliases, prefixes `?` (skip if unknown or
/// unavailable), `-` (remove), `*` (send a key share: accepted and counted, but rustls sends
/// the first group's share, plus X25519's when the first is X25519MLKEM768), and the pseudo
/// groups DEFAULT and DEFAULT_SUITE_B. Duplicates are ignored; an empty list is accepted (and
/// no handshake can then succeed, as with OpenSSL). A name neither known nor available fails
/// (OpenSSL fails there without queuing an error; we queue ERR_R_PASSED_INVALID_ARGUMENT
/// naming the group, as every failure of ours queues one).
pub fn parse_list(list: &str) -> Result<Groups> {
    let mut p = Parser {
        ids: Vec::new(),
        shares: 0,
        whole: list,
    };
    let trimmed = list.trim_start();
    if !trimmed.is_empty() {
        p.tuples(trimmed, 0)?;
    }
    if p.shares > MAX_KEY_SHARES {
        return Err(
            Error::new(ERR_LIB_SSL, ERR_R_PASSED_INVALID_ARGUMENT).with(format!(
                "To many keyshares requested in '{list}' (max = {MAX_KEY_SHARES})"
            )),
        );
    }
    Ok(p.ids.iter().filter_map(|&id| provided(id)).collect())
}

struct Parser<'a> {
    ids: Vec<u16>,
    shares: usize,
    whole: &'a str,
}

impl Parser<'_> {
    fn tuples(&mut self, s: &str, depth: u32) -> Result<()> {
        for tuple in s.split('/') {
            let tuple = tuple.trim();
            if tuple.is_empty() {
                return Err(Error::ssl(SSL_R_UNSUPPORTED_CONFIG_VALUE)
                    .with(format!("empty group tuple in '{}'", self.whole)));
            }
            for elem in tuple.split(':') {
                let elem = elem.trim();
                if elem.is_empty() {
                    return Err(Error::ssl(SSL_R_UNSUPPORTED_CONFIG_VALUE)
                        .with(format!("empty group name in '{}'", self.whole)));
                }
                self.group(elem, depth)?;
            }
        }
        Ok(())
    }

    fn group(&mut self, mut elem: &str, depth: u32) -> Result<()> {
        let (mut share, mut remove, mut ignore) = (false, false, false);
        loop {
            let flag = match elem.as_bytes().first() {
                Some(b'*') => &mut share,
                Some(b'-') => &mut remove,
                Some(b'?') => &mut ignore,
                _ => break,
            };
            if *flag {
                return Err(syntax(self.whole));
            }
            *flag = true;
            elem = &elem[1..];
        }
        if elem.is_empty() || elem.len() > 63 {
            return Err(syntax(self.whole));
        }
        for (pseudo, expansion) in [("DEFAULT", DEFAULT_LIST), ("DEFAULT_SUITE_B", SUITE_B_LIST)] {
            if elem.eq_ignore_ascii_case(pseudo) {
                if ignore || remove || depth > 0 {
                    return Err(syntax(self.whole));
                }
                return self.tuples(expansion, depth + 1);
            }
        }
        let known = KNOWN.iter().find(|g| {
            g.name.to_bytes().eq_ignore_ascii_case(elem.as_bytes())
                || g.aliases.iter().any(|a| a.eq_ignore_ascii_case(elem))
        });
        let Some(id) = known.map(|g| g.id).filter(|&id| provided(id).is_some()) else {
            if ignore {
                return Ok(());
            }
            return Err(
                Error::new(ERR_LIB_SSL, ERR_R_PASSED_INVALID_ARGUMENT).with(match known {
                    Some(g) => format!(
                        "group {} is not available (osslquic's provider lacks it)",
                        g.name.to_string_lossy()
                    ),
                    None => format!("unknown group '{elem}'"),
                }),
            );
        };
        if remove {
            self.ids.retain(|&g| g != id);
        } else if !self.ids.contains(&id) {
            self.ids.push(id);
            if share {
                self.shares += 1;
            }
        }
        Ok(())
    }
}

/// SSL_CTX_set1_groups: NIDs (or TLSEXT_nid_unknown | id, which OpenSSL's list of NIDs does
/// not take but its SSL_get_negotiated_group returns). As OpenSSL: an empty list fails with
/// SSL_R_BAD_LENGTH, a duplicate or unknown NID fails; so does a group the provider lacks.
pub fn from_nids(nids: &[i32]) -> Result<Groups> {
    if nids.is_empty() {
        return Err(Error::ssl(SSL_R_BAD_LENGTH).with("an empty group list"));
    }
    let mut out: Groups = Vec::with_capacity(nids.len());
    for &nid in nids {
        let id = id_of_nid(nid).ok_or_else(|| {
            Error::new(ERR_LIB_SSL, ERR_R_PASSED_INVALID_ARGUMENT)
                .with(format!("unknown group NID {nid}"))
        })?;
        let g = provided(id).ok_or_else(|| {
            Error::new(ERR_LIB_SSL, ERR_R_PASSED_INVALID_ARGUMENT)
                .with(format!("group NID {nid} is not available"))
        })?;
        if out.iter().any(|o| o.name() == g.name()) {
            return Err(Error::new(ERR_LIB_SSL, ERR_R_PASSED_INVALID_ARGUMENT)
                .with(format!("group NID {nid} is listed twice")));
        }
        out.push(g);
    }
    Ok(out)
}

/// The TLS group id a NID (or TLSEXT_nid_unknown | id) stands for.
fn id_of_nid(nid: i32) -> Option<u16> {
    if nid & TLSEXT_NID_UNKNOWN != 0 {
        return Some((nid & 0xffff) as u16);
    }
    KNOWN
        .iter()
        .find(|g| g.nid != 0 && g.nid == nid)
        .map(|g| g.id)
}

/// SSL_get_negotiated_group's answer for a TLS group id: its NID, or TLSEXT_nid_unknown | id
/// for a group without one (X25519MLKEM768: 0x10011ec); 0 (NID_undef) for none.
pub fn nid_of(group: Option<NamedGroup>) -> i32 {
    let Some(g) = group else { return 0 };
    let id = u16::from(g);
    match KNOWN.iter().find(|k| k.id == id) {
        Some(k) if k.nid != 0 => k.nid,
        _ => TLSEXT_NID_UNKNOWN | id as i32,
    }
}

/// SSL_group_to_name: OpenSSL's TLS name of a NID (or TLSEXT_nid_unknown | id), None if
/// unknown.
pub fn name_of_nid(nid: i32) -> Option<&'static CStr> {
    let id = id_of_nid(nid)?;
    name_of(id)
}

/// OpenSSL's TLS name of group id `id` ("X25519MLKEM768", "x25519", "secp256r1").
pub fn name_of(id: u16) -> Option<&'static CStr> {
    KNOWN.iter().find(|k| k.id == id).map(|k| k.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(g: &Groups) -> Vec<&'static str> {
        g.iter()
            .map(|g| name_of(u16::from(g.name())).unwrap().to_str().unwrap())
            .collect()
    }

    #[test]
    fn default_is_openssl_35_order_as_far_as_the_provider_goes() {
        assert_eq!(
            names(&default_groups()),
            ["X25519MLKEM768", "x25519", "secp256r1", "secp384r1"]
        );
        assert_eq!(
            names(&parse_list("DEFAULT").unwrap()),
            names(&default_groups())
        );
    }

    #[test]
    fn names_aliases_prefixes_as_openssl() {
        let g = parse_list("p-256 : X25519 / prime256v1:?x448:MLKEM768").unwrap();
        assert_eq!(names(&g), ["secp256r1", "x25519", "MLKEM768"]);
        let g = parse_list("*x25519mlkem768:*X25519:secp384r1:-x25519").unwrap();
        assert_eq!(names(&g), ["X25519MLKEM768", "secp384r1"]);
        let g = parse_list("SecP256r1MLKEM768:DEFAULT:-secp384r1").unwrap();
        assert_eq!(
            names(&g),
            ["SecP256r1MLKEM768", "X25519MLKEM768", "x25519", "secp256r1"]
        );
        assert!(parse_list("").unwrap().is_empty());
        assert!(parse_list("?bogus").unwrap().is_empty());
    }

    #[test]
    fn bad_lists_fail() {
        for bad in [
            "bogus",
            "X25519:bogus",
            "x448",
            "X25519::P-256",
            "**X25519",
            "?-?X25519",
            "?DEFAULT",
            "*",
            "X25519/",
            "*x25519:*P-256:*P-384:*MLKEM768:*X25519MLKEM768",
        ] {
            let e = parse_list(bad).unwrap_err();
            assert_eq!(e.lib(), ERR_LIB_SSL, "{bad}");
        }
    }

    #[test]
    fn nids() {
        assert_eq!(nid_of(Some(NamedGroup::X25519)), 1034);
        assert_eq!(nid_of(Some(NamedGroup::secp256r1)), 415);
        assert_eq!(nid_of(Some(NamedGroup::X25519MLKEM768)), 0x10011ec);
        assert_eq!(nid_of(None), 0);
        assert_eq!(name_of_nid(0x10011ec), Some(c"X25519MLKEM768"));
        assert_eq!(name_of_nid(1034), Some(c"x25519"));
        assert_eq!(name_of_nid(12345), None);
        assert_eq!(
            names(&from_nids(&[415, 0x10011ec]).unwrap()),
            ["secp256r1", "X25519MLKEM768"]
        );
        assert_eq!(from_nids(&[]).unwrap_err().reason(), SSL_R_BAD_LENGTH);
        assert!(from_nids(&[1034, 1034]).is_err());
        assert!(from_nids(&[1035]).is_err(), "X448: not provided");
        assert!(from_nids(&[99]).is_err());
    }
}
