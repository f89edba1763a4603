//! The owner of a unit, who gets `SIGIO` when a packet is queued and async I/O is on
//! (docs/tun-contract.md section 7, IO-1..IO-6).
//!
//! XNU rewrites `FIOSETOWN`/`F_SETOWN` into `TIOCSPGRP` with a process-group id before a device
//! sees them. The public KPI can signal one process (`proc_signal`) but not a group, so a group
//! owner is accepted only when the caller belongs to it, and the caller becomes the signal
//! target (IO-2). A process owner is its own target.

use crate::kpi::errno::Errno;
use crate::kpi::proc;

/// Who owns the unit. Guarded by the unit mutex, as part of the unit state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Owner {
    /// No owner: no `SIGIO`.
    #[default]
    None,
    /// Process group `pgid`, signalled through the member that set it (`target`).
    Group {
        /// The group id `TIOCGPGRP` reports.
        pgid: i32,
        /// The pid `SIGIO` goes to.
        target: i32,
    },
    /// One process.
    Process(i32),
}

impl Owner {
    /// `TIOCSPGRP(v)`: 0 clears (IO-1); a group the caller belongs to (IO-2, else `EINVAL`);
    /// a negative value names process -v (IO-3, `ESRCH` if it does not exist).
    pub fn from_pgrp(v: i32) -> Result<Owner, Errno> {
        match v {
            0 => Ok(Owner::None),
            g if g > 0 => Owner::group(g),
            p => Owner::process(p.checked_neg().ok_or(Errno::ESRCH)?),
        }
    }

    /// `FIOSETOWN(v)` received unchanged (IO-5): v > 0 is a process, v < 0 is group -v under
    /// the IO-2 rule, 0 clears.
    pub fn from_setown(v: i32) -> Result<Owner, Errno> {
        match v {
            0 => Ok(Owner::None),
            p if p > 0 => Owner::process(p),
            g => Owner::group(g.checked_neg().ok_or(Errno::EINVAL)?),
        }
    }

    fn group(pgid: i32) -> Result<Owner, Errno> {
        if proc::self_pgrpid() != pgid {
            return Err(Errno::EINVAL); // IO-2: the KPI cannot signal a foreign group
        }
        Ok(Owner::Group {
            pgid,
            target: proc::self_pid(),
        })
    }

    fn process(pid: i32) -> Result<Owner, Errno> {
        if proc::exists(pid) {
            Ok(Owner::Process(pid))
        } else {
            Err(Errno::ESRCH)
        }
    }

    /// `TIOCGPGRP` (IO-4): g for a group, -pid for a process, 0 for none.
    pub fn pgrp(self) -> i32 {
        match self {
            Owner::None => 0,
            Owner::Group { pgid, .. } => pgid,
            Owner::Process(pid) => -pid,
        }
    }

    /// `FIOGETOWN` received unchanged (IO-5): pid, -g or 0.
    pub fn setown_value(self) -> i32 {
        -self.pgrp()
    }

    /// The pid `SIGIO` goes to, if any (IO-6).
    pub fn target(self) -> Option<i32> {
        match self {
            Owner::None => None,
            Owner::Group { target, .. } => Some(target),
            Owner::Process(pid) => Some(pid),
        }
    }
}

/// Sends `SIGIO` to `target` (IO-6). Called without the unit mutex; a target that has exited
/// gets nothing, which is not an error.
pub fn send_sigio(target: i32) {
    proc::signal(target, proc::SIGIO);
}
