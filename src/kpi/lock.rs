//! Kernel mutexes (`lck_mtx`), and sleeping on them (`msleep`/`wakeup`).
//!
//! [`KMutex`] owns the data it guards, and the only way to sleep is [`KGuard::sleep`], which
//! passes the held mutex to `msleep` as the interlock. "Unlock, then sleep with a NULL mutex",
//! the lost-wakeup bug of an older Mac tun driver, cannot be written with this API.

use super::errno::{check, Errno};
use super::sys;
use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::ops::{Deref, DerefMut};
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

/// The lock group, group attributes and lock attributes every driver mutex is made from.
pub struct LockGroup {
    grp_attr: NonNull<sys::lck_grp_attr_t>,
    grp: NonNull<sys::lck_grp_t>,
    attr: NonNull<sys::lck_attr_t>,
}

// SAFETY: lock groups are kernel objects usable from any thread.
unsafe impl Send for LockGroup {}

impl LockGroup {
    /// Allocates the group and attributes; on failure frees what was allocated.
    pub fn new(name: &'static core::ffi::CStr) -> Result<LockGroup, Errno> {
        // SAFETY: plain allocation calls; every result is checked for NULL.
        unsafe {
            let grp_attr = NonNull::new(sys::lck_grp_attr_alloc_init()).ok_or(Errno::ENOMEM)?;
            let Some(grp) = NonNull::new(sys::lck_grp_alloc_init(name.as_ptr(), grp_attr.as_ptr()))
            else {
                sys::lck_grp_attr_free(grp_attr.as_ptr());
                return Err(Errno::ENOMEM);
            };
            let Some(attr) = NonNull::new(sys::lck_attr_alloc_init()) else {
                sys::lck_grp_free(grp.as_ptr());
                sys::lck_grp_attr_free(grp_attr.as_ptr());
                return Err(Errno::ENOMEM);
            };
            Ok(LockGroup {
                grp_attr,
                grp,
                attr,
            })
        }
    }

    /// Frees the group; every mutex made from it must have been freed first.
    pub fn free(self) {
        // SAFETY: the pointers came from the matching alloc calls and are freed once.
        unsafe {
            sys::lck_attr_free(self.attr.as_ptr());
            sys::lck_grp_free(self.grp.as_ptr());
            sys::lck_grp_attr_free(self.grp_attr.as_ptr());
        }
    }
}

/// Data guarded by a kernel mutex. The mutex is allocated at load ([`KMutex::install`]) and
/// freed at unload ([`KMutex::uninstall`]); the data lives in static storage.
///
/// Freeing is checked, so safe code cannot free a mutex in use: `users` counts every live
/// [`KGuard`] (a sleeper in [`KGuard::sleep`] keeps its guard) and every thread between its
/// look at `raw` and taking the mutex. `uninstall` takes `raw` away first and then frees only
/// if `users` is 0, else puts it back and refuses; a `lock` that finds `raw` taken away panics
/// before touching the mutex. All of it in one sequentially consistent order, so of a racing
/// `lock` and `uninstall` either the lock sees no mutex or the uninstall sees the user.
pub struct KMutex<T> {
    raw: AtomicPtr<sys::lck_mtx_t>,
    /// The group `raw` came from (it must go back to the same one).
    group: AtomicPtr<sys::lck_grp_t>,
    users: AtomicUsize,
    data: UnsafeCell<T>,
}

// SAFETY: access to `data` is serialised by the kernel mutex (see `lock`), or happens while no
// kernel mutex exists and hence no guard (`replace_unshared`).
unsafe impl<T: Send> Sync for KMutex<T> {}

impl<T> KMutex<T> {
    /// A mutex-guarded value with no kernel mutex yet.
    pub const fn new(data: T) -> KMutex<T> {
        KMutex {
            raw: AtomicPtr::new(ptr::null_mut()),
            group: AtomicPtr::new(ptr::null_mut()),
            users: AtomicUsize::new(0),
            data: UnsafeCell::new(data),
        }
    }

    /// Allocates the kernel mutex from `group`.
    pub fn install(&self, group: &LockGroup) -> Result<(), Errno> {
        assert!(
            self.raw.load(Ordering::SeqCst).is_null(),
            "mutex installed twice"
        );
        // SAFETY: the group and attributes are live for the call.
        let mtx = unsafe { sys::lck_mtx_alloc_init(group.grp.as_ptr(), group.attr.as_ptr()) };
        if mtx.is_null() {
            return Err(Errno::ENOMEM);
        }
        self.group.store(group.grp.as_ptr(), Ordering::SeqCst);
        self.raw.store(mtx, Ordering::SeqCst);
        Ok(())
    }

    /// Frees the kernel mutex, which `group` allocated. `EBUSY`, with nothing changed, while a
    /// guard exists (a holder or a sleeper) or a thread is taking the mutex; afterwards a
    /// `lock` panics instead of using freed memory. Nothing to do when no mutex is installed.
    pub fn uninstall(&self, group: &LockGroup) -> Result<(), Errno> {
        let mtx = self.raw.swap(ptr::null_mut(), Ordering::SeqCst);
        if mtx.is_null() {
            return Ok(());
        }
        if self.users.load(Ordering::SeqCst) != 0 {
            self.raw.store(mtx, Ordering::SeqCst);
            return Err(Errno::EBUSY);
        }
        assert!(
            self.group.load(Ordering::SeqCst) == group.grp.as_ptr(),
            "mutex freed to a group it did not come from"
        );
        // SAFETY: `mtx` came from `lck_mtx_alloc_init` with this group; no guard exists and no
        // thread can reach it any more (it is gone from `raw` and `users` was 0 after that).
        unsafe { sys::lck_mtx_free(mtx, group.grp.as_ptr()) };
        Ok(())
    }

    /// Whether the kernel mutex exists (between install and uninstall).
    pub fn is_installed(&self) -> bool {
        !self.raw.load(Ordering::SeqCst).is_null()
    }

    /// Takes the mutex. Panics if it is not installed: entry points only run between load and
    /// unload, so that would be a driver bug.
    pub fn lock(&self) -> KGuard<'_, T> {
        self.users.fetch_add(1, Ordering::SeqCst);
        let mtx = self.raw.load(Ordering::SeqCst);
        if mtx.is_null() {
            self.users.fetch_sub(1, Ordering::SeqCst);
            panic!("KMutex used outside load..unload");
        }
        // SAFETY: `mtx` is live: it was installed when we looked, after we counted ourselves
        // as a user, so `uninstall` cannot free it until our guard is dropped.
        unsafe { sys::lck_mtx_lock(mtx) };
        KGuard { mutex: self, mtx }
    }

    /// Replaces the data while no kernel mutex exists: at load, before anything is registered,
    /// no other thread can run driver code, so the write cannot race.
    pub fn replace_unshared(&self, value: T) -> T {
        assert!(
            !self.is_installed(),
            "unlocked access while the mutex is in use"
        );
        // SAFETY: with no kernel mutex installed there is no guard (uninstall refuses while one
        // exists, and `lock` fails without one), and no reference to the data escapes this call.
        unsafe { core::ptr::replace(self.data.get(), value) }
    }
}

/// Proof that the kernel mutex is held; gives access to the data.
pub struct KGuard<'a, T> {
    mutex: &'a KMutex<T>,
    mtx: *mut sys::lck_mtx_t,
}

/// How a sleeper reacts to signals.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Interruptible {
    /// `PCATCH`: a signal ends the sleep with `EINTR` or `ERESTART`.
    Yes,
    /// Signals neither wake nor change the result.
    No,
}

/// A sleep/wakeup channel: the address of the object a sleeper waits on.
#[derive(Clone, Copy)]
pub struct Channel(*mut c_void);

impl Channel {
    /// The channel named by `object`'s address.
    pub fn of<T>(object: &T) -> Channel {
        Channel(object as *const T as *mut c_void)
    }
}

impl<T> KGuard<'_, T> {
    /// Sleeps on `chan`, releasing the mutex atomically with going to sleep and re-taking it
    /// before returning (msleep without `PDROP`). Returns `Ok` on a wakeup (possibly spurious:
    /// callers re-check their condition), `Err(EINTR | ERESTART)` on a signal.
    pub fn sleep(&mut self, chan: Channel, interruptible: Interruptible) -> Result<(), Errno> {
        let pri = match interruptible {
            Interruptible::Yes => sys::PZERO | sys::PCATCH,
            Interruptible::No => sys::PZERO,
        };
        // SAFETY: we hold `self.mtx` (the guard exists), msleep returns with it held again
        // (no PDROP); a NULL timespec means no timeout; the message is a static C string.
        let rc = unsafe {
            sys::msleep(
                chan.0,
                self.mtx,
                pri as i32,
                c"tunnel".as_ptr(),
                ptr::null_mut(),
            )
        };
        check(rc)
    }

    /// Like [`KGuard::sleep`] without signals, but gives up after `millis` milliseconds
    /// (`Ok` on a wakeup or a timeout alike: callers re-check their condition). For waits whose
    /// waker cannot take this mutex, so that a wakeup sent before the sleep is never fatal.
    pub fn sleep_timeout(&mut self, chan: Channel, millis: u32) {
        let mut ts = sys::timespec {
            tv_sec: (millis / 1000).into(),
            tv_nsec: ((millis % 1000) * 1_000_000).into(),
        };
        // SAFETY: as in `sleep`; `ts` is a valid relative interval for the call.
        let _ = unsafe {
            sys::msleep(
                chan.0,
                self.mtx,
                sys::PZERO as i32,
                c"tunnel".as_ptr(),
                &mut ts,
            )
        };
    }
}

impl<T> Deref for KGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the mutex is held for the guard's lifetime.
        unsafe { &*self.mutex.data.get() }
    }
}

impl<T> DerefMut for KGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the mutex is held for the guard's lifetime, and `&mut self` is unique.
        unsafe { &mut *self.mutex.data.get() }
    }
}

impl<T> Drop for KGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: we hold the mutex, which cannot have been freed while we were a user.
        unsafe { sys::lck_mtx_unlock(self.mtx) };
        self.mutex.users.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Wakes every thread sleeping on `chan`.
pub fn wakeup(chan: Channel) {
    // SAFETY: wakeup only compares the channel address.
    unsafe { sys::wakeup(chan.0) };
}
