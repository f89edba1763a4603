//! A real Linux tun (`IFF_TUN | IFF_NO_PI`) or tap (`IFF_TAP | IFF_NO_PI`) device, created
//! inside a network namespace.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TUN: libc::c_short = 0x0001;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;

/// An open Linux tun or tap device: one `read` is one packet (tap: one Ethernet frame) the
/// Linux stack sent into it, one `write` is one packet (frame) handed to the Linux stack.
pub struct LinuxTun {
    fd: OwnedFd,
    /// Interface name inside its namespace.
    pub name: String,
}

/// Runs `f` on a throwaway thread that has joined the network namespace at `netns_path`
/// (`/run/netns/NAME`). The calling thread's namespaces are untouched.
pub fn in_netns<T: Send + 'static>(
    netns_path: &str,
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    let path = netns_path.to_string();
    std::thread::spawn(move || {
        enter_netns(&path)?;
        f()
    })
    .join()
    .map_err(|_| io::Error::other("netns thread panicked"))?
}

/// Moves the calling thread into the network namespace at `netns_path`.
pub fn enter_netns(netns_path: &str) -> io::Result<()> {
    let ns = File::open(netns_path)?;
    // SAFETY: plain syscall on a file descriptor we own.
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl LinuxTun {
    /// Creates tun interface `name` inside the namespace at `netns_path`.
    pub fn create_in(netns_path: &str, name: &str) -> io::Result<LinuxTun> {
        Self::create(netns_path, name, IFF_TUN)
    }

    /// Creates tap interface `name` (`IFF_TAP | IFF_NO_PI`: whole Ethernet frames, no prefix)
    /// inside the namespace at `netns_path`.
    pub fn create_tap_in(netns_path: &str, name: &str) -> io::Result<LinuxTun> {
        Self::create(netns_path, name, IFF_TAP)
    }

    fn create(netns_path: &str, name: &str, kind: libc::c_short) -> io::Result<LinuxTun> {
        let owned = name.to_string();
        let fd = in_netns(netns_path, move || open_tun(&owned, kind))?;
        Ok(LinuxTun {
            fd,
            name: name.to_string(),
        })
    }

    /// Reads one packet, waiting at most `timeout`; `Ok(None)` on timeout.
    pub fn read_timeout(&self, buf: &mut [u8], timeout: Duration) -> io::Result<Option<usize>> {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let rc = unsafe { libc::poll(&mut pfd, 1, timeout.as_millis() as libc::c_int) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(None)
            } else {
                Err(e)
            };
        }
        if rc == 0 {
            return Ok(None);
        }
        // SAFETY: buf is valid for buf.len() bytes.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted {
                return Ok(None);
            }
            return Err(e);
        }
        Ok(Some(n as usize))
    }

    /// Writes one packet into the Linux stack.
    pub fn write(&self, packet: &[u8]) -> io::Result<usize> {
        // SAFETY: packet is valid for packet.len() bytes.
        let n = unsafe { libc::write(self.fd.as_raw_fd(), packet.as_ptr().cast(), packet.len()) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }
}

/// Opens `/dev/net/tun` and attaches it to a new interface `name` of `kind` (`IFF_TUN` or
/// `IFF_TAP`), without the `tun_pi` prefix.
fn open_tun(name: &str, kind: libc::c_short) -> io::Result<OwnedFd> {
    let path = CString::new("/dev/net/tun").unwrap();
    // SAFETY: valid C string.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_RDWR | libc::O_CLOEXEC | libc::O_NONBLOCK,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just opened and is owned here.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut ifr = [0u8; 40];
    if name.len() >= 16 {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    ifr[..name.len()].copy_from_slice(name.as_bytes());
    ifr[16..18].copy_from_slice(&(kind | IFF_NO_PI).to_ne_bytes());
    // SAFETY: TUNSETIFF takes a struct ifreq (40 bytes) that lives across the call.
    if unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETIFF, ifr.as_mut_ptr()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}
