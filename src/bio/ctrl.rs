//! BIO control: the chain operations behind BIO_push and BIO_pop, with what they tell the
//! BIOs of the chain (BIO_CTRL_PUSH/POP for SSL filters).
//! Owns: the answers of the built-in kinds to BIO_ctrl. Must not read C memory: the
//! boundary (`ffi::bio::ctrl`) converts pointer arguments and out-parameters.

use std::sync::Arc;

use super::Bio;

impl Bio {
    /// BIO_push: appends `append` (with whatever follows it) to the end of `head`'s chain, or
    /// with None cuts the chain after its last BIO. SSL BIOs of the chain then take what
    /// follows them as their SSL's network BIO (BIO_CTRL_PUSH, bio_ssl.c).
    pub fn push_chain(head: &Arc<Bio>, append: Option<&Arc<Bio>>) {
        match append {
            None => {
                let mut last = head.clone();
                while let Some(n) = last.next_bio() {
                    last = n;
                }
                last.pop_next();
            }
            Some(a) => Bio::push(head, a),
        }
        let mut cur = Some(head.clone());
        while let Some(x) = cur {
            x.filter_pushed();
            cur = x.next_bio().filter(|n| !Arc::ptr_eq(n, head));
        }
    }

    /// BIO_pop: takes this BIO out of its chain and returns the BIO that followed it; a popped
    /// SSL BIO's SSL lets go of its network BIOs (bio_ssl.c).
    pub fn pop_chain(&self) -> Option<Arc<Bio>> {
        self.filter_popped();
        self.pop()
    }

    /// BIO_CTRL_PUSH on an SSL BIO: the BIO now following it becomes its SSL's read and write
    /// BIO (the SSL takes a reference), unless it already is.
    pub(crate) fn filter_pushed(&self) {
        let (Some(f), Some(next)) = (self.filter(), self.next_bio()) else {
            return;
        };
        let Some(a) = f.attached() else { return };
        let (r, _) = a.engine.filter_bios();
        if !r.is_some_and(|r| Arc::ptr_eq(&r, &next)) {
            a.engine.filter_set_bios(Some(next));
        }
    }

    /// BIO_CTRL_POP on the popped SSL BIO itself: its SSL lets go of its network BIOs.
    pub(crate) fn filter_popped(&self) {
        if let Some(a) = self.filter().and_then(|f| f.attached()) {
            a.engine.filter_set_bios(None);
        }
    }
}
