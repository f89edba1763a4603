//! A small VTun-like relay: each endpoint reads packets from a tun device and sends each one
//! as a UDP datagram to its peer; datagrams it receives are written to the device. It runs on
//! any [`PacketDev`]: a real file (the FUSE `/dev/tunN` stand-in, as a separate process) or
//! the simulated device through the syscall API (in-process, needs no FUSE).
//!
//! For tap units, [`link`] joins `/dev/tap0` and `/dev/tap1` directly, as VTun's linker joins
//! its two descriptors: `select` on both, then `read` one frame and `write` it to the other.

use crate::errno_map::io_error;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use xnu_sim::{proc, syscalls, Fd};

/// A packet device: one read is one packet, one write is one packet.
pub trait PacketDev: Send + Sync {
    /// Reads one packet (blocking).
    fn read_packet(&self, buf: &mut [u8]) -> io::Result<usize>;
    /// Writes one packet.
    fn write_packet(&self, packet: &[u8]) -> io::Result<usize>;
}

impl PacketDev for File {
    fn read_packet(&self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
    fn write_packet(&self, packet: &[u8]) -> io::Result<usize> {
        (&*self).write(packet)
    }
}

/// The simulated `/dev/tunN`, used through the syscall API (errno mapped to Linux).
pub struct SimDev(pub Fd);

impl PacketDev for SimDev {
    fn read_packet(&self, buf: &mut [u8]) -> io::Result<usize> {
        syscalls::read(self.0, buf).map_err(io_error)
    }
    fn write_packet(&self, packet: &[u8]) -> io::Result<usize> {
        syscalls::write(self.0, packet).map_err(io_error)
    }
}

/// The link between two endpoints: a connected datagram socket.
pub trait Link: Send + Sync + 'static {
    /// Sends one datagram to the peer.
    fn send_to_peer(&self, packet: &[u8]) -> io::Result<usize>;
    /// Receives one datagram.
    fn recv_from_peer(&self, buf: &mut [u8]) -> io::Result<usize>;
    /// Bounds each receive (so the receiving thread sees a stop request).
    fn set_timeout(&self, timeout: Duration) -> io::Result<()>;
}

impl Link for UdpSocket {
    fn send_to_peer(&self, packet: &[u8]) -> io::Result<usize> {
        self.send(packet)
    }
    fn recv_from_peer(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv(buf)
    }
    fn set_timeout(&self, timeout: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(timeout))
    }
}

impl Link for UnixDatagram {
    fn send_to_peer(&self, packet: &[u8]) -> io::Result<usize> {
        self.send(packet)
    }
    fn recv_from_peer(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv(buf)
    }
    fn set_timeout(&self, timeout: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(timeout))
    }
}

/// How the in-process relay's two endpoints talk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// UDP on loopback, like VTun (the host runs in a namespace of its own).
    Udp,
    /// A Unix datagram socket pair: no network at all (for tests in the host namespace).
    Unix,
}

/// Counters of one endpoint.
#[derive(Default)]
pub struct RelayCounters {
    /// Packets read from the device and sent to the peer.
    pub dev_to_udp: AtomicU64,
    /// Datagrams received and written to the device.
    pub udp_to_dev: AtomicU64,
    /// Failed device writes.
    pub write_errors: AtomicU64,
}

/// The thread reading the device.
enum Reader {
    /// A simulated thread (the device is the simulated one): stop() can interrupt it.
    Sim(proc::SimThread<()>),
    /// A plain thread (a real file): it ends with the process (never joined: it may be
    /// parked in a read that only the process's exit ends).
    Plain(#[allow(dead_code)] std::thread::JoinHandle<()>),
}

/// A running endpoint.
pub struct Endpoint {
    /// Counters.
    pub counters: Arc<RelayCounters>,
    stop: Arc<AtomicBool>,
    reader: Reader,
    receiver: std::thread::JoinHandle<()>,
}

impl Endpoint {
    /// Starts relaying between `dev` and `socket` (connected to the peer). With `sim` the
    /// device reader is a simulated thread (the simulated kernel must be booted).
    pub fn start(dev: Arc<dyn PacketDev>, socket: impl Link, sim: bool) -> io::Result<Endpoint> {
        socket.set_timeout(Duration::from_millis(100))?;
        let socket = Arc::new(socket);
        let counters = Arc::new(RelayCounters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let (dev, socket, counters, stop) = (
                Arc::clone(&dev),
                Arc::clone(&socket),
                Arc::clone(&counters),
                Arc::clone(&stop),
            );
            let run = move || {
                let mut buf = vec![0u8; 65536];
                while !stop.load(Ordering::SeqCst) {
                    match dev.read_packet(&mut buf) {
                        Ok(n) => {
                            if socket.send_to_peer(&buf[..n]).is_ok() {
                                counters.dev_to_udp.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(1));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            };
            if sim {
                // A simulated thread, so that stop() can interrupt its blocking read with a
                // signal (the driver sleeps interruptibly, RD-5).
                Reader::Sim(proc::spawn_thread(proc::INIT_PID, run))
            } else {
                Reader::Plain(std::thread::spawn(run))
            }
        };
        let receiver = {
            let (counters, stop) = (Arc::clone(&counters), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                while !stop.load(Ordering::SeqCst) {
                    let Ok(n) = socket.recv_from_peer(&mut buf) else {
                        continue;
                    };
                    match dev.write_packet(&buf[..n]) {
                        Ok(_) => counters.udp_to_dev.fetch_add(1, Ordering::Relaxed),
                        Err(_) => counters.write_errors.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        };
        Ok(Endpoint {
            counters,
            stop,
            reader,
            receiver,
        })
    }

    /// Stops both threads. The device reader may be asleep in the driver: it is woken with a
    /// thread-directed signal (bounded number of tries).
    pub fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Reader::Sim(reader) = self.reader {
            for _ in 0..500 {
                if reader.is_finished() {
                    break;
                }
                proc::kill_thread(reader.tid(), 15);
                std::thread::sleep(Duration::from_millis(2));
            }
            if reader.is_finished() {
                reader.join();
            }
        }
        let _ = self.receiver.join();
    }
}

/// Two UDP sockets on loopback, bound and connected to each other.
pub fn socket_pair() -> io::Result<(UdpSocket, UdpSocket)> {
    let a = UdpSocket::bind("127.0.0.1:0")?;
    let b = UdpSocket::bind("127.0.0.1:0")?;
    a.connect(b.local_addr()?)?;
    b.connect(a.local_addr()?)?;
    Ok((a, b))
}

/// Binds `bind` and connects to `peer`.
pub fn socket(bind: SocketAddr, peer: SocketAddr) -> io::Result<UdpSocket> {
    let s = UdpSocket::bind(bind)?;
    s.connect(peer)?;
    Ok(s)
}

/// The in-process relay: `/dev/tun0` ⇄ UDP ⇄ UDP ⇄ `/dev/tun1`, all through the syscall API.
pub struct InProcRelay {
    /// Endpoint on unit 0, then unit 1.
    pub endpoints: Vec<Endpoint>,
    fds: Vec<Fd>,
}

impl InProcRelay {
    /// Opens both units (configuring each interface with `configure` right after its open,
    /// as a tun client would) and starts relaying over `transport`.
    pub fn start(configure: &dyn Fn(usize), transport: Transport) -> io::Result<InProcRelay> {
        let mut fds = Vec::new();
        for unit in 0..2 {
            let fd =
                syscalls::open(&format!("/dev/tun{unit}"), syscalls::O_RDWR).map_err(io_error)?;
            configure(unit);
            fds.push(fd);
        }
        let (d0, d1): (Arc<dyn PacketDev>, Arc<dyn PacketDev>) =
            (Arc::new(SimDev(fds[0])), Arc::new(SimDev(fds[1])));
        let endpoints = match transport {
            Transport::Udp => {
                let (s0, s1) = socket_pair()?;
                vec![
                    Endpoint::start(d0, s0, true)?,
                    Endpoint::start(d1, s1, true)?,
                ]
            }
            Transport::Unix => {
                let (s0, s1) = UnixDatagram::pair()?;
                vec![
                    Endpoint::start(d0, s0, true)?,
                    Endpoint::start(d1, s1, true)?,
                ]
            }
        };
        Ok(InProcRelay { endpoints, fds })
    }

    /// Stops the endpoints and closes both devices.
    pub fn stop(self) {
        for e in self.endpoints {
            e.stop();
        }
        for fd in self.fds {
            let _ = syscalls::close(fd);
        }
    }
}

/// Two frame devices a [`link`] joins directly (tap units: `/dev/tap0` ⇄ `/dev/tap1`).
pub trait DevicePair: Send + Sync {
    /// `select(2)` for reading on both, waiting at most `timeout`: which are readable.
    fn select(&self, timeout: Duration) -> io::Result<[bool; 2]>;
    /// Reads one frame from device `side` (0 or 1); `WouldBlock` when there is none.
    fn read(&self, side: usize, buf: &mut [u8]) -> io::Result<usize>;
    /// Writes one frame to device `side`.
    fn write(&self, side: usize, frame: &[u8]) -> io::Result<usize>;
}

/// Counters of a [`link`].
#[derive(Default)]
pub struct LinkCounters {
    /// Frames read from device 0 and written to device 1.
    pub zero_to_one: AtomicU64,
    /// Frames read from device 1 and written to device 0.
    pub one_to_zero: AtomicU64,
    /// Failed writes.
    pub write_errors: AtomicU64,
    /// Failed reads (other than "nothing there").
    pub read_errors: AtomicU64,
}

/// VTun's linker loop (`lfd_linker`) between two devices: `select` on both (bounded by
/// 100 ms, so `stop` is seen), then for each readable one, one `read` and one `write` of that
/// frame to the other. Returns when `stop` is set.
pub fn link(pair: &dyn DevicePair, stop: &AtomicBool, counters: &LinkCounters) {
    let mut buf = vec![0u8; 65536];
    while !stop.load(Ordering::SeqCst) {
        let ready = match pair.select(Duration::from_millis(100)) {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        for (from, _) in ready.iter().enumerate().filter(|(_, r)| **r) {
            match pair.read(from, &mut buf) {
                Ok(n) => {
                    let moved = if from == 0 {
                        &counters.zero_to_one
                    } else {
                        &counters.one_to_zero
                    };
                    match pair.write(1 - from, &buf[..n]) {
                        Ok(_) => moved.fetch_add(1, Ordering::Relaxed),
                        Err(_) => counters.write_errors.fetch_add(1, Ordering::Relaxed),
                    };
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                Err(_) => {
                    counters.read_errors.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }
}

/// Two simulated devices, through the syscall API (errno mapped to Linux).
pub struct SimPair(pub [Fd; 2]);

impl DevicePair for SimPair {
    fn select(&self, timeout: Duration) -> io::Result<[bool; 2]> {
        let (readable, _) = syscalls::select(&self.0, &[], Some(timeout)).map_err(io_error)?;
        Ok([readable.contains(&self.0[0]), readable.contains(&self.0[1])])
    }
    fn read(&self, side: usize, buf: &mut [u8]) -> io::Result<usize> {
        syscalls::read(self.0[side], buf).map_err(io_error)
    }
    fn write(&self, side: usize, frame: &[u8]) -> io::Result<usize> {
        syscalls::write(self.0[side], frame).map_err(io_error)
    }
}

/// Two real files (the FUSE `/dev/tapN` stand-ins), through Linux `select`, `read`, `write`.
pub struct FilePair(pub [File; 2]);

impl DevicePair for FilePair {
    fn select(&self, timeout: Duration) -> io::Result<[bool; 2]> {
        use std::os::fd::AsRawFd;
        let fds = [self.0[0].as_raw_fd(), self.0[1].as_raw_fd()];
        // SAFETY: an all-zero fd_set is a valid empty set (FD_ZERO).
        let mut set: libc::fd_set = unsafe { std::mem::zeroed() };
        for fd in fds {
            assert!(
                (0..libc::FD_SETSIZE as i32).contains(&fd),
                "fd {fd} beyond FD_SETSIZE"
            );
            // SAFETY: `fd` is an open descriptor below FD_SETSIZE; `set` is a live fd_set.
            unsafe { libc::FD_SET(fd, &mut set) };
        }
        let mut tv = libc::timeval {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_usec: timeout.subsec_micros() as libc::suseconds_t,
        };
        let nfds = fds[0].max(fds[1]) + 1;
        // SAFETY: `set` and `tv` are live for the call; no write or except sets.
        let rc = unsafe {
            libc::select(
                nfds,
                &mut set,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                &mut tv,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: FD_ISSET on the set select filled in, for descriptors below FD_SETSIZE.
        Ok(fds.map(|fd| unsafe { libc::FD_ISSET(fd, &set) }))
    }
    fn read(&self, side: usize, buf: &mut [u8]) -> io::Result<usize> {
        (&self.0[side]).read(buf)
    }
    fn write(&self, side: usize, frame: &[u8]) -> io::Result<usize> {
        (&self.0[side]).write(frame)
    }
}

/// The in-process tap relay: `/dev/tap0` ⇄ `/dev/tap1` through the syscall API, one linker
/// on a simulated thread (docs/tap-contract.md section 17, step 4).
pub struct TapRelay {
    /// Counters.
    pub counters: Arc<LinkCounters>,
    stop: Arc<AtomicBool>,
    linker: proc::SimThread<()>,
    fds: [Fd; 2],
}

impl TapRelay {
    /// Opens both units non-blocking (configuring each interface with `configure` right after
    /// its open, as a client runs `ifconfig tapN up`) and starts the linker.
    pub fn start(configure: &dyn Fn(usize)) -> io::Result<TapRelay> {
        let mut fds = Vec::new();
        for unit in 0..2 {
            let opened = syscalls::open(
                &format!("/dev/tap{unit}"),
                syscalls::O_RDWR | syscalls::O_NONBLOCK,
            );
            let fd = match opened {
                Ok(fd) => fd,
                Err(e) => {
                    for fd in fds {
                        let _ = syscalls::close(fd);
                    }
                    return Err(io_error(e));
                }
            };
            configure(unit);
            fds.push(fd);
        }
        let fds = [fds[0], fds[1]];
        let counters = Arc::new(LinkCounters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let linker = {
            let (counters, stop) = (Arc::clone(&counters), Arc::clone(&stop));
            proc::spawn_thread(proc::INIT_PID, move || {
                link(&SimPair(fds), &stop, &counters)
            })
        };
        Ok(TapRelay {
            counters,
            stop,
            linker,
            fds,
        })
    }

    /// Stops the linker (it sees the flag within one `select` timeout) and closes both units.
    pub fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        self.linker.join();
        for fd in self.fds {
            let _ = syscalls::close(fd);
        }
    }
}
