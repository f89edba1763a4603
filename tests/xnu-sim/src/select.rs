//! Select records (xnu bsd/sys/select.h, bsd/kern/sys_generic.c: `selrecord`, `selwakeup`,
//! `selthreadclear`), kept in a side table keyed by the driver's selinfo address: the
//! selinfo bytes belong to the driver and are never touched. The records live behind the
//! scheduler lock (crate::sleep), like every wait queue.

use crate::abi::proc_t;
use crate::config;
use crate::fasthash::AddrMap;
use crate::proc;
use crate::sleep::sched;
use std::collections::HashSet;
use std::ffi::c_void;
use std::sync::Condvar;
use std::time::{Duration, Instant};

/// select(2) state, behind the scheduler lock.
pub(crate) struct Records {
    /// selinfo address → waiting select calls.
    records: AddrMap<usize, HashSet<u64>>,
    /// select calls a `selwakeup` reached since they last polled.
    fired: HashSet<u64>,
    next_select: u64,
}

impl Records {
    pub(crate) fn new() -> Records {
        Records {
            records: AddrMap::default(),
            fired: HashSet::new(),
            next_select: 1,
        }
    }
}

/// Waited on by select calls, with the scheduler lock.
pub(crate) static SELECT_CV: Condvar = Condvar::new();

/// A select(2) call in progress: the cookie `d_select` receives as `wql`.
pub(crate) struct SelectCall(u64);

impl SelectCall {
    pub(crate) fn begin() -> SelectCall {
        let mut s = sched();
        let id = s.select.next_select;
        s.select.next_select += 1;
        SelectCall(id)
    }

    pub(crate) fn cookie(&self) -> *mut c_void {
        self.0 as *mut c_void
    }

    /// Forgets earlier selwakeups before polling the devices again.
    pub(crate) fn rearm(&self) {
        sched().select.fired.remove(&self.0);
    }

    /// Sleeps until a selwakeup reaches this call, the deadline passes, or a signal is
    /// pending. Returns false on timeout.
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> bool {
        let mut s = sched();
        loop {
            if s.select.fired.contains(&self.0) || proc::pending_signal_restarts().is_some() {
                return true;
            }
            let wait = match deadline {
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return false;
                    }
                    (d - now).min(Duration::from_millis(50))
                }
                None => Duration::from_millis(50),
            };
            s = SELECT_CV
                .wait_timeout(s, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

impl Drop for SelectCall {
    fn drop(&mut self) {
        // seldrop: the call's records go away with it.
        let mut s = sched();
        s.select.records.retain(|_, calls| {
            calls.remove(&self.0);
            !calls.is_empty()
        });
        s.select.fired.remove(&self.0);
    }
}

/// `selrecord` (bsd/kern/sys_generic.c): records the selecting thread on `sip`. On the second
/// pass of a `select` the wait-queue link is NULL and it records nothing ("do not record if
/// this is second pass of select").
#[no_mangle]
extern "C" fn selrecord(_selector: proc_t, sip: *mut c_void, wql: *mut c_void) {
    assert!(!sip.is_null(), "selrecord: NULL selinfo");
    if wql.is_null() {
        return;
    }
    sched()
        .select
        .records
        .entry(sip as usize)
        .or_default()
        .insert(wql as u64);
}

/// `selwakeup` (bsd/kern/sys_generic.c): wakes every select call recorded on `sip`; does nothing
/// without a record. Perturbation mode may yield around it.
#[no_mangle]
extern "C" fn selwakeup(sip: *mut c_void) {
    config::perturb_point();
    let mut s = sched();
    if let Some(calls) = s.select.records.get(&(sip as usize)).cloned() {
        s.select.fired.extend(calls);
    }
    SELECT_CV.notify_all();
    drop(s);
    config::perturb_point();
}

/// `selthreadclear` (bsd/kern/sys_generic.c): drops every record on `sip` and wakes the
/// waiting select calls, which poll again.
#[no_mangle]
extern "C" fn selthreadclear(sip: *mut c_void) {
    let mut s = sched();
    if let Some(calls) = s.select.records.remove(&(sip as usize)) {
        s.select.fired.extend(calls);
    }
    SELECT_CV.notify_all();
}

/// select records still registered (leak accounting).
pub(crate) fn live_select_records() -> usize {
    sched().select.records.values().map(HashSet::len).sum()
}
